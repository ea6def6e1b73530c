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
use forwarding_table::hash::{HashInput, Key, ShortInput, SmallInput, siphash_short};
use forwarding_table::lookup::write_hash_input;
use forwarding_table::{Classifier, FlowKey, HashFields};
use glb_wire::ethernet::{self, EtherType};
use glb_wire::icmp;
use glb_wire::ip::Protocol;
use glb_wire::tcp::Ports;
use glb_wire::{ipv4, ipv6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Inner packet family, which decides the GUE protocol field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 inside (GUE proto 4).
    V4,
    /// IPv6 inside (GUE proto 41).
    V6,
}

/// The fields a flow hash can use, client → VIP, as integers: IPv4 addresses in the low 32
/// bits (the family is [`Classified::family`]), ports 0 where the packet has none.
///
/// Not a [`FlowKey`]: its `IpAddr`s are byte-aligned enums, and copying one right after it was
/// built stalls on store-to-load forwarding, once per packet. [`Classified::flow_key`] converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Client address bits.
    pub src: u128,
    /// VIP bits.
    pub dst: u128,
    /// Client port.
    pub src_port: u16,
    /// VIP port.
    pub dst_port: u16,
}

/// A frame that matched a bind and has every field the hash and the tunnel need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// Table of the matching bind.
    pub table: usize,
    /// Hash input fields, in the client → VIP direction.
    pub flow: Flow,
    /// Mixed into the outer UDP source port (§7.4).
    pub flow_hint: u16,
    /// Inner family.
    pub family: Family,
    /// Length of the IP packet to tunnel (Ethernet padding excluded).
    pub ip_len: usize,
}

impl Classified {
    /// The flow as the table's lookup API takes it.
    #[must_use]
    pub fn flow_key(&self) -> FlowKey {
        let addr = |bits: u128| match self.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(low32(bits))),
            Family::V6 => IpAddr::V6(Ipv6Addr::from_bits(bits)),
        };
        FlowKey {
            src: addr(self.flow.src),
            dst: addr(self.flow.dst),
            src_port: self.flow.src_port,
            dst_port: self.flow.dst_port,
        }
    }

    /// [`FlowKey::hash`] of [`Self::flow_key`]: an IPv4 flow's input is assembled in registers
    /// ([`SmallInput`]), an IPv6 flow's in a [`ShortInput`].
    #[inline(always)]
    #[must_use]
    pub fn hash(&self, key: &Key, fields: HashFields) -> u64 {
        match self.family {
            Family::V4 => {
                let mut input = SmallInput::new();
                self.write_hash_input(fields, &mut input);
                siphash_short(key, &input)
            }
            Family::V6 => {
                let mut input = ShortInput::new();
                self.write_hash_input(fields, &mut input);
                siphash_short(key, &input)
            }
        }
    }

    /// Writes the packet-hash input for `fields` into `input`: what [`FlowKey::hash`] hashes
    /// for [`Self::flow_key`] (an IPv6 flow's needs a [`ShortInput`]).
    #[inline]
    pub fn write_hash_input(&self, fields: HashFields, input: &mut impl HashInput) {
        let Flow { src, dst, src_port, dst_port } = self.flow;
        match self.family {
            Family::V4 => write_hash_input(&low32(src), &low32(dst), src_port, dst_port, fields, input),
            Family::V6 => {
                write_hash_input(&src.to_be_bytes(), &dst.to_be_bytes(), src_port, dst_port, fields, input);
            }
        }
    }
}

/// The IPv4 address in the low 32 bits, as network-order bytes.
fn low32(bits: u128) -> [u8; 4] {
    let [.., a, b, c, d] = bits.to_be_bytes();
    [a, b, c, d]
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
    /// Rule a for an IPv4 destination (the per-packet case; override it to skip `IpAddr`).
    fn transport_v4(&self, dst: Ipv4Addr, proto: u8, port: Option<u16>) -> Option<usize> {
        self.transport(dst.into(), proto, port)
    }
    /// Rule c: echo request to `dst`.
    fn address(&self, dst: IpAddr) -> Option<usize>;
    /// Rule b: ICMP error quoting a packet from `quoted_src`:`quoted_src_port`.
    fn icmp_error(&self, dst: IpAddr, quoted_src: IpAddr, quoted_src_port: u16) -> Option<usize>;
}

impl BindMatcher for Classifier {
    fn transport(&self, dst: IpAddr, proto: u8, port: Option<u16>) -> Option<usize> {
        Classifier::transport(self, dst, proto, port)
    }

    #[inline(always)]
    fn transport_v4(&self, dst: Ipv4Addr, proto: u8, port: Option<u16>) -> Option<usize> {
        Classifier::transport_v4(self, dst, proto, port)
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
///
/// Always inlined: the result is a large value, and a copy of it out of a callee's return slot
/// made right after the callee's narrow stores stalls on store-to-load forwarding.
#[inline(always)]
#[must_use]
pub fn classify(frame: &[u8], classifier: &impl BindMatcher, options: ClassifyOptions) -> Classification {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return Classification::Kernel;
    };
    let l3 = eth.payload();
    // One copy of the rest per family, so addresses stay plain `Ipv4Addr`/`Ipv6Addr` values
    // (in registers) until the flow key is built.
    match eth.ethertype() {
        EtherType::Ipv4 => match ipv4_header(l3) {
            Some((header, payload)) => classify_ip(&header, payload, classifier, options),
            None => Classification::Kernel,
        },
        EtherType::Ipv6 => match ipv6_header(l3) {
            Some((header, payload)) => classify_ip(&header, payload, classifier, options),
            None => Classification::Kernel,
        },
        EtherType::Unknown(_) => Classification::Kernel,
    }
}

#[inline(always)]
fn classify_ip<A: Address>(
    header: &IpHeader<A>,
    payload: &[u8],
    classifier: &impl BindMatcher,
    options: ClassifyOptions,
) -> Classification {
    const ICMP: u8 = Protocol::Icmp.number();
    const ICMPV6: u8 = Protocol::Icmpv6.number();
    let (table, flow, flow_hint) = match header.protocol {
        ICMP | ICMPV6 => match icmp_flow(header, payload, classifier, options) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        },
        protocol => match transport_flow(header, protocol, payload, classifier) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        },
    };
    if header.truncated {
        return Classification::Drop(DropReason::Truncated);
    }
    Classification::Matched(Classified { table, flow, flow_hint, family: A::FAMILY, ip_len: header.ip_len })
}

/// An address family's address type, and the bind question asked per packet.
trait Address: Copy + Into<IpAddr> {
    const FAMILY: Family;
    fn bits(self) -> u128;
    fn transport(matcher: &impl BindMatcher, dst: Self, proto: u8, port: Option<u16>) -> Option<usize>;
}

impl Address for Ipv4Addr {
    const FAMILY: Family = Family::V4;

    fn bits(self) -> u128 {
        self.to_bits().into()
    }

    #[inline(always)]
    fn transport(matcher: &impl BindMatcher, dst: Self, proto: u8, port: Option<u16>) -> Option<usize> {
        matcher.transport_v4(dst, proto, port)
    }
}

impl Address for Ipv6Addr {
    const FAMILY: Family = Family::V6;

    fn bits(self) -> u128 {
        self.to_bits()
    }

    #[inline]
    fn transport(matcher: &impl BindMatcher, dst: Self, proto: u8, port: Option<u16>) -> Option<usize> {
        matcher.transport(dst.into(), proto, port)
    }
}

/// What the outer IP header says, family-independently.
struct IpHeader<A> {
    src: A,
    dst: A,
    /// Transport protocol number (after IPv6 extension headers).
    protocol: u8,
    /// Carries no transport header (IPv4 offset ≠ 0, or an IPv6 fragment header with one).
    non_first_fragment: bool,
    /// IPv4 Identification, or the low 16 bits of the IPv6 flow label: the echo flow hint.
    echo_hint: u16,
    ip_len: usize,
    /// The frame ends before the IP packet does.
    truncated: bool,
}

type Found = (usize, Flow, u16);

#[inline(always)]
fn ipv4_header(l3: &[u8]) -> Option<(IpHeader<Ipv4Addr>, &[u8])> {
    let ip = ipv4::Packet::new_checked(l3).ok()?;
    let header = IpHeader {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        protocol: ip.protocol_number(),
        non_first_fragment: ip.frag_offset() != 0,
        echo_hint: ip.ident(),
        ip_len: usize::from(ip.total_len()),
        truncated: ip.is_truncated(),
    };
    Some((header, ip.payload()))
}

fn ipv6_header(l3: &[u8]) -> Option<(IpHeader<Ipv6Addr>, &[u8])> {
    let ip = ipv6::Packet::new_checked(l3).ok()?;
    // A chain that is too long or cut short matches nothing (decisions.md §4).
    let upper = ip.upper_layer().ok()?;
    let header = IpHeader {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        protocol: upper.protocol.number(),
        non_first_fragment: upper.non_first_fragment,
        echo_hint: u16::try_from(ip.flow_label() & 0xffff).unwrap_or(0),
        ip_len: ip.total_len(),
        truncated: ip.is_truncated(),
    };
    Some((header, ip.payload().get(upper.offset..).unwrap_or(&[])))
}

/// Rule a: TCP, UDP or any protocol a bind names. Always inlined, like [`classify`].
#[inline(always)]
fn transport_flow<A: Address>(
    header: &IpHeader<A>,
    protocol: u8,
    l4: &[u8],
    classifier: &impl BindMatcher,
) -> Result<Found, Classification> {
    let flow =
        |src_port, dst_port| Flow { src: header.src.bits(), dst: header.dst.bits(), src_port, dst_port };
    if header.non_first_fragment {
        let table = A::transport(classifier, header.dst, protocol, None).ok_or(Classification::Kernel)?;
        return Ok((table, flow(0, 0), 0));
    }
    match Ports::parse(l4) {
        Ok(ports) => {
            let table = A::transport(classifier, header.dst, protocol, Some(ports.dst))
                .ok_or(Classification::Kernel)?;
            Ok((table, flow(ports.src, ports.dst), ports.src))
        }
        // No ports to match on: ours if the address and protocol are bound, else the kernel's.
        Err(_) => Err(match A::transport(classifier, header.dst, protocol, None) {
            Some(_) => Classification::Drop(DropReason::Truncated),
            None => Classification::Kernel,
        }),
    }
}

/// Rules b (frag-needed / packet-too-big, routed on the quoted packet) and c (echo request).
///
/// Out of line and cold: ICMP is the rare case, and its code stays out of the TCP/UDP path.
#[cold]
#[inline(never)]
fn icmp_flow<A: Address>(
    header: &IpHeader<A>,
    payload: &[u8],
    classifier: &impl BindMatcher,
    options: ClassifyOptions,
) -> Result<Found, Classification> {
    if header.non_first_fragment {
        return Err(Classification::Kernel);
    }
    let message = icmp::Packet::new_checked(payload).map_err(|_| Classification::Kernel)?;
    let dst: IpAddr = header.dst.into();
    let (echo, too_big) = match A::FAMILY {
        Family::V4 => (icmp::v4::ECHO_REQUEST, icmp::v4::FRAG_NEEDED),
        Family::V6 => (icmp::v6::ECHO_REQUEST, icmp::v6::PACKET_TOO_BIG),
    };
    let kind = message.kind();
    if kind == echo && options.forward_icmp_echo {
        let table = classifier.address(dst).ok_or(Classification::Kernel)?;
        let flow = Flow { src: header.src.bits(), dst: header.dst.bits(), src_port: 0, dst_port: 0 };
        return Ok((table, flow, header.echo_hint));
    }
    if kind != too_big {
        return Err(Classification::Kernel);
    }
    // The quoted packet went VIP → client; the flow to hash is client → VIP.
    let quoted = message.data().map_err(|_| Classification::Kernel)?;
    let (vip, client, l4) = quoted_packet(A::FAMILY, quoted).ok_or(Classification::Kernel)?;
    let vip_port = Ports::parse_src(l4).map_err(|_| Classification::Kernel)?;
    let table = classifier.icmp_error(dst, vip, vip_port).ok_or(Classification::Kernel)?;
    let ports = Ports::parse(l4).map_err(|_| Classification::Drop(DropReason::Truncated))?;
    let flow = Flow { src: ip_bits(client), dst: ip_bits(vip), src_port: ports.dst, dst_port: ports.src };
    Ok((table, flow, ports.dst))
}

fn ip_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => a.to_bits().into(),
        IpAddr::V6(a) => a.to_bits(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet | IP `src` → `dst` | TCP 45678 → 80, no payload.
    fn tcp_frame(src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut frame = vec![0u8; 12];
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                frame.extend([0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
                frame.extend(s.octets());
                frame.extend(d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                frame.extend([0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, 6, 64]);
                frame.extend(s.octets());
                frame.extend(d.octets());
            }
            _ => unreachable!("one family"),
        }
        frame.extend([0xb2, 0x6e, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0]);
        frame
    }

    // The integer flow converts back to the frame's FlowKey, and the hash input written from
    // it is FlowKey::hash's for every combination of fields.
    #[test]
    fn flow_is_the_flow_key_and_hashes_like_it() {
        let key = *b"0123456789abcdef";
        let options = ClassifyOptions { forward_icmp_echo: true };
        for (src, dst) in [
            ("198.51.100.7", "203.0.113.1"),
            ("2001:db8::7", "2001:db8:ffff::1"),
            ("2001:db8::ffff:0:1", "2001:db8::80"),
        ] {
            let (src, dst): (IpAddr, IpAddr) = (src.parse().expect("address"), dst.parse().expect("address"));
            let Classification::Matched(c) = classify(&tcp_frame(src, dst), &ForcedTable(0), options) else {
                panic!("{src} → {dst} matches the forced table");
            };
            let expected = FlowKey { src, dst, src_port: 45678, dst_port: 80 };
            assert_eq!(c.flow_key(), expected);
            for bits in 1..16u8 {
                let fields = HashFields::new(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0)
                    .expect("at least one field");
                let mut input = ShortInput::new();
                c.write_hash_input(fields, &mut input);
                assert_eq!(input, expected.hash_input(fields), "{src} {fields}");
                assert_eq!(siphash_short(&key, &input), expected.hash(&key, fields), "{src} {fields}");
                assert_eq!(c.hash(&key, fields), expected.hash(&key, fields), "{src} {fields}");
            }
        }
    }
}
