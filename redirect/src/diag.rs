//! The socket lookup, through sock_diag's exact lookup (glb-healthcheck-redirect-xdp.md §5.2 b):
//! a `SOCK_DIAG_BY_FAMILY` request **without** `NLM_F_DUMP` names one 4-tuple; the kernel looks
//! it up like an arriving segment — established hash (full sockets, `TIME_WAIT`, request
//! sockets), then listeners — and answers with the socket's `inet_diag_msg`, or `ENOENT`.
//!
//! A listener (state `TCP_LISTEN`) is not the flow's socket: it means "not found, but a
//! listener exists", which is exactly when GLB goes on to check for a SYN cookie.
//!
//! Requests for a whole burst go out in one `sendmsg` (the kernel answers each message of the
//! batch in turn, synchronously) and the answers come back with one `recvmmsg`; they are matched
//! by sequence number. Needs no privilege in the daemon's own network namespace.

use crate::decision::Lookup;
use crate::netlink::{self, HEADER_LEN, NLM_F_REQUEST, NLMSG_ERROR};
use crate::packet::Flow;
use std::net::IpAddr;

/// `NETLINK_SOCK_DIAG`.
pub const NETLINK_SOCK_DIAG: i32 = 4;
/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` in `inet_diag_msg.idiag_state`.
const TCP_LISTEN: u8 = 10;
/// `struct inet_diag_req_v2`.
const REQ_LEN: usize = 56;
/// One request: header and `inet_diag_req_v2`.
pub const REQUEST_LEN: usize = HEADER_LEN + REQ_LEN;

/// The kernel's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// What the lookup found.
    Lookup(Lookup),
    /// An error other than "no such socket" (its errno).
    Error(i32),
}

/// Writes the request for `flow` with sequence number `seq` into `buf`.
pub fn encode_request(buf: &mut [u8; REQUEST_LEN], seq: u32, flow: &Flow) {
    buf.fill(0);
    netlink::put_header(buf, REQUEST_LEN, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq);
    let req = &mut buf[HEADER_LEN..];
    let family = if flow.local.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    req[0] = u8::try_from(family).unwrap_or(0);
    req[1] = u8::try_from(libc::IPPROTO_TCP).unwrap_or(0);
    // idiag_ext 0 (no extra attributes), pad; idiag_states: every state.
    req[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    // inet_diag_sockid from the socket's side: src = local, dst = remote; ports big-endian.
    let id = &mut req[8..];
    id[0..2].copy_from_slice(&flow.local_port.to_be_bytes());
    id[2..4].copy_from_slice(&flow.remote_port.to_be_bytes());
    put_addr(&mut id[4..20], flow.local);
    put_addr(&mut id[20..36], flow.remote);
    // idiag_if 0 (any device); idiag_cookie all ones: INET_DIAG_NOCOOKIE (else ESTALE).
    id[40..48].fill(0xff);
}

fn put_addr(field: &mut [u8], addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => field[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => field.copy_from_slice(&a.octets()),
    }
}

/// Reads one answer message: its sequence number and what it says. `None` for anything that is
/// not an answer to a lookup (too short, another message type).
#[must_use]
pub fn decode_answer(msg: &[u8]) -> Option<(u32, Answer)> {
    let (kind, seq, body) = netlink::parse(msg)?;
    match kind {
        SOCK_DIAG_BY_FAMILY => {
            // inet_diag_msg: idiag_family, idiag_state, ...
            let state = *body.get(1)?;
            Some((seq, Answer::Lookup(if state == TCP_LISTEN { Lookup::Listener } else { Lookup::Found })))
        }
        NLMSG_ERROR => {
            let errno = netlink::error_code(body)?;
            Some((
                seq,
                if errno == libc::ENOENT { Answer::Lookup(Lookup::NotFound) } else { Answer::Error(errno) },
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn flow(remote: IpAddr, local: IpAddr) -> Flow {
        Flow { remote, remote_port: 40_000, local, local_port: 22, flags: 0x10, tcp_offset: Some(20) }
    }

    #[test]
    fn request_layout() {
        let mut buf = [0u8; REQUEST_LEN];
        let f = flow(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 5)), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
        encode_request(&mut buf, 7, &f);
        assert_eq!(u32::from_ne_bytes(buf[0..4].try_into().expect("4")), 72);
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 20);
        assert_eq!(u16::from_ne_bytes([buf[6], buf[7]]), 1, "a request, not a dump");
        assert_eq!(u32::from_ne_bytes(buf[8..12].try_into().expect("4")), 7);
        assert_eq!(&buf[16..20], &[2, 6, 0, 0], "AF_INET, TCP");
        assert_eq!(&buf[20..24], &[0xff; 4], "all states");
        assert_eq!(&buf[24..28], &[0, 22, 0x9c, 0x40], "sport = local 22, dport = remote 40000");
        assert_eq!(&buf[28..32], &[192, 0, 2, 10]);
        assert_eq!(&buf[44..48], &[198, 51, 100, 5]);
        assert_eq!(&buf[60..64], &[0; 4], "any interface");
        assert_eq!(&buf[64..72], &[0xff; 8], "no cookie");

        let v6 =
            flow(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5)), IpAddr::V6(Ipv6Addr::LOCALHOST));
        encode_request(&mut buf, 8, &v6);
        assert_eq!(buf[16], 10, "AF_INET6");
        assert_eq!(buf[43], 1, "::1 as the local address");
        assert_eq!(&buf[44..46], &[0x20, 0x01]);
    }

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; HEADER_LEN];
        netlink::put_header(&mut m, HEADER_LEN + body.len(), kind, 0, seq);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn answers() {
        let found = |state: u8| message(20, 3, &[2, state, 0, 0]);
        assert_eq!(decode_answer(&found(1)), Some((3, Answer::Lookup(Lookup::Found))), "ESTABLISHED");
        assert_eq!(decode_answer(&found(3)), Some((3, Answer::Lookup(Lookup::Found))), "SYN_RECV");
        assert_eq!(decode_answer(&found(6)), Some((3, Answer::Lookup(Lookup::Found))), "TIME_WAIT");
        assert_eq!(decode_answer(&found(10)), Some((3, Answer::Lookup(Lookup::Listener))), "LISTEN");
        let error = |errno: i32| message(2, 4, &(-errno).to_ne_bytes());
        assert_eq!(decode_answer(&error(libc::ENOENT)), Some((4, Answer::Lookup(Lookup::NotFound))));
        assert_eq!(decode_answer(&error(libc::ESTALE)), Some((4, Answer::Error(libc::ESTALE))));
        assert_eq!(decode_answer(&message(3, 5, &[])), None, "NLMSG_DONE is no answer");
        assert_eq!(decode_answer(&[0; 10]), None);
        assert_eq!(decode_answer(&message(20, 1, &[2])), None, "truncated body");
    }
}
