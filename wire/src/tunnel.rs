//! GLB's whole tunnel header, written in one pass: what the director puts in front of every
//! forwarded packet (GLB docs/development/gue-header.md; RFC 791, RFC 768,
//! draft-ietf-intarea-gue).
//!
//! ```text
//! | Ethernet (14)         | IPv4 (20)              | UDP (8)           | GUE (8 + 4 × hops) | inner packet
//! | gateway, local, 0800  | DF, TTL 64, UDP, csum  | sport, 19523, csum| hlen, proto, hops  | (left in place)
//! ```
//!
//! Byte for byte what [`ethernet::Frame`]'s setters, [`ipv4::Repr::emit`], [`udp::emit`] and
//! [`gue::Repr::emit`] write one after the other (a test checks exactly that), but the parts
//! that never change — addresses, TTL, protocol, flags, and their share of both checksums — are
//! prepared once in a [`Template`], and both checksums are summed from values instead of read
//! back from the buffer. This runs once per forwarded packet.

use crate::ethernet::{self, EtherType};
use crate::ip::Protocol;
use crate::{Error, Result, checksum, gue, ipv4, put16, udp};
use core::net::Ipv4Addr;

/// Bytes before the listed hops: Ethernet, IPv4, UDP and the fixed part of GUE.
pub const FIXED_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + gue::FIXED_LEN;

/// The tunnel header of a packet with `listed` hops in its GUE list.
#[must_use]
pub const fn header_len(listed: usize) -> usize {
    FIXED_LEN + 4 * listed
}

const IP: usize = ethernet::HEADER_LEN;
const UDP: usize = IP + ipv4::HEADER_LEN;
const GUE: usize = UDP + udp::HEADER_LEN;

/// The per-director part of every tunnel header, prepared once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// The fixed part of the header with every constant field written (Ethernet, IPv4
    /// version to source address, UDP destination port): copied whole, then the per-packet
    /// fields are stored over it.
    fixed: [u8; FIXED_LEN],
    /// IPv4 header words that never change: version/IHL, flags, TTL/protocol, source.
    ip_sum: u32,
    /// UDP checksum words that never change: pseudo-header source and protocol, destination port.
    udp_sum: u32,
}

impl Template {
    /// Tunnels from `src` (and `local_mac`) to `gateway_mac`.
    #[must_use]
    pub fn new(gateway_mac: ethernet::Address, local_mac: ethernet::Address, src: Ipv4Addr) -> Self {
        let mut header = [0u8; ethernet::HEADER_LEN];
        let mut frame = ethernet::Frame::new_unchecked(&mut header[..]);
        frame.set_dst_addr(gateway_mac);
        frame.set_src_addr(local_mac);
        frame.set_ethertype(EtherType::Ipv4);
        let ttl_proto = u16::from_be_bytes([TTL, Protocol::Udp.into()]);
        let mut fixed = [0u8; FIXED_LEN];
        fixed[..IP].copy_from_slice(&header);
        // IPv4: 45 00 len | 0000 4000 | 40 11 csum | src | dst
        fixed[IP] = 0x45;
        put16(&mut fixed, IP + 6, DONT_FRAG);
        fixed[IP + 8] = TTL;
        fixed[IP + 9] = Protocol::Udp.into();
        fixed[IP + 12..IP + 16].copy_from_slice(&src.octets());
        // UDP: sport 19523 len csum
        put16(&mut fixed, UDP + 2, gue::PORT);
        Self {
            fixed,
            ip_sum: 0x4500 + u32::from(DONT_FRAG) + u32::from(ttl_proto) + checksum::addr_sum(src),
            udp_sum: checksum::addr_sum(src) + u32::from(u8::from(Protocol::Udp)) + u32::from(gue::PORT),
        }
    }

    /// Writes the tunnel header for `hops[0]` (the outer destination), listing `hops[1..]` in
    /// GUE, at the start of `packet`, whose remaining bytes are the inner packet of protocol
    /// `inner` (left untouched). `src_port` is the outer UDP source port.
    ///
    /// # Errors
    /// No hop, more than [`gue::MAX_HOPS`] listed, `packet` shorter than the header, or an
    /// outer packet longer than 65 535 bytes. Nothing is written then.
    pub fn emit(&self, packet: &mut [u8], hops: &[Ipv4Addr], src_port: u16, inner: Protocol) -> Result<()> {
        // One copy per hop count: every offset and length below is then a constant.
        match hops {
            [dst] => self.emit_listing(packet, *dst, &[], src_port, inner),
            [dst, a] => self.emit_listing(packet, *dst, &[*a], src_port, inner),
            [dst, a, b] => self.emit_listing(packet, *dst, &[*a, *b], src_port, inner),
            [dst, a, b, c] => self.emit_listing(packet, *dst, &[*a, *b, *c], src_port, inner),
            _ => Err(Error),
        }
    }

    #[inline(always)]
    fn emit_listing<const LISTED: usize>(
        &self,
        packet: &mut [u8],
        dst: Ipv4Addr,
        listed: &[Ipv4Addr; LISTED],
        src_port: u16,
        inner: Protocol,
    ) -> Result<()> {
        let (header, inner_packet) = packet.split_at_mut_checked(header_len(LISTED)).ok_or(Error)?;
        let udp_len = u16::try_from(header_len(LISTED) - UDP + inner_packet.len()).map_err(|_| Error)?;
        let total_len = udp_len.checked_add(20).ok_or(Error)?;
        let hop_count = u8::try_from(LISTED).map_err(|_| Error)?;
        let gue_first = u16::from_be_bytes([1 + hop_count, inner.into()]);
        let listed_sum: u32 = listed.iter().map(|&hop| checksum::addr_sum(hop)).sum();
        let dst_sum = checksum::addr_sum(dst);

        let ip_sum = self.ip_sum + u32::from(total_len) + dst_sum;
        let udp_words = u64::from(self.udp_sum)
            + u64::from(dst_sum)
            + 2 * u64::from(udp_len)
            + u64::from(src_port)
            + u64::from(gue_first)
            + u64::from(hop_count)
            + u64::from(listed_sum);
        let udp_sum =
            checksum::finish(checksum::fold64(udp_words + u64::from(checksum::sum(0, inner_packet))));

        let fixed: &mut [u8; FIXED_LEN] = (&mut header[..FIXED_LEN]).try_into().map_err(|_| Error)?;
        // The constant bytes in one copy, then the fields of this packet over them.
        *fixed = self.fixed;
        put16(fixed, IP + 2, total_len);
        put16(fixed, IP + 10, checksum::finish(ip_sum));
        fixed[IP + 16..IP + 20].copy_from_slice(&dst.octets());
        // UDP: a computed checksum of 0 is sent as 0xFFFF.
        put16(fixed, UDP, src_port);
        put16(fixed, UDP + 4, udp_len);
        put16(fixed, UDP + 6, if udp_sum == 0 { 0xffff } else { udp_sum });
        // GUE: hlen proto 0000 | private type 0000, next hop 0, hop count | hops
        let [hlen, proto] = gue_first.to_be_bytes();
        fixed[GUE..].copy_from_slice(&[hlen, proto, 0, 0, 0, 0, 0, hop_count]);
        for (slot, hop) in header[FIXED_LEN..].chunks_exact_mut(4).zip(listed) {
            slot.copy_from_slice(&hop.octets());
        }
        Ok(())
    }
}

/// The outer IPv4 header's flags word: Don't Fragment, offset 0 (as GLB).
const DONT_FRAG: u16 = 0x4000;
/// The outer TTL (as GLB).
const TTL: u8 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    const GATEWAY: ethernet::Address = [0x3a, 0x89, 0x7c, 0x7b, 0x5d, 0x1f];
    const LOCAL: ethernet::Address = [2, 0, 0, 0, 0, 1];

    /// The same header written by the individual emitters, as before this module.
    fn by_parts(src: Ipv4Addr, hops: &[Ipv4Addr], src_port: u16, inner: Protocol, packet: &mut [u8]) {
        let listed = &hops[1..];
        let len = header_len(listed.len());
        let mut eth = ethernet::Frame::new_unchecked(&mut packet[..IP]);
        eth.set_dst_addr(GATEWAY);
        eth.set_src_addr(LOCAL);
        eth.set_ethertype(EtherType::Ipv4);
        let udp_len = u16::try_from(packet.len() - UDP).expect("small");
        ipv4::Repr {
            src_addr: src,
            dst_addr: hops[0],
            protocol: Protocol::Udp,
            payload_len: udp_len,
            ttl: 64,
            ident: 0,
            dont_frag: true,
        }
        .emit(&mut packet[IP..UDP])
        .expect("fits");
        gue::Repr::new(inner, listed).expect("at most 3").emit(&mut packet[GUE..len]).expect("fits");
        udp::emit(&mut packet[UDP..], src_port, gue::PORT, src, hops[0]).expect("fits");
    }

    #[test]
    fn equals_the_individual_emitters() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..2000 {
            let src = Ipv4Addr::from_bits(u32::try_from(next() >> 32).expect("32 bits"));
            let hops: [Ipv4Addr; 4] =
                core::array::from_fn(|_| Ipv4Addr::from_bits(u32::try_from(next() >> 32).expect("32 bits")));
            let count = 1 + case % 4;
            let inner_len = usize::try_from(next() % 200).expect("small");
            let src_port = u16::try_from(next() >> 48).expect("16 bits");
            let inner = if case % 3 == 0 { Protocol::Ipv6 } else { Protocol::Ipv4 };
            let len = header_len(count - 1) + inner_len;
            let mut ours = [0u8; 300];
            for (i, byte) in ours[header_len(count - 1)..len].iter_mut().enumerate() {
                *byte = u8::try_from((next() >> 56) ^ (i as u64 & 0xff)).expect("8 bits");
            }
            let mut theirs = ours;
            Template::new(GATEWAY, LOCAL, src)
                .emit(&mut ours[..len], &hops[..count], src_port, inner)
                .expect("fits");
            by_parts(src, &hops[..count], src_port, inner, &mut theirs[..len]);
            assert_eq!(ours[..len], theirs[..len], "case {case}: {count} hops, {inner_len} inner bytes");
        }
    }

    #[test]
    fn rejects_what_cannot_be_written() {
        let t = Template::new(GATEWAY, LOCAL, Ipv4Addr::new(192, 0, 2, 1));
        let hop = Ipv4Addr::new(198, 51, 100, 1);
        let mut buf = [0u8; 80];
        assert_eq!(t.emit(&mut buf, &[], 1, Protocol::Ipv4), Err(Error), "no hop");
        assert_eq!(t.emit(&mut buf, &[hop; 5], 1, Protocol::Ipv4), Err(Error), "four listed");
        assert_eq!(t.emit(&mut buf[..header_len(1) - 1], &[hop; 2], 1, Protocol::Ipv4), Err(Error));
        assert_eq!(buf, [0u8; 80], "nothing written on error");
        assert!(
            t.emit(&mut buf[..header_len(1)], &[hop; 2], 1, Protocol::Ipv4).is_ok(),
            "empty inner packet"
        );
    }
}
