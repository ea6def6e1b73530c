//! Any bytes through every glb-wire view: `new_checked`, then every getter.
//!
//! Each view is tried on the whole input, and the input is also walked as an Ethernet frame
//! (Ethernet → IPv4/IPv6 and extension headers → TCP/UDP/ICMP → GUE inside UDP → inner IP).
//! Must hold: nothing panics, `Display` works, accepted views are self-consistent (payloads stay
//! inside their headers' lengths), and the emitters round-trip what the parsers read.
#![no_main]

use glb_wire::checksum::{finish, sum};
use glb_wire::ip::Protocol;
use glb_wire::tcp::Ports;
use glb_wire::{Error, ethernet, gue, icmp, ipv4, ipv6, tcp, udp};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    assert!(!Error.to_string().is_empty());
    for view in [ethernet_view, ipv4_view, ipv6_view, tcp_view, udp_view, icmp_view, gue_view] {
        view(data, 0);
    }
});

/// Views follow each other at most this deep (GUE inside UDP inside IP inside GUE …).
const MAX_DEPTH: u8 = 4;

fn ethernet_view(data: &[u8], depth: u8) {
    let Ok(frame) = ethernet::Frame::new_checked(data) else {
        assert!(data.len() < ethernet::HEADER_LEN);
        return;
    };
    black_box((frame.dst_addr(), frame.src_addr()));
    let payload = frame.payload();
    assert_eq!(payload.len(), data.len() - ethernet::HEADER_LEN);
    let ethertype = frame.ethertype();
    assert_eq!(ethernet::EtherType::from(u16::from(ethertype)), ethertype);
    if depth >= MAX_DEPTH {
        return;
    }
    match ethertype {
        ethernet::EtherType::Ipv4 => ipv4_view(payload, depth + 1),
        ethernet::EtherType::Ipv6 => ipv6_view(payload, depth + 1),
        ethernet::EtherType::Unknown(_) => {}
    }
}

fn ipv4_view(data: &[u8], depth: u8) {
    let Ok(ip) = ipv4::Packet::new_checked(data) else {
        return;
    };
    black_box((ip.dscp_ecn(), ip.ident(), ip.dont_frag(), ip.more_frags(), ip.frag_offset(), ip.ttl()));
    black_box((ip.checksum(), ip.src_addr(), ip.dst_addr(), ip.verify_checksum()));
    let header_len = ip.header_len();
    let total_len = usize::from(ip.total_len());
    assert!(header_len >= ipv4::HEADER_LEN && header_len <= data.len() && header_len <= total_len);
    assert_eq!(ip.is_truncated(), data.len() < total_len);
    let payload = ip.payload();
    assert_eq!(payload.len(), data.len().min(total_len) - header_len);
    assert_eq!(ip.quoted_payload().len(), data.len() - header_len);
    ipv4_roundtrip(&ip);
    if depth < MAX_DEPTH {
        upper_layer(ip.protocol(), payload, depth + 1);
        // An ICMP error quotes a packet whose Total Length describes the original.
        upper_layer(ip.protocol(), ip.quoted_payload(), depth + 1);
    }
}

/// Emits the header the parser read (as GLB would, without options) and reads it back.
fn ipv4_roundtrip(ip: &ipv4::Packet<&[u8]>) {
    let Some(payload_len) = ip.total_len().checked_sub(20) else {
        return;
    };
    let repr = ipv4::Repr {
        src_addr: ip.src_addr(),
        dst_addr: ip.dst_addr(),
        protocol: ip.protocol(),
        payload_len,
        ttl: ip.ttl(),
        ident: ip.ident(),
        dont_frag: ip.dont_frag(),
    };
    let mut buf = [0u8; ipv4::HEADER_LEN];
    assert_eq!(repr.buffer_len(), buf.len());
    repr.emit(&mut buf).expect("20 bytes and a total length that fits");
    assert_eq!(finish(sum(0, &buf)), 0, "emitted checksum verifies");
    let back = ipv4::Packet::new_checked(&buf[..]).expect("emitted header parses");
    assert_eq!((back.src_addr(), back.dst_addr()), (repr.src_addr, repr.dst_addr));
    assert_eq!((back.protocol(), back.total_len(), back.ttl()), (repr.protocol, ip.total_len(), repr.ttl));
    assert_eq!((back.ident(), back.dont_frag(), back.frag_offset()), (repr.ident, repr.dont_frag, 0));
    assert!(repr.emit(&mut buf[..19]).is_err());
}

fn ipv6_view(data: &[u8], depth: u8) {
    let Ok(ip) = ipv6::Packet::new_checked(data) else {
        return;
    };
    black_box((ip.flow_label(), ip.hop_limit(), ip.src_addr(), ip.dst_addr(), ip.is_truncated()));
    assert_eq!(ip.total_len(), ipv6::HEADER_LEN + usize::from(ip.payload_len()));
    let payload = ip.payload();
    assert_eq!(payload.len(), data.len().min(ip.total_len()) - ipv6::HEADER_LEN);
    assert_eq!(ip.quoted_payload().len(), data.len() - ipv6::HEADER_LEN);
    if let Ok(upper) = ip.upper_layer() {
        assert!(upper.offset <= payload.len(), "upper layer offset past the payload");
        if depth < MAX_DEPTH && !upper.non_first_fragment {
            upper_layer(upper.protocol, &payload[upper.offset..], depth + 1);
        }
    }
    // The walk over a quoted packet, as the ICMPv6 error path does it.
    if let Ok(upper) = ipv6::walk_extension_headers(ip.next_header(), ip.quoted_payload()) {
        assert!(upper.offset <= ip.quoted_payload().len());
    }
}

fn upper_layer(protocol: Protocol, l4: &[u8], depth: u8) {
    assert_eq!(Protocol::from(u8::from(protocol)), protocol);
    black_box((Ports::parse(l4).ok(), Ports::parse_src(l4).ok()));
    match protocol {
        Protocol::Tcp => tcp_view(l4, depth),
        Protocol::Udp => udp_view(l4, depth),
        Protocol::Icmp | Protocol::Icmpv6 => icmp_view(l4, depth),
        Protocol::Ipv4 => ipv4_view(l4, depth),
        Protocol::Ipv6 => ipv6_view(l4, depth),
        _ => {}
    }
}

fn tcp_view(data: &[u8], _depth: u8) {
    let Ok(tcp) = tcp::Packet::new_checked(data) else {
        assert!(data.len() < tcp::HEADER_LEN);
        return;
    };
    black_box((tcp.seq_number(), tcp.ack_number(), tcp.flags()));
    let ports = Ports::parse(data).expect("a TCP header has ports");
    assert_eq!((ports.src, ports.dst), (tcp.src_port(), tcp.dst_port()));
    assert_eq!(Ports::parse_src(data), Ok(tcp.src_port()));
}

fn udp_view(data: &[u8], depth: u8) {
    let Ok(udp) = udp::Packet::new_checked(data) else {
        return;
    };
    black_box((udp.src_port(), udp.checksum(), udp.is_empty()));
    black_box(udp.verify_checksum(std::net::Ipv4Addr::LOCALHOST, std::net::Ipv4Addr::BROADCAST));
    let len = usize::from(udp.len());
    assert!(len >= udp::HEADER_LEN && len <= data.len());
    assert_eq!(udp.payload().len(), len - udp::HEADER_LEN);
    udp_roundtrip(&data[..len]);
    if depth < MAX_DEPTH && (udp.dst_port() == gue::PORT || udp.src_port() == gue::PORT) {
        gue_view(udp.payload(), depth + 1);
    }
}

/// Re-emits the datagram's header and checks the result reads back with a valid checksum.
fn udp_roundtrip(datagram: &[u8]) {
    let (src, dst) = (std::net::Ipv4Addr::new(192, 0, 2, 1), std::net::Ipv4Addr::new(198, 51, 100, 2));
    let mut copy = datagram.to_vec();
    udp::emit(&mut copy, 0x8123, gue::PORT, src, dst).expect("a checked datagram fits");
    let back = udp::Packet::new_checked(&copy[..]).expect("emitted datagram parses");
    assert_eq!((back.src_port(), back.dst_port(), usize::from(back.len())), (0x8123, gue::PORT, copy.len()));
    assert_eq!(back.payload(), &datagram[udp::HEADER_LEN..]);
    let len = back.len();
    assert_eq!(finish(sum(udp::pseudo_header_sum(src, dst, len), &copy)), 0, "emitted checksum verifies");
}

fn icmp_view(data: &[u8], depth: u8) {
    let Ok(icmp) = icmp::Packet::new_checked(data) else {
        assert!(data.len() < 2);
        return;
    };
    black_box((icmp.kind(), icmp.ident(), icmp.seq_number(), icmp.checksum()));
    assert_eq!(icmp.checksum().is_some(), data.len() >= 4);
    assert_eq!(icmp.seq_number().is_some(), data.len() >= icmp::HEADER_LEN);
    match icmp.data() {
        Ok(quoted) => {
            assert_eq!(quoted.len(), data.len() - icmp::HEADER_LEN);
            if depth < MAX_DEPTH {
                ipv4_view(quoted, depth + 1);
                ipv6_view(quoted, depth + 1);
            }
        }
        Err(_) => assert!(data.len() < icmp::HEADER_LEN),
    }
}

fn gue_view(data: &[u8], depth: u8) {
    let Ok(packet) = gue::Packet::new_checked(data) else {
        return;
    };
    black_box((packet.version(), packet.is_control(), packet.flags(), packet.private_type()));
    let hops = usize::from(packet.hop_count());
    assert_eq!(packet.header_len(), gue::FIXED_LEN + 4 * hops);
    assert_eq!(packet.payload().len(), data.len() - packet.header_len());
    for i in 0..=hops {
        assert_eq!(packet.hop(i).is_some(), i < hops);
    }
    match gue::Repr::parse(&packet) {
        Ok(repr) => {
            assert!(hops <= gue::MAX_HOPS);
            assert_eq!(repr.hops().len(), hops);
            assert_eq!((repr.protocol, repr.next_hop), (packet.protocol(), packet.next_hop()));
            let mut buf = [0u8; gue::FIXED_LEN + 4 * gue::MAX_HOPS];
            repr.emit(&mut buf).expect("room for the header");
            let back = gue::Packet::new_checked(&buf[..repr.buffer_len()]).expect("emitted header parses");
            assert_eq!(gue::Repr::parse(&back), Ok(repr), "GUE round trip");
            assert!(repr.emit(&mut buf[..repr.buffer_len() - 1]).is_err());
            let rebuilt = gue::Repr::new(repr.protocol, repr.hops()).expect("at most 3 hops");
            assert_eq!(rebuilt.hops(), repr.hops());
        }
        Err(_) => assert!(hops > gue::MAX_HOPS),
    }
    if depth < MAX_DEPTH {
        match packet.protocol() {
            Protocol::Ipv4 => ipv4_view(packet.payload(), depth + 1),
            Protocol::Ipv6 => ipv6_view(packet.payload(), depth + 1),
            _ => {}
        }
    }
}
