//! The forwarding rewrite (glb-healthcheck-redirect-xdp.md §2.5): the datagram goes on to the
//! next hop with `next_hop + 1`, from this host, keeping the UDP ports, TTL and TOS.
//!
//! The kernel's UDP socket hands us only the payload, so the outer IPv4 and UDP headers are
//! rebuilt here for a raw `IPPROTO_RAW` socket: source = the address the datagram was sent to
//! (this host), destination = the next hop, TTL and TOS copied, DF set, ID 0 (the kernel fills
//! it), UDP source port kept (the director's flow entropy) and destination port kept.
//!
//! The UDP checksum is recomputed over the new pseudo-header and payload. GLB patches a non-zero
//! checksum incrementally (and leaves a zero one zero); the received checksum was already
//! verified by the kernel, so a full recomputation gives the same value, and a datagram that
//! arrived without a checksum leaves with one.

use crate::packet::NEXT_HOP_OFFSET;
use glb_wire::ip::Protocol;
use glb_wire::{checksum, ipv4, udp};
use std::net::Ipv4Addr;

/// Bytes of the rebuilt outer headers.
pub const OUTER_LEN: usize = ipv4::HEADER_LEN + udp::HEADER_LEN;

/// The outer fields a forwarded datagram keeps or derives from the received one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// This host: the received datagram's destination, the forwarded one's source.
    pub local: Ipv4Addr,
    /// The next hop.
    pub next_hop: Ipv4Addr,
    /// UDP source port, kept.
    pub src_port: u16,
    /// UDP destination port, kept.
    pub dst_port: u16,
    /// TTL, copied (GLB does not decrement it).
    pub ttl: u8,
    /// DSCP and ECN, copied.
    pub tos: u8,
}

/// Why a datagram cannot be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// The datagram has no GLB private data (validation let it through: cannot happen).
    #[error("datagram too short for the GUE private data")]
    Truncated,
    /// `next_hop` is already 255.
    #[error("next_hop overflows")]
    NextHopOverflow,
    /// Headers and datagram exceed 65 535 bytes.
    #[error("datagram too long to forward")]
    TooLong,
}

/// Increments `next_hop` in `datagram` and writes the outer IPv4 and UDP headers for it into
/// `header`.
///
/// # Errors
/// See [`ForwardError`]; `datagram` is unchanged then.
pub fn rewrite(datagram: &mut [u8], outer: &Outer, header: &mut [u8; OUTER_LEN]) -> Result<(), ForwardError> {
    let udp_len = u16::try_from(udp::HEADER_LEN + datagram.len()).map_err(|_| ForwardError::TooLong)?;
    let ip = ipv4::Repr {
        src_addr: outer.local,
        dst_addr: outer.next_hop,
        protocol: Protocol::Udp,
        payload_len: udp_len,
        ttl: outer.ttl,
        ident: 0,
        dont_frag: true,
    };
    let (ip_header, udp_header) = header.split_at_mut(ipv4::HEADER_LEN);
    ip.emit(ip_header).map_err(|_| ForwardError::TooLong)?;
    // `Repr` writes TOS 0: set the copied one and fix the header checksum.
    ip_header[1] = outer.tos;
    ip_header[10..12].fill(0);
    let sum = checksum::finish(checksum::sum(0, ip_header));
    ip_header[10..12].copy_from_slice(&sum.to_be_bytes());

    let next_hop = datagram.get_mut(NEXT_HOP_OFFSET).ok_or(ForwardError::Truncated)?;
    *next_hop = next_hop.checked_add(1).ok_or(ForwardError::NextHopOverflow)?;
    let payload_sum = checksum::sum(0, datagram);
    udp::emit_header(
        udp_header,
        outer.src_port,
        outer.dst_port,
        udp_len,
        outer.local,
        outer.next_hop,
        payload_sum,
    )
    .map_err(|_| ForwardError::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use glb_wire::gue;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const ALT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);

    fn outer() -> Outer {
        Outer { local: LOCAL, next_hop: ALT, src_port: 12_345, dst_port: gue::PORT, ttl: 63, tos: 0xb8 }
    }

    #[test]
    fn headers_verify_and_keep_what_glb_keeps() {
        // GUE with hops [ALT, 192.0.2.5], next_hop 0, then a 5-byte inner stand-in.
        let mut datagram = vec![0x03, 0x04, 0, 0, 0, 0, 0, 2, 192, 0, 2, 11, 192, 0, 2, 5, 1, 2, 3, 4, 5];
        let mut header = [0u8; OUTER_LEN];
        rewrite(&mut datagram, &outer(), &mut header).expect("forwardable");
        assert_eq!(datagram[NEXT_HOP_OFFSET], 1);

        let mut packet = header.to_vec();
        packet.extend_from_slice(&datagram);
        let ip = ipv4::Packet::new_checked(&packet[..]).expect("IPv4");
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr()), (LOCAL, ALT));
        assert_eq!((ip.ttl(), ip.dscp_ecn(), ip.ident()), (63, 0xb8, 0));
        assert!(ip.dont_frag() && !ip.is_truncated());
        assert_eq!(usize::from(ip.total_len()), packet.len());
        let udp = udp::Packet::new_checked(ip.payload()).expect("UDP");
        assert_eq!((udp.src_port(), udp.dst_port()), (12_345, gue::PORT));
        assert_ne!(udp.checksum(), 0);
        assert!(udp.verify_checksum(LOCAL, ALT), "checksum over the rewritten datagram");
        let tunnel = gue::Packet::new_checked(udp.payload()).expect("GUE");
        assert_eq!((tunnel.next_hop(), tunnel.hop(1)), (1, Some(Ipv4Addr::new(192, 0, 2, 5))));
    }

    /// GLB's incremental update (RFC 1624: the next_hop byte and the outer source change) and
    /// our full recomputation agree.
    #[test]
    fn recomputation_equals_glbs_incremental_update() {
        let received_src = Ipv4Addr::new(198, 18, 0, 1); // the director
        let mut datagram = vec![0x02, 0x04, 0, 0, 0, 0, 0, 1, 192, 0, 2, 11, 0x45, 0, 0, 20, 9, 9];
        let len = u16::try_from(udp::HEADER_LEN + datagram.len()).expect("short");
        // The checksum as the director sent it.
        let mut before = vec![0u8; udp::HEADER_LEN];
        before.extend_from_slice(&datagram);
        udp::emit(&mut before, 12_345, gue::PORT, received_src, LOCAL).expect("emit");
        let old = u16::from_be_bytes([before[6], before[7]]);
        // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') per changed 16-bit word.
        let mut acc = u32::from(!old);
        let (old_word, new_word) = (u16::from_be_bytes([0, 1]), u16::from_be_bytes([1, 1]));
        acc += u32::from(!old_word) + u32::from(new_word);
        for (o, n) in received_src.octets().chunks(2).zip(ALT.octets().chunks(2)) {
            acc += u32::from(!u16::from_be_bytes([o[0], o[1]])) + u32::from(u16::from_be_bytes([n[0], n[1]]));
        }
        let incremental = checksum::finish(acc);

        let mut header = [0u8; OUTER_LEN];
        rewrite(&mut datagram, &outer(), &mut header).expect("forwardable");
        assert_eq!(u16::from_be_bytes([header[26], header[27]]), incremental);
        assert_eq!(usize::from(len), u16::from_be_bytes([header[24], header[25]]).into());
    }

    #[test]
    fn refuses_what_it_cannot_rewrite() {
        let mut header = [0u8; OUTER_LEN];
        let mut short = vec![0x01, 0x04, 0, 0, 0, 0];
        assert_eq!(rewrite(&mut short, &outer(), &mut header), Err(ForwardError::Truncated));
        let mut last = vec![0x01, 0x04, 0, 0, 0, 0, 255, 0];
        assert_eq!(rewrite(&mut last, &outer(), &mut header), Err(ForwardError::NextHopOverflow));
        assert_eq!(last[NEXT_HOP_OFFSET], 255, "unchanged on error");
        let mut huge = vec![0u8; 65_530];
        assert_eq!(rewrite(&mut huge, &outer(), &mut header), Err(ForwardError::TooLong));
    }
}
