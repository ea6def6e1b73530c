//! What GLB's kernel module reads from a GUE datagram, with its exact validation
//! (glb-healthcheck-redirect-xdp.md §2.2) and classification of the inner packet (§2.3).
//!
//! The input is the UDP payload: the kernel's UDP socket has already checked the outer IPv4
//! and UDP headers (and the UDP checksum). Nothing here allocates or panics on any input.

use glb_wire::ip::Protocol;
use glb_wire::{gue, icmp, ipv4, ipv6, tcp};
use std::net::{IpAddr, Ipv4Addr};

/// Why a datagram is dropped without a reply (GLB: `NF_DROP`). Each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than the GUE base header or the private data its `hlen` announces, or longer
    /// than the receive buffer.
    Truncated,
    /// `hlen` 0: GUE without GLB's private data.
    NoPrivateData,
    /// `hlen` is not `hop_count + 1`.
    HopCountMismatch,
    /// The GUE protocol is neither 4 (IPv4) nor 41 (IPv6).
    InnerProtocol,
    /// The inner IP header is unreadable (wrong version, bad length), or its TCP or ICMP header
    /// — or the packet an ICMP error quotes — is cut short. (GLB reads the inner header without
    /// checking its version; the kernel then drops such a packet after decapsulation.)
    InnerMalformed,
    /// The inner transport protocol is not TCP, UDP or ICMP. IPv6 extension headers are not
    /// walked, as in GLB, so any of them lands here too.
    InnerUnsupported,
}

/// The inner packet's family, from the GUE protocol field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Protocol 4.
    V4,
    /// Protocol 41.
    V6,
}

/// A validated GUE header with GLB's hop list, over the datagram.
#[derive(Debug, Clone, Copy)]
pub struct Gue<'a> {
    datagram: &'a [u8],
    family: Family,
}

impl<'a> Gue<'a> {
    /// Validates `datagram` (a UDP payload) as GLB does: `hlen ≥ 1`, the private data present,
    /// `hlen == hop_count + 1`, inner protocol 4 or 41. The GUE version, control bit, flags and
    /// private-data type are not checked (GLB does not either).
    ///
    /// # Errors
    /// The reason to drop it.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, DropReason> {
        let view = gue::Packet::new_unchecked(datagram);
        let Some(&first) = datagram.first() else { return Err(DropReason::Truncated) };
        if datagram.len() < 4 {
            return Err(DropReason::Truncated);
        }
        // Hlen counts 32-bit words after the base header; a 5-bit field, so at most 30 hops fit
        // and GLB's upper bound (256 hops) can never be exceeded.
        let hlen = first & 0x1f;
        if hlen == 0 {
            return Err(DropReason::NoPrivateData);
        }
        if datagram.len() < view.header_len() {
            return Err(DropReason::Truncated);
        }
        if usize::from(hlen) != usize::from(view.hop_count()) + 1 {
            return Err(DropReason::HopCountMismatch);
        }
        let family = match view.protocol() {
            Protocol::Ipv4 => Family::V4,
            Protocol::Ipv6 => Family::V6,
            _ => return Err(DropReason::InnerProtocol),
        };
        Ok(Self { datagram, family })
    }

    fn view(&self) -> gue::Packet<&'a [u8]> {
        gue::Packet::new_unchecked(self.datagram)
    }

    /// The inner packet's family.
    #[must_use]
    pub fn family(&self) -> Family {
        self.family
    }

    /// Index of the next hop to try.
    #[must_use]
    pub fn next_hop(&self) -> u8 {
        self.view().next_hop()
    }

    /// Number of hops listed.
    #[must_use]
    pub fn hop_count(&self) -> u8 {
        self.view().hop_count()
    }

    /// Hop `index`, if listed.
    #[must_use]
    pub fn hop(&self, index: usize) -> Option<Ipv4Addr> {
        self.view().hop(index)
    }

    /// Offset of the inner packet in the datagram (the GUE header's length).
    #[must_use]
    pub fn inner_offset(&self) -> usize {
        self.view().header_len()
    }

    /// The inner packet.
    #[must_use]
    pub fn inner(&self) -> &'a [u8] {
        self.datagram.get(self.inner_offset()..).unwrap_or(&[])
    }
}

/// Offset of `next_hop` in the datagram (GUE base header, then the private data type).
pub const NEXT_HOP_OFFSET: usize = 6;

/// A TCP segment's identity and flags, from the local host's point of view: what the socket
/// lookup and the second-chance decision need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The client: the inner source (for an ICMP error, the quoted packet's destination).
    pub remote: IpAddr,
    /// The client's port.
    pub remote_port: u16,
    /// This host's end: the inner destination (a VIP, or the proxy's own address).
    pub local: IpAddr,
    /// The service port.
    pub local_port: u16,
    /// TCP flags (0 for the header GLB builds from an ICMP error).
    pub flags: u8,
    /// Offset of the real TCP header in the inner packet; `None` for an ICMP error, whose
    /// "header" is only the quoted ports, swapped.
    pub tcp_offset: Option<usize>,
}

/// TCP FIN flag.
pub const FLAG_FIN: u8 = 0x01;

impl Flow {
    /// SYN set, whatever else is.
    #[must_use]
    pub fn is_syn(&self) -> bool {
        self.flags & tcp::FLAG_SYN != 0
    }

    /// ACK set and FIN, RST and SYN clear: the only segments that may carry a SYN cookie.
    #[must_use]
    pub fn is_ack_only(&self) -> bool {
        self.flags & tcp::FLAG_ACK != 0 && self.flags & (FLAG_FIN | tcp::FLAG_RST | tcp::FLAG_SYN) == 0
    }
}

/// What the inner packet needs (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner {
    /// Deliver locally with no further question: UDP, and ICMP other than the two PMTU errors
    /// (echo requests of the health checker included).
    Stateless,
    /// TCP, or a PMTU error about a TCP flow: the second-chance decision decides.
    Tcp(Flow),
}

/// Classifies the inner packet of `family`.
///
/// # Errors
/// The reason to drop it.
pub fn classify(family: Family, inner: &[u8]) -> Result<Inner, DropReason> {
    match family {
        Family::V4 => classify_v4(inner),
        Family::V6 => classify_v6(inner),
    }
}

fn classify_v4(inner: &[u8]) -> Result<Inner, DropReason> {
    let ip = ipv4::Packet::new_checked(inner).map_err(|_| DropReason::InnerMalformed)?;
    let l4_at = ip.header_len();
    let l4 = &inner[l4_at..];
    let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
    match ip.protocol() {
        Protocol::Tcp => tcp_flow(src, dst, l4, l4_at),
        Protocol::Udp => Ok(Inner::Stateless),
        Protocol::Icmp => {
            let message = icmp_header(l4)?;
            if message.kind() != icmp::v4::FRAG_NEEDED {
                return Ok(Inner::Stateless);
            }
            // The quoted packet went from this host to the client: its destination is the
            // remote end. Its protocol is not checked (GLB does not either).
            let quoted = message.data().map_err(|_| DropReason::InnerMalformed)?;
            let header = quoted.get(..ipv4::HEADER_LEN).ok_or(DropReason::InnerMalformed)?;
            let quoted_ip = ipv4::Packet::new_unchecked(header);
            let ports_at = usize::from(header[0] & 0x0f) * 4;
            let ports = tcp::Ports::parse(quoted.get(ports_at..).unwrap_or(&[]))
                .map_err(|_| DropReason::InnerMalformed)?;
            Ok(Inner::Tcp(Flow {
                remote: IpAddr::V4(quoted_ip.dst_addr()),
                remote_port: ports.dst,
                local: IpAddr::V4(quoted_ip.src_addr()),
                local_port: ports.src,
                flags: 0,
                tcp_offset: None,
            }))
        }
        _ => Err(DropReason::InnerUnsupported),
    }
}

fn classify_v6(inner: &[u8]) -> Result<Inner, DropReason> {
    let ip = ipv6::Packet::new_checked(inner).map_err(|_| DropReason::InnerMalformed)?;
    let l4 = &inner[ipv6::HEADER_LEN..];
    let (src, dst) = (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()));
    // The fixed header's next header only: extension headers are not walked (as GLB).
    match ip.next_header() {
        Protocol::Tcp => tcp_flow(src, dst, l4, ipv6::HEADER_LEN),
        Protocol::Udp => Ok(Inner::Stateless),
        Protocol::Icmpv6 => {
            let message = icmp_header(l4)?;
            if message.kind().0 != icmp::v6::PACKET_TOO_BIG.0 {
                return Ok(Inner::Stateless);
            }
            let quoted = message.data().map_err(|_| DropReason::InnerMalformed)?;
            let header = quoted.get(..ipv6::HEADER_LEN).ok_or(DropReason::InnerMalformed)?;
            let quoted_ip = ipv6::Packet::new_unchecked(header);
            let ports =
                tcp::Ports::parse(&quoted[ipv6::HEADER_LEN..]).map_err(|_| DropReason::InnerMalformed)?;
            Ok(Inner::Tcp(Flow {
                remote: IpAddr::V6(quoted_ip.dst_addr()),
                remote_port: ports.dst,
                local: IpAddr::V6(quoted_ip.src_addr()),
                local_port: ports.src,
                flags: 0,
                tcp_offset: None,
            }))
        }
        _ => Err(DropReason::InnerUnsupported),
    }
}

/// The 8-byte ICMP(v6) header (GLB reads all 8 before looking at the type).
fn icmp_header(l4: &[u8]) -> Result<icmp::Packet<&[u8]>, DropReason> {
    if l4.len() < icmp::HEADER_LEN {
        return Err(DropReason::InnerMalformed);
    }
    Ok(icmp::Packet::new_unchecked(l4))
}

fn tcp_flow(remote: IpAddr, local: IpAddr, l4: &[u8], l4_at: usize) -> Result<Inner, DropReason> {
    let segment = tcp::Packet::new_checked(l4).map_err(|_| DropReason::InnerMalformed)?;
    Ok(Inner::Tcp(Flow {
        remote,
        remote_port: segment.src_port(),
        local,
        local_port: segment.dst_port(),
        flags: segment.flags(),
        tcp_offset: Some(l4_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 5);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5);
    const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x10);

    fn v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: Protocol::from(proto),
            payload_len: u16::try_from(l4.len()).expect("short"),
            ttl: 64,
            ident: 0,
            dont_frag: false,
        }
        .emit(&mut p)
        .expect("header");
        p.extend_from_slice(l4);
        p
    }

    fn v6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&u16::try_from(l4.len()).expect("short").to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(l4);
        p
    }

    /// A 20-byte TCP header.
    fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = 0x50;
        t[13] = flags;
        t
    }

    fn gue(proto: u8, next_hop: u8, hops: &[[u8; 4]], inner: &[u8]) -> Vec<u8> {
        let count = u8::try_from(hops.len()).expect("few");
        let mut d = vec![1 + count, proto, 0, 0, 0, 0, next_hop, count];
        for hop in hops {
            d.extend_from_slice(hop);
        }
        d.extend_from_slice(inner);
        d
    }

    #[test]
    fn validation_follows_glb() {
        let inner = v4(CLIENT, VIP, 6, &tcp(40_000, 22, 0x10));
        let ok = gue(4, 1, &[[192, 0, 2, 11], [192, 0, 2, 12]], &inner);
        let parsed = Gue::parse(&ok).expect("valid");
        assert_eq!((parsed.family(), parsed.next_hop(), parsed.hop_count()), (Family::V4, 1, 2));
        assert_eq!(parsed.hop(1), Some(Ipv4Addr::new(192, 0, 2, 12)));
        assert_eq!(parsed.hop(2), None);
        assert_eq!((parsed.inner_offset(), parsed.inner()), (16, &inner[..]));

        // Version, control bit, flags and private-data type are not checked.
        let mut lax = ok.clone();
        lax[0] |= 0xe0;
        lax[2..6].copy_from_slice(&[0xff; 4]);
        assert!(Gue::parse(&lax).is_ok());

        assert_eq!(Gue::parse(&ok[..3]).err(), Some(DropReason::Truncated));
        assert_eq!(Gue::parse(&[]).err(), Some(DropReason::Truncated));
        assert_eq!(Gue::parse(&ok[..15]).err(), Some(DropReason::Truncated), "hops cut short");
        let mut hlen0 = ok.clone();
        hlen0[0] = 0;
        assert_eq!(Gue::parse(&hlen0).err(), Some(DropReason::NoPrivateData));
        let mut mismatch = ok.clone();
        mismatch[7] = 1;
        assert_eq!(Gue::parse(&mismatch).err(), Some(DropReason::HopCountMismatch));
        for proto in [0, 6, 17, 47] {
            let mut other = ok.clone();
            other[1] = proto;
            assert_eq!(Gue::parse(&other).err(), Some(DropReason::InnerProtocol), "proto {proto}");
        }
        let six = gue(41, 0, &[], &v6(CLIENT6, VIP6, 6, &tcp(1, 2, 0x02)));
        assert_eq!(Gue::parse(&six).map(|g| g.family()), Ok(Family::V6));
    }

    #[test]
    fn tcp_flows_from_both_families() {
        let flow = |family, inner: &[u8]| match classify(family, inner) {
            Ok(Inner::Tcp(flow)) => flow,
            other => panic!("{other:?}"),
        };
        let f = flow(Family::V4, &v4(CLIENT, VIP, 6, &tcp(40_000, 22, 0x12)));
        assert_eq!(
            (f.remote, f.remote_port, f.local, f.local_port),
            (IpAddr::V4(CLIENT), 40_000, IpAddr::V4(VIP), 22)
        );
        assert_eq!((f.flags, f.tcp_offset), (0x12, Some(20)));
        assert!(f.is_syn() && !f.is_ack_only());
        // IPv4 options: the TCP header starts after them.
        let mut options = v4(CLIENT, VIP, 6, &[[1, 1, 1, 1].as_slice(), &tcp(40_000, 22, 0x10)].concat());
        options[0] = 0x46;
        let f = flow(Family::V4, &options);
        assert_eq!((f.local_port, f.tcp_offset, f.is_ack_only()), (22, Some(24), true));
        let f = flow(Family::V6, &v6(CLIENT6, VIP6, 6, &tcp(40_000, 443, 0x18)));
        assert_eq!(
            (f.remote, f.local, f.local_port, f.tcp_offset),
            (IpAddr::V6(CLIENT6), IpAddr::V6(VIP6), 443, Some(40))
        );
        assert!(f.is_ack_only(), "PSH is allowed");
    }

    #[test]
    fn stateless_and_unsupported() {
        let echo = [8, 0, 0, 0, 0, 0, 0, 1, b'x'];
        assert_eq!(classify(Family::V4, &v4(CLIENT, VIP, 1, &echo)), Ok(Inner::Stateless));
        let unreachable = [3, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            classify(Family::V4, &v4(CLIENT, VIP, 1, &unreachable)),
            Ok(Inner::Stateless),
            "not code 4"
        );
        assert_eq!(classify(Family::V4, &v4(CLIENT, VIP, 17, &[0; 8])), Ok(Inner::Stateless));
        assert_eq!(classify(Family::V6, &v6(CLIENT6, VIP6, 17, &[0; 8])), Ok(Inner::Stateless));
        assert_eq!(
            classify(Family::V6, &v6(CLIENT6, VIP6, 58, &[128, 0, 0, 0, 0, 0, 0, 1])),
            Ok(Inner::Stateless)
        );
        assert_eq!(
            classify(Family::V6, &v6(CLIENT6, VIP6, 58, &[135, 0, 0, 0, 0, 0, 0, 0])),
            Ok(Inner::Stateless)
        );
        assert_eq!(classify(Family::V4, &v4(CLIENT, VIP, 47, &[0; 8])), Err(DropReason::InnerUnsupported));
        for ext in [0, 43, 44, 60] {
            let inner = v6(CLIENT6, VIP6, ext, &[6, 0, 0, 0, 0, 0, 0, 0]);
            assert_eq!(classify(Family::V6, &inner), Err(DropReason::InnerUnsupported), "next header {ext}");
        }
    }

    #[test]
    fn malformed_inner_packets() {
        let good = v4(CLIENT, VIP, 6, &tcp(1, 2, 0x10));
        assert_eq!(
            classify(Family::V4, &good[..39]),
            Err(DropReason::InnerMalformed),
            "TCP header cut short"
        );
        assert_eq!(classify(Family::V4, &good[..19]), Err(DropReason::InnerMalformed));
        let six = v6(CLIENT6, VIP6, 6, &tcp(1, 2, 0x10));
        assert_eq!(classify(Family::V4, &six), Err(DropReason::InnerMalformed), "IPv6 behind protocol 4");
        assert_eq!(classify(Family::V6, &good), Err(DropReason::InnerMalformed), "IPv4 behind protocol 41");
        assert_eq!(classify(Family::V6, &six[..59]), Err(DropReason::InnerMalformed));
        let mut ihl4 = good.clone();
        ihl4[0] = 0x44;
        assert_eq!(classify(Family::V4, &ihl4), Err(DropReason::InnerMalformed));
        assert_eq!(classify(Family::V4, &v4(CLIENT, VIP, 1, &[3, 4, 0, 0])), Err(DropReason::InnerMalformed));
    }

    #[test]
    fn pmtu_errors_build_glbs_swapped_header() {
        // What the VIP sent the client: VIP:22 → CLIENT:40000.
        let quoted = v4(VIP, CLIENT, 6, &tcp(22, 40_000, 0x18));
        let mut icmp = vec![3, 4, 0, 0, 0, 0, 0x05, 0xdc];
        icmp.extend_from_slice(&quoted[..28]); // header + 8 bytes, as routers quote
        let router = Ipv4Addr::new(198, 51, 100, 1);
        let expected = Flow {
            remote: IpAddr::V4(CLIENT),
            remote_port: 40_000,
            local: IpAddr::V4(VIP),
            local_port: 22,
            flags: 0,
            tcp_offset: None,
        };
        assert_eq!(classify(Family::V4, &v4(router, VIP, 1, &icmp)), Ok(Inner::Tcp(expected)));
        assert_eq!(
            classify(Family::V4, &v4(router, VIP, 1, &icmp[..8 + 23])),
            Err(DropReason::InnerMalformed)
        );
        // The quoted protocol is not checked (GLB does not either).
        let mut udp = icmp.clone();
        udp[8 + 9] = 17;
        assert!(matches!(classify(Family::V4, &v4(router, VIP, 1, &udp)), Ok(Inner::Tcp(_))));

        let quoted6 = v6(VIP6, CLIENT6, 6, &tcp(443, 40_001, 0x10));
        let mut ptb = vec![2, 0, 0, 0, 0, 0, 0x05, 0x78];
        ptb.extend_from_slice(&quoted6[..48]);
        let router6 = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
        let flow = match classify(Family::V6, &v6(router6, VIP6, 58, &ptb)) {
            Ok(Inner::Tcp(flow)) => flow,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (flow.remote, flow.remote_port, flow.local, flow.local_port),
            (IpAddr::V6(CLIENT6), 40_001, IpAddr::V6(VIP6), 443)
        );
        assert!(!flow.is_syn() && !flow.is_ack_only());
        assert_eq!(
            classify(Family::V6, &v6(router6, VIP6, 58, &ptb[..8 + 43])),
            Err(DropReason::InnerMalformed)
        );
    }
}
