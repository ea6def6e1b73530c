//! Any bytes → one Ethernet frame through `Pipeline::process` against a fixed table.
//!
//! Input: one selector byte, then the frame. Selector bits:
//! - bit 0: pipeline variant — 0: main hash `src_addr` only, no migration; 1: all four hash fields
//!   plus `alt_hash_fields` (4 hops → 3 in the GUE list);
//! - bit 1: `forward_icmp_ping_responses` off;
//! - bit 2: bypass classification with `ForcedTable((selector >> 4) & 3)` (tables 2 and 3 do
//!   not exist: the pipeline must drop, not panic);
//! - bit 3: headroom of `(selector >> 4) * 4` bytes instead of `MAX_HEADROOM` (too little → drop).
//!
//! Must hold: nothing panics; a frame that is not forwarded is untouched; a forwarded frame
//! re-parses with consistent lengths, checksums (recomputed here: `verify_checksum` is a no-op
//! under `cfg(fuzzing)`), port, GUE header and hops, and carries the input's IP packet unchanged.
#![no_main]

use forwarding_table::{HashFields, LoadedTable};
use glb_director::pipeline::{
    ClassifyOptions, ForcedTable, Frame, MAX_HEADROOM, Pipeline, PipelineConfig, Routed, TunnelEndpoint,
    Verdict,
};
use glb_wire::checksum::{finish, sum};
use glb_wire::ip::Protocol;
use glb_wire::{ethernet, gue, ipv4, udp};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

/// Two tables, IPv4 and IPv6 binds, host and CIDR binds, single ports and ranges; every address
/// from the documentation ranges (RFC 5737, RFC 3849).
const TABLE_JSON: &str = r#"{"tables": [
  {"hash_key": "0123456789abcdef0123456789abcdef", "seed": "fedcba9876543210fedcba9876543210",
   "binds": [
     {"ip": "192.0.2.10", "proto": "tcp", "port": 80},
     {"ip": "192.0.2.10", "proto": "udp", "port": 53},
     {"ip": "198.51.100.0/24", "proto": "tcp", "port_start": 8000, "port_end": 8100},
     {"ip": "2001:db8::10", "proto": "tcp", "port": 443},
     {"ip": "2001:db8:1::/48", "proto": "udp", "port_start": 5000, "port_end": 5010}
   ],
   "backends": [
     {"ip": "203.0.113.1", "state": "active", "healthy": true},
     {"ip": "203.0.113.2", "state": "active", "healthy": true},
     {"ip": "203.0.113.3", "state": "draining", "healthy": true},
     {"ip": "203.0.113.4", "state": "filling", "healthy": false}
   ]},
  {"hash_key": "00112233445566778899aabbccddeeff", "seed": "ffeeddccbbaa99887766554433221100",
   "binds": [
     {"ip": "192.0.2.20", "proto": "tcp", "port": 443},
     {"ip": "192.0.2.128/25", "proto": "udp", "port_start": 1, "port_end": 65535},
     {"ip": "2001:db8:2::/64", "proto": "tcp", "port_start": 0, "port_end": 65535}
   ],
   "backends": [
     {"ip": "203.0.113.11", "state": "active", "healthy": true},
     {"ip": "203.0.113.12", "state": "inactive", "healthy": false},
     {"ip": "203.0.113.13", "state": "active", "healthy": true}
   ]}
]}"#;

const GATEWAY_MAC: ethernet::Address = [0x02, 0, 0, 0, 0, 0x01];
const LOCAL_MAC: ethernet::Address = [0x02, 0, 0, 0, 0, 0x02];
const SRC_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

struct Fixture {
    table: LoadedTable,
    /// Tunnel address of every backend slot, per table.
    backends: Vec<Vec<Ipv4Addr>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let validated = forwarding_table::config::parse(TABLE_JSON).expect("the fixed table is valid");
        let bytes = forwarding_table::build_binary(&validated.config);
        let table = LoadedTable::from_bytes(bytes).expect("a freshly built table loads");
        let backends = table
            .file()
            .tables()
            .map(|view| (0..view.backend_slots().len()).map(|i| view.hop(i)).collect())
            .collect();
        Fixture { table, backends }
    })
}

fn pipeline(selector: u8) -> Pipeline {
    let all = HashFields::new(true, true, true, true).expect("fields chosen");
    let (hash_fields, alt_hash_fields) = if selector & 1 == 0 {
        (HashFields::default(), None)
    } else {
        (all, HashFields::new(true, false, false, true))
    };
    Pipeline::new(PipelineConfig {
        endpoint: TunnelEndpoint { gateway_mac: GATEWAY_MAC, local_mac: LOCAL_MAC, src_ip: SRC_IP },
        hash_fields,
        alt_hash_fields,
        classify: ClassifyOptions { forward_icmp_echo: selector & 2 == 0 },
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let pipeline = pipeline(selector);
    let high = usize::from(selector >> 4);
    let headroom = if selector & 8 == 0 { MAX_HEADROOM } else { high * 4 };

    let mut buf = vec![0u8; headroom + input.len()];
    buf[headroom..].copy_from_slice(input);
    let mut frame = Frame::new(&mut buf, headroom, input.len());
    let (verdict, routed) = if selector & 4 == 0 {
        pipeline.process(&fixture.table, &mut frame)
    } else {
        pipeline.process_with(&fixture.table, &ForcedTable(high & 3), &mut frame)
    };

    match (verdict, routed) {
        (Verdict::Forward, Some(routed)) => {
            check_forwarded(fixture, selector & 1 == 1, input, headroom, &frame, routed);
        }
        (Verdict::Forward, None) => panic!("Forward without routing facts"),
        (_, Some(_)) => panic!("routing facts for a frame that was not forwarded"),
        (Verdict::Kernel | Verdict::Drop(_), None) => {
            assert_eq!(frame.start(), headroom, "a frame that is not forwarded does not move");
            assert_eq!(frame.data(), input, "a frame that is not forwarded is untouched");
        }
    }
});

/// Length of the IP packet the input frame carries, by its own header.
fn input_ip_len(input: &[u8]) -> usize {
    let l3 = &input[ethernet::HEADER_LEN..];
    match l3[0] >> 4 {
        4 => usize::from(u16::from_be_bytes([l3[2], l3[3]])),
        6 => 40 + usize::from(u16::from_be_bytes([l3[4], l3[5]])),
        v => panic!("forwarded a frame whose IP version is {v}"),
    }
}

fn check_forwarded(
    fixture: &Fixture,
    migration: bool,
    input: &[u8],
    headroom: usize,
    frame: &Frame<'_>,
    routed: Routed,
) {
    let out = frame.data();
    assert!(input.len() > ethernet::HEADER_LEN, "forwarded a frame with no IP header");
    let ip_len = input_ip_len(input);
    let inner_in = input
        .get(ethernet::HEADER_LEN..ethernet::HEADER_LEN + ip_len)
        .expect("forwarded a frame that ends before its IP packet does");
    assert_eq!(
        frame.start() + frame.len(),
        headroom + ethernet::HEADER_LEN + ip_len,
        "the inner packet stays in place and Ethernet padding is dropped"
    );

    // Ethernet.
    let eth = ethernet::Frame::new_checked(out).expect("outer Ethernet header");
    assert_eq!(eth.ethertype(), ethernet::EtherType::Ipv4);
    assert_eq!((eth.dst_addr(), eth.src_addr()), (GATEWAY_MAC, LOCAL_MAC));

    // IPv4: header, lengths, checksum recomputed.
    let l3 = eth.payload();
    let ip = ipv4::Packet::new_checked(l3).expect("outer IPv4 header");
    assert_eq!(ip.header_len(), ipv4::HEADER_LEN);
    assert_eq!(usize::from(ip.total_len()), out.len() - ethernet::HEADER_LEN, "IPv4 total length");
    assert!(!ip.is_truncated());
    assert_eq!(finish(sum(0, &l3[..ipv4::HEADER_LEN])), 0, "IPv4 header checksum");
    assert_eq!(ip.protocol(), Protocol::Udp);
    assert_eq!(ip.src_addr(), SRC_IP);
    assert!(ip.dont_frag() && !ip.more_frags() && ip.frag_offset() == 0);
    assert_eq!(ip.ttl(), 64);

    // UDP: length, checksum (never 0: GLB always fills it) recomputed, ports.
    let datagram = ip.payload();
    let udp = udp::Packet::new_checked(datagram).expect("outer UDP header");
    assert_eq!(usize::from(udp.len()), usize::from(ip.total_len()) - ipv4::HEADER_LEN, "UDP length");
    assert_eq!(usize::from(udp.len()), datagram.len());
    assert_ne!(udp.checksum(), 0, "UDP checksum is always computed");
    let pseudo = udp::pseudo_header_sum(ip.src_addr(), ip.dst_addr(), udp.len());
    assert_eq!(finish(sum(pseudo, datagram)), 0, "UDP checksum");
    assert_eq!(udp.dst_port(), gue::PORT);
    let hash_low = u16::try_from(routed.pkt_hash & 0x7fff).expect("masked");
    assert_eq!(udp.src_port(), 0x8000 | ((hash_low ^ routed.flow_hint) & 0x7fff), "UDP source port");

    // GUE: header, hop count, hops among the chosen table's backends.
    let guep = gue::Packet::new_checked(udp.payload()).expect("GUE header");
    let hops = usize::from(guep.hop_count());
    assert_eq!(hops, if migration { 3 } else { 1 }, "hop count");
    assert_eq!(guep.header_len(), gue::FIXED_LEN + 4 * hops, "GUE hlen agrees with the hop count");
    assert_eq!((guep.next_hop(), guep.flags(), guep.private_type()), (0, 0, 0));
    let repr = gue::Repr::parse(&guep).expect("GUE hop list");
    assert_eq!(repr.hops().len(), hops);
    let backends = fixture.backends.get(routed.table).expect("routed to an existing table");
    assert!(backends.contains(&ip.dst_addr()), "outer destination {} is not a backend", ip.dst_addr());
    for hop in repr.hops() {
        assert!(backends.contains(hop), "listed hop {hop} is not a backend");
    }

    // The inner packet is the input's IP packet, byte for byte, with the matching protocol.
    let inner = guep.payload();
    assert_eq!(inner, inner_in, "inner packet differs from the input's IP packet");
    let expected_proto = match inner[0] >> 4 {
        4 => Protocol::Ipv4,
        6 => Protocol::Ipv6,
        v => panic!("inner IP version {v}"),
    };
    assert_eq!(guep.protocol(), expected_proto, "GUE protocol matches the inner IP version");
}
