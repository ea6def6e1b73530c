//! Frame → (table, flow key, flow hint): classification (glb-director.md §7.1) and field
//! extraction (§7.2), with the fixes of decisions.md §4.
//!
//! Differences from GLB, each deliberate:
//! - IPv4 options: IHL is honoured, in the outer packet and in a quoted one;
//! - IPv6 extension headers are walked (at most 8) to the transport header;
//! - non-first fragments carry no ports: they match on address and protocol, hash with ports 0
//!   and a flow hint of 0, so every fragment of a datagram reaches the same proxy;
//! - nothing is read past the IP packet's own length, and a frame that ends before its IP packet
//!   does is never forwarded (its tunnel lengths could not be consistent).

use super::verdict::DropReason;
use forwarding_table::{Classifier, FlowKey};
use glb_wire::ethernet::{self, EtherType};
use glb_wire::icmp;
use glb_wire::ip::Protocol;
use glb_wire::tcp::Ports;
use glb_wire::{ipv4, ipv6};
use std::net::IpAddr;

/// Inner packet family, which decides the GUE protocol field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 inside (GUE proto 4).
    V4,
    /// IPv6 inside (GUE proto 41).
    V6,
}

/// A frame that matched a bind and has every field the hash and the tunnel need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// Table of the matching bind.
    pub table: usize,
    /// Hash input fields, in the client → VIP direction.
    pub flow: FlowKey,
    /// Mixed into the outer UDP source port (§7.4).
    pub flow_hint: u16,
    /// Inner family.
    pub family: Family,
    /// Length of the IP packet to tunnel (Ethernet padding excluded).
    pub ip_len: usize,
}

/// What classification decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Forward this flow.
    Matched(Classified),
    /// Not ours: the kernel's.
    Kernel,
    /// Ours, but not forwardable.
    Drop(DropReason),
}

/// Options that change classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassifyOptions {
    /// director.conf `forward_icmp_ping_responses`: tunnel ICMP echo requests to VIPs.
    pub forward_icmp_echo: bool,
}

/// Answers the three bind questions of §7.1. [`Classifier`] answers them from the table's binds;
/// [`ForcedTable`] answers every one with a fixed table, as GLB's pcap and stub tools do.
pub trait BindMatcher {
    /// Rule a (`port` is `None` for a non-first fragment).
    fn transport(&self, dst: IpAddr, proto: u8, port: Option<u16>) -> Option<usize>;
    /// Rule c: echo request to `dst`.
    fn address(&self, dst: IpAddr) -> Option<usize>;
    /// Rule b: ICMP error quoting a packet from `quoted_src`:`quoted_src_port`.
    fn icmp_error(&self, dst: IpAddr, quoted_src: IpAddr, quoted_src_port: u16) -> Option<usize>;
}

impl BindMatcher for Classifier {
    fn transport(&self, dst: IpAddr, proto: u8, port: Option<u16>) -> Option<usize> {
        Classifier::transport(self, dst, proto, port)
    }

    fn address(&self, dst: IpAddr) -> Option<usize> {
        Classifier::address(self, dst)
    }

    fn icmp_error(&self, dst: IpAddr, quoted_src: IpAddr, quoted_src_port: u16) -> Option<usize> {
        Classifier::icmp_error(self, dst, quoted_src, quoted_src_port)
    }
}

/// Every packet belongs to one table: classification bypassed, extraction unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForcedTable(pub usize);

impl BindMatcher for ForcedTable {
    fn transport(&self, _: IpAddr, _: u8, _: Option<u16>) -> Option<usize> {
        Some(self.0)
    }

    fn address(&self, _: IpAddr) -> Option<usize> {
        Some(self.0)
    }

    fn icmp_error(&self, _: IpAddr, _: IpAddr, _: u16) -> Option<usize> {
        Some(self.0)
    }
}

/// Classifies one Ethernet frame.
#[must_use]
pub fn classify(frame: &[u8], classifier: &impl BindMatcher, options: ClassifyOptions) -> Classification {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return Classification::Kernel;
    };
    let l3 = eth.payload();
    let (header, payload) = match eth.ethertype() {
        EtherType::Ipv4 => match ipv4_header(l3) {
            Some(parts) => parts,
            None => return Classification::Kernel,
        },
        EtherType::Ipv6 => match ipv6_header(l3) {
            Some(parts) => parts,
            None => return Classification::Kernel,
        },
        EtherType::Unknown(_) => return Classification::Kernel,
    };
    let (table, flow, flow_hint) = match header.protocol {
        Protocol::Icmp | Protocol::Icmpv6 => match icmp_flow(&header, payload, classifier, options) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        },
        protocol => match transport_flow(&header, u8::from(protocol), payload, classifier) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        },
    };
    if header.truncated {
        return Classification::Drop(DropReason::Truncated);
    }
    Classification::Matched(Classified {
        table,
        flow,
        flow_hint,
        family: header.family,
        ip_len: header.ip_len,
    })
}

/// What the outer IP header says, family-independently.
struct IpHeader {
    family: Family,
    src: IpAddr,
    dst: IpAddr,
    /// Transport protocol (after IPv6 extension headers).
    protocol: Protocol,
    /// Carries no transport header (IPv4 offset ≠ 0, or an IPv6 fragment header with one).
    non_first_fragment: bool,
    /// IPv4 Identification, or the low 16 bits of the IPv6 flow label: the echo flow hint.
    echo_hint: u16,
    ip_len: usize,
    /// The frame ends before the IP packet does.
    truncated: bool,
}

type Found = (usize, FlowKey, u16);

fn ipv4_header(l3: &[u8]) -> Option<(IpHeader, &[u8])> {
    let ip = ipv4::Packet::new_checked(l3).ok()?;
    let header = IpHeader {
        family: Family::V4,
        src: ip.src_addr().into(),
        dst: ip.dst_addr().into(),
        protocol: ip.protocol(),
        non_first_fragment: ip.frag_offset() != 0,
        echo_hint: ip.ident(),
        ip_len: usize::from(ip.total_len()),
        truncated: ip.is_truncated(),
    };
    Some((header, ip.payload()))
}

fn ipv6_header(l3: &[u8]) -> Option<(IpHeader, &[u8])> {
    let ip = ipv6::Packet::new_checked(l3).ok()?;
    // A chain that is too long or cut short matches nothing (decisions.md §4).
    let upper = ip.upper_layer().ok()?;
    let header = IpHeader {
        family: Family::V6,
        src: ip.src_addr().into(),
        dst: ip.dst_addr().into(),
        protocol: upper.protocol,
        non_first_fragment: upper.non_first_fragment,
        echo_hint: u16::try_from(ip.flow_label() & 0xffff).unwrap_or(0),
        ip_len: ip.total_len(),
        truncated: ip.is_truncated(),
    };
    Some((header, ip.payload().get(upper.offset..).unwrap_or(&[])))
}

/// Rule a: TCP, UDP or any protocol a bind names.
fn transport_flow(
    header: &IpHeader,
    protocol: u8,
    l4: &[u8],
    classifier: &impl BindMatcher,
) -> Result<Found, Classification> {
    let flow = |src_port, dst_port| FlowKey { src: header.src, dst: header.dst, src_port, dst_port };
    if header.non_first_fragment {
        let table = classifier.transport(header.dst, protocol, None).ok_or(Classification::Kernel)?;
        return Ok((table, flow(0, 0), 0));
    }
    match Ports::parse(l4) {
        Ok(ports) => {
            let table =
                classifier.transport(header.dst, protocol, Some(ports.dst)).ok_or(Classification::Kernel)?;
            Ok((table, flow(ports.src, ports.dst), ports.src))
        }
        // No ports to match on: ours if the address and protocol are bound, else the kernel's.
        Err(_) => Err(match classifier.transport(header.dst, protocol, None) {
            Some(_) => Classification::Drop(DropReason::Truncated),
            None => Classification::Kernel,
        }),
    }
}

/// Rules b (frag-needed / packet-too-big, routed on the quoted packet) and c (echo request).
fn icmp_flow(
    header: &IpHeader,
    payload: &[u8],
    classifier: &impl BindMatcher,
    options: ClassifyOptions,
) -> Result<Found, Classification> {
    if header.non_first_fragment {
        return Err(Classification::Kernel);
    }
    let message = icmp::Packet::new_checked(payload).map_err(|_| Classification::Kernel)?;
    let (echo, too_big) = match header.family {
        Family::V4 => (icmp::v4::ECHO_REQUEST, icmp::v4::FRAG_NEEDED),
        Family::V6 => (icmp::v6::ECHO_REQUEST, icmp::v6::PACKET_TOO_BIG),
    };
    let kind = message.kind();
    if kind == echo && options.forward_icmp_echo {
        let table = classifier.address(header.dst).ok_or(Classification::Kernel)?;
        let flow = FlowKey { src: header.src, dst: header.dst, src_port: 0, dst_port: 0 };
        return Ok((table, flow, header.echo_hint));
    }
    if kind != too_big {
        return Err(Classification::Kernel);
    }
    // The quoted packet went VIP → client; the flow to hash is client → VIP.
    let quoted = message.data().map_err(|_| Classification::Kernel)?;
    let (vip, client, l4) = quoted_packet(header.family, quoted).ok_or(Classification::Kernel)?;
    let vip_port = Ports::parse_src(l4).map_err(|_| Classification::Kernel)?;
    let table = classifier.icmp_error(header.dst, vip, vip_port).ok_or(Classification::Kernel)?;
    let ports = Ports::parse(l4).map_err(|_| Classification::Drop(DropReason::Truncated))?;
    let flow = FlowKey { src: client, dst: vip, src_port: ports.dst, dst_port: ports.src };
    Ok((table, flow, ports.dst))
}

/// (source, destination, transport bytes) of the packet quoted by an ICMP error. Quoted packets
/// are cut short by design, so only their header must be complete.
fn quoted_packet(family: Family, quoted: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    match family {
        Family::V4 => {
            let ip = ipv4::Packet::new_checked(quoted).ok()?;
            Some((ip.src_addr().into(), ip.dst_addr().into(), ip.quoted_payload()))
        }
        Family::V6 => {
            let ip = ipv6::Packet::new_checked(quoted).ok()?;
            let rest = ip.quoted_payload();
            let upper = ipv6::walk_extension_headers(ip.next_header(), rest).ok()?;
            Some((ip.src_addr().into(), ip.dst_addr().into(), rest.get(upper.offset..)?))
        }
    }
}
