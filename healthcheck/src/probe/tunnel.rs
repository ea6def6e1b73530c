//! The gue and fou checks (spec §1.6): an ICMP echo request to the backend's own address, wrapped
//! in GUE (or keyed GRE) inside UDP to the backend's tunnel port. The proxy decapsulates it, its
//! kernel answers with a plain echo reply straight to us, and a raw ICMP socket opened once per
//! process picks the reply up by the random token in its payload.
//!
//! A raw ICMP socket needs CAP_NET_RAW. Unlike GLB, failing to open it is reported (every tunnel
//! check fails with the reason) instead of silently timing every check out.

use crate::metrics::Metrics;
use glb_wire::ip::Protocol;
use glb_wire::{checksum, gue, icmp, ipv4};
use socket2::{Domain, Socket, Type};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// Bytes of the UDP payload of a probe: 8 encapsulation + 20 IPv4 + 8 ICMP + 26 token.
pub const PROBE_LEN: usize = 62;
/// `glbhc_` plus a 20-character xid.
pub const TOKEN_LEN: usize = 26;
/// A probe's token: what a reply is matched by.
pub type Token = [u8; TOKEN_LEN];

/// The 8 bytes in front of the inner IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// GUE version 0, hlen 1, proto IPv4, plus GLB's private data with no hops.
    Gue,
    /// Keyed GRE (K bit, protocol IPv4, key 0), for fou ports using IP protocol 47.
    Fou,
}

/// The probe's UDP payload, byte for byte as GLB sends it: the encapsulation header, then an
/// IPv4 ICMP echo request from `src` to `dst` (DF, TTL 255, id and sequence 0) carrying `token`.
#[must_use]
pub fn probe_packet(encap: Encap, src: Ipv4Addr, dst: Ipv4Addr, token: &Token) -> [u8; PROBE_LEN] {
    let mut p = [0u8; PROBE_LEN];
    let (header, inner) = p.split_at_mut(gue::FIXED_LEN);
    match encap {
        // A GUE header with no hops is exactly 8 bytes, so emit cannot fail.
        Encap::Gue => {
            let _ = gue::Repr::new(Protocol::Ipv4, &[]).map(|r| r.emit(header));
        }
        Encap::Fou => header.copy_from_slice(&[0x20, 0x00, 0x08, 0x00, 0, 0, 0, 0]),
    }
    let (ip, echo) = inner.split_at_mut(ipv4::HEADER_LEN);
    let ip_repr = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: Protocol::Icmp,
        payload_len: 34, // 8-byte echo header + token
        ttl: 255,
        ident: 0,
        dont_frag: true,
    };
    let _ = ip_repr.emit(ip); // 20 bytes into 20, total 54: cannot fail
    (echo[0], echo[1]) = icmp::v4::ECHO_REQUEST; // id and sequence stay 0
    echo[8..].copy_from_slice(token);
    let sum = checksum::finish(checksum::sum(0, echo));
    echo[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// A fresh `glbhc_<xid>` token: 12 bytes (time, per-process random, counter) in lowercase
/// base32hex, the format of the xid GLB uses, so tokens are unique across processes and rounds.
#[must_use]
pub fn new_token() -> Token {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let seed = *SEED.get_or_init(|| RandomState::new().hash_one(std::process::id()));
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 12];
    id[..4].copy_from_slice(&secs.to_be_bytes()[4..]);
    id[4..9].copy_from_slice(&seed.to_be_bytes()[3..]);
    id[9..].copy_from_slice(&count.to_be_bytes()[1..]);
    let mut token = [0u8; TOKEN_LEN];
    token[..6].copy_from_slice(b"glbhc_");
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    for (i, out) in token[6..].iter_mut().enumerate() {
        let bit = i * 5;
        let pair = u16::from_be_bytes([id[bit / 8], id.get(bit / 8 + 1).copied().unwrap_or(0)]);
        *out = ALPHABET[usize::from((pair >> (11 - bit % 8)) & 0x1f)];
    }
    token
}

/// The source address and ICMP payload of an IPv4 packet (as a raw socket returns it, header
/// included) if it is an echo reply; `None` for anything else or anything malformed.
#[must_use]
pub fn parse_echo_reply(packet: &[u8]) -> Option<(Ipv4Addr, &[u8])> {
    let ip = ipv4::Packet::new_checked(packet).ok()?;
    if ip.protocol() != Protocol::Icmp {
        return None;
    }
    let payload = ip.payload();
    if icmp::Packet::new_checked(payload).ok()?.kind() != icmp::v4::ECHO_REPLY {
        return None;
    }
    Some((ip.src_addr(), payload.get(icmp::HEADER_LEN..)?))
}

/// Checks waiting for their echo reply: token → (backend address, completion).
type Pending = Mutex<HashMap<Token, (Ipv4Addr, oneshot::Sender<()>)>>;

/// Sends probes and matches the replies arriving on the process's raw ICMP socket.
#[derive(Debug)]
pub struct TunnelChecker {
    pending: Arc<Pending>,
    metrics: Arc<Metrics>,
}

impl TunnelChecker {
    /// Opens the raw ICMP socket and starts the task that reads it. Must run inside a Tokio
    /// runtime.
    ///
    /// # Errors
    /// The socket cannot be opened (CAP_NET_RAW is missing) or registered with the runtime.
    pub fn open(metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(socket2::Protocol::ICMPV4))?;
        socket.set_nonblocking(true)?;
        // A raw socket is read with plain recvfrom, which tokio's UdpSocket wraps; it is never
        // used for anything UDP-specific.
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
        let pending = Arc::new(Pending::default());
        tokio::spawn(receive_loop(socket, Arc::clone(&pending), Arc::clone(&metrics)));
        Ok(Self { pending, metrics })
    }

    /// Sends one probe to `ip:port` and waits for its reply. The caller bounds the wait with the
    /// check timeout; dropping the future forgets the token.
    ///
    /// # Errors
    /// The address is not IPv4 (the inner packet is IPv4 by design) or the probe cannot be sent.
    pub async fn check(&self, encap: Encap, ip: IpAddr, port: u16) -> Result<(), String> {
        let IpAddr::V4(dst) = ip else {
            return Err(format!("{ip} is not an IPv4 address; tunnel checks are IPv4 only"));
        };
        let socket =
            UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await.map_err(|e| format!("UDP socket: {e}"))?;
        socket.connect((dst, port)).await.map_err(|e| format!("UDP connect to {dst}:{port}: {e}"))?;
        let src = match socket.local_addr() {
            Ok(SocketAddr::V4(local)) => *local.ip(),
            Ok(other) => return Err(format!("unexpected local address {other}")),
            Err(e) => return Err(format!("local address: {e}")),
        };
        let token = new_token();
        let (tx, rx) = oneshot::channel();
        let _waiting = Waiting::new(&self.pending, token, dst, tx);
        socket
            .send(&probe_packet(encap, src, dst, &token))
            .await
            .map_err(|e| format!("send probe to {dst}:{port}: {e}"))?;
        Metrics::inc(&self.metrics.tunnel_probes_sent);
        drop(socket);
        rx.await.map_err(|_| "probe listener stopped".to_owned())
    }
}

/// Registration of a pending token, removed when the check ends, whether it succeeded or not.
struct Waiting<'a> {
    pending: &'a Pending,
    token: Token,
}

impl<'a> Waiting<'a> {
    fn new(pending: &'a Pending, token: Token, dst: Ipv4Addr, tx: oneshot::Sender<()>) -> Self {
        pending.lock().unwrap_or_else(PoisonError::into_inner).insert(token, (dst, tx));
        Self { pending, token }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.token);
    }
}

async fn receive_loop(socket: UdpSocket, pending: Arc<Pending>, metrics: Arc<Metrics>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let len = match socket.recv(&mut buf).await {
            Ok(len) => len,
            Err(e) => {
                log::error!("raw ICMP socket receive failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        Metrics::inc(&metrics.icmp_received);
        let Some((src, payload)) = parse_echo_reply(&buf[..len]) else { continue };
        let Ok(token) = Token::try_from(payload) else { continue };
        if !token.starts_with(b"glbhc_") {
            continue;
        }
        let mut map = pending.lock().unwrap_or_else(PoisonError::into_inner);
        // Matching on the source as well as the token is a safe tightening of GLB (spec §5.3): the
        // kernel answers an echo from the address it was sent to.
        if map.get(&token).is_some_and(|(dst, _)| *dst == src) {
            if let Some((_, tx)) = map.remove(&token) {
                let _ = tx.send(());
                Metrics::inc(&metrics.icmp_matched);
            }
        } else {
            Metrics::inc(&metrics.icmp_unmatched);
            log::debug!("echo reply from {src} matches no pending tunnel check (late or duplicate)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        *b"glbhc_0123456789abcdefghij"
    }

    #[test]
    fn gue_probe_is_glbs_62_bytes_with_valid_checksums() {
        let src = Ipv4Addr::new(192, 0, 2, 5);
        let dst = Ipv4Addr::new(192, 0, 2, 10);
        let p = probe_packet(Encap::Gue, src, dst, &token());
        assert_eq!(&p[..8], &[0x01, 0x04, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            &p[8..28],
            &[0x45, 0, 0, 54, 0, 0, 0x40, 0, 255, 1, p[18], p[19], 192, 0, 2, 5, 192, 0, 2, 10]
        );
        assert_eq!(checksum::finish(checksum::sum(0, &p[8..28])), 0, "inner IPv4 header checksum verifies");
        assert_eq!(&p[28..36], &[8, 0, p[30], p[31], 0, 0, 0, 0]);
        assert_eq!(checksum::finish(checksum::sum(0, &p[28..])), 0, "ICMP checksum verifies");
        assert_eq!(&p[36..], b"glbhc_0123456789abcdefghij");
        let fou = probe_packet(Encap::Fou, src, dst, &token());
        assert_eq!(&fou[..8], &[0x20, 0, 0x08, 0, 0, 0, 0, 0]);
        assert_eq!(&fou[8..], &p[8..]);
    }

    #[test]
    fn tokens_are_unique_xid_shaped() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        for t in [a, b] {
            assert!(t.starts_with(b"glbhc_"));
            assert!(t[6..].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'v')), "{t:?}");
        }
    }

    #[test]
    fn parses_only_well_formed_echo_replies() {
        let mut reply =
            probe_packet(Encap::Gue, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &token())[8..].to_vec();
        assert_eq!(parse_echo_reply(&reply), None, "an echo request is not a reply");
        reply[20] = 0;
        assert_eq!(parse_echo_reply(&reply), Some((Ipv4Addr::LOCALHOST, &token()[..])));
        for len in 0..28 {
            assert_eq!(parse_echo_reply(&reply[..len]), None, "truncated to {len}");
        }
        reply[0] = 0x4f; // header longer than the packet
        assert_eq!(parse_echo_reply(&reply), None);
    }
}
