//! GLB's own test expectations (`../shared/oracle/README.md` §4), each asserted by name on our
//! packet path. `oracle_pcap.rs` compares every oracle frame byte for byte; this file states
//! what GLB's tests say about those frames, with the values written out, and reads our output
//! through glb-wire's views.

mod golden;

use glb_director::pipeline::Verdict;
use glb_wire::ethernet::{self, EtherType};
use glb_wire::ip::Protocol;
use glb_wire::{gue, ipv4, udp};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

/// An encapsulated frame, read back through the views.
#[derive(Debug)]
struct Tunnel {
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    /// The UDP Length field (header included).
    udp_len: u16,
    /// The GUE hop list (the secondary first).
    hops: Vec<Ipv4Addr>,
    inner_protocol: Protocol,
    inner: Vec<u8>,
}

/// Parses an encapsulated frame, checking everything a receiver would check: Ethernet type,
/// IPv4 header checksum and lengths, UDP checksum, GUE header consistency.
fn parse_tunnel(frame: &[u8]) -> Tunnel {
    let eth = ethernet::Frame::new_checked(frame).expect("Ethernet header");
    assert_eq!(eth.ethertype(), EtherType::Ipv4, "outer frame is IPv4");
    let ip = ipv4::Packet::new_checked(eth.payload()).expect("outer IPv4 header");
    assert!(ip.verify_checksum(), "outer IPv4 checksum");
    assert_eq!(usize::from(ip.total_len()), eth.payload().len(), "outer IPv4 length covers the frame");
    assert_eq!((ip.protocol(), ip.ttl(), ip.dont_frag()), (Protocol::Udp, 64, true));
    let datagram = udp::Packet::new_checked(ip.payload()).expect("UDP header");
    assert!(datagram.verify_checksum(ip.src_addr(), ip.dst_addr()), "UDP checksum");
    assert_ne!(datagram.checksum(), 0, "GLB always fills the UDP checksum");
    let gue = gue::Packet::new_checked(datagram.payload()).expect("GUE header");
    let hops = (0..usize::from(gue.hop_count())).map(|i| gue.hop(i).expect("listed hop")).collect();
    assert_eq!(gue.next_hop(), 0, "the director starts at hop 0");
    Tunnel {
        outer_src: ip.src_addr(),
        outer_dst: ip.dst_addr(),
        src_port: datagram.src_port(),
        dst_port: datagram.dst_port(),
        udp_len: datagram.len(),
        hops,
        inner_protocol: gue.protocol(),
        inner: gue.payload().to_vec(),
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("IPv4 address")
}

/// `tests/pcap_tests.sh`: GLB's director reads `1k_pkts.pcap` with `tests/data/config.json`
/// (outbound_src_ip 65.65.65.65) and `table.json`, and `tcpdump -r tx.pcap` must show 1000
/// frames, every one `IP 65.65.65.65.61139 > 3.4.5.6.19523: UDP, length 52`.
///
/// `1k_pkts.pcap` is not in the oracle, so the same traffic is written here: 1000 TCP segments
/// from 10.11.12.13:45678 to 1.1.1.1:80 (bound in table 0), each a 20-byte IPv4 header and a
/// 20-byte TCP header. tcpdump's "UDP, length N" is the UDP *payload* length (Length minus the
/// 8-byte header): 52 = GUE 8 + one listed hop 4 + the 40-byte inner packet, so the UDP Length
/// field is 60. The client's hash (row 23741: 3.4.5.6, then 2.3.4.5) and its port 45678 make
/// the source port 0x8000 | ((0x5cbd ^ 45678) & 0x7fff) = 61139.
#[test]
fn pcap_tests_sh_thousand_frames() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (rx, tx) = (tmp.path().join("1k_pkts.pcap"), tmp.path().join("tx.pcap"));
    let header = PcapHeader { datalink: DataLink::ETHERNET, ..PcapHeader::default() };
    let mut writer =
        PcapWriter::with_header(std::fs::File::create(&rx).expect("create"), header).expect("header");
    let mut inputs = Vec::new();
    for n in 0..1000u32 {
        let frame = tcp_frame(n);
        let len = u32::try_from(frame.len()).expect("small");
        writer
            .write_packet(&PcapPacket::new(Duration::from_millis(u64::from(n)), len, &frame))
            .expect("write");
        inputs.push(frame);
    }
    drop(writer);

    let config = golden::oracle().join("pcap/s01_basic_default_fields/director.json");
    let text = std::fs::read_to_string(&config).expect("director.json");
    assert!(text.contains("\"65.65.65.65\""), "GLB's test config: outbound_src_ip 65.65.65.65");
    let out = Command::new(env!("CARGO_BIN_EXE_glb-director"))
        .arg("--config-file")
        .arg(&config)
        .arg("--forwarding-table")
        .arg(golden::oracle().join("tables/upstream_table.bin"))
        .arg("--pcap-in")
        .arg(&rx)
        .arg("--pcap-out")
        .arg(&tx)
        .output()
        .expect("run glb-director");
    assert!(out.status.success(), "glb-director failed: {}", String::from_utf8_lossy(&out.stderr));

    let mut reader = PcapReader::new(std::fs::File::open(&tx).expect("tx.pcap")).expect("pcap header");
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.expect("packet").data.into_owned());
    }
    assert_eq!(frames.len(), 1000, "tx: should be 1000 packets");
    for (n, (frame, input)) in frames.iter().zip(&inputs).enumerate() {
        let t = parse_tunnel(frame);
        // IP 65.65.65.65.61139 > 3.4.5.6.19523: UDP, length 52
        assert_eq!((t.outer_src, t.src_port), (ip("65.65.65.65"), 61139), "frame {n}: source");
        assert_eq!((t.outer_dst, t.dst_port), (ip("3.4.5.6"), 19523), "frame {n}: destination");
        assert_eq!(t.udp_len - 8, 52, "frame {n}: tcpdump's UDP length (payload)");
        assert_eq!(t.udp_len, 60, "frame {n}: UDP Length field");
        assert_eq!(t.hops, [ip("2.3.4.5")], "frame {n}: the secondary is the one listed hop");
        assert_eq!(t.inner_protocol, Protocol::Ipv4);
        assert_eq!(t.inner, input[14..54], "frame {n}: the inner packet, without Ethernet padding");
    }
}

/// Ethernet | IPv4 10.11.12.13 → 1.1.1.1 (ident `n`) | TCP 45678 → 80 (SYN, seq `n`), padded to
/// the 60-byte Ethernet minimum.
fn tcp_frame(n: u32) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0x10, 0x02, 0, 0, 0, 0, 0x20, 0x08, 0x00];
    let ident = u16::try_from(n).expect("below 65536");
    let mut ip = vec![0x45, 0, 0, 40];
    ip.extend(ident.to_be_bytes());
    ip.extend([0x40, 0, 64, 6, 0, 0, 10, 11, 12, 13, 1, 1, 1, 1]);
    let sum = glb_wire::checksum::finish(glb_wire::checksum::sum(0, &ip));
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    frame.extend(ip);
    frame.extend(45678u16.to_be_bytes());
    frame.extend(80u16.to_be_bytes());
    frame.extend(n.to_be_bytes());
    frame.extend([0, 0, 0, 0, 0x50, 0x02, 0x20, 0x00, 0, 0, 0, 0]);
    frame.resize(60, 0);
    frame
}

/// One frame of a scenario and what an upstream test expects of it.
struct Expectation {
    upstream: &'static str,
    scenario: &'static str,
    idx: usize,
    /// Outer destination: the primary.
    primary: &'static str,
    /// The GUE hop list.
    hops: &'static [&'static str],
}

const EXPECTATIONS: &[Expectation] = &[
    // tests/test_director_classify_v4.py
    Expectation {
        upstream: "classify_v4 test_01: TCP to 1.1.1.1:80",
        scenario: "s01_basic_default_fields",
        idx: 0,
        primary: "3.4.5.6",
        hops: &["2.3.4.5"],
    },
    Expectation {
        upstream: "classify_v4 test_02: ICMP frag-needed, same route",
        scenario: "s01_basic_default_fields",
        idx: 11,
        primary: "3.4.5.6",
        hops: &["2.3.4.5"],
    },
    Expectation {
        upstream: "classify_v4 test_03: echo request forwarded",
        scenario: "s01_basic_default_fields",
        idx: 8,
        primary: "3.4.5.6",
        hops: &["2.3.4.5"],
    },
    Expectation {
        upstream: "classify_v4 test_04, before the reload",
        scenario: "s10_states_normal",
        idx: 0,
        primary: "3.4.5.6",
        hops: &["2.3.4.5"],
    },
    Expectation {
        upstream: "classify_v4 test_04: 3.4.5.6 unhealthy",
        scenario: "s10_states_unhealthy",
        idx: 0,
        primary: "2.3.4.5",
        hops: &["3.4.5.6"],
    },
    // tests/test_director_classify_v6.py
    Expectation {
        upstream: "classify_v6 test_01: TCP to [fdb4:98ce:52d4::42]:80",
        scenario: "s01_basic_default_fields",
        idx: 6,
        primary: "5.6.7.8",
        hops: &["6.7.8.9"],
    },
    Expectation {
        upstream: "classify_v6 test_02: packet too big, same route",
        scenario: "s01_basic_default_fields",
        idx: 19,
        primary: "5.6.7.8",
        hops: &["6.7.8.9"],
    },
    Expectation {
        upstream: "classify_v6 test_03: echo request forwarded",
        scenario: "s01_basic_default_fields",
        idx: 17,
        primary: "5.6.7.8",
        hops: &["6.7.8.9"],
    },
    // tests/stub_server_tests.sh (table 0 forced)
    Expectation {
        upstream: "stub_server 127.1.0.1: via 1.2.3.4, alt 2.3.4.5",
        scenario: "s11_stub_server_equiv_force_table0",
        idx: 0,
        primary: "1.2.3.4",
        hops: &["2.3.4.5"],
    },
    Expectation {
        upstream: "stub_server 127.199.255.255: via 3.4.5.6, alt 2.3.4.5",
        scenario: "s11_stub_server_equiv_force_table0",
        idx: 1,
        primary: "3.4.5.6",
        hops: &["2.3.4.5"],
    },
];

#[test]
fn classify_and_stub_server_routes() {
    for e in EXPECTATIONS {
        let scenario = golden::scenario(e.scenario);
        let rec = scenario.record(e.idx);
        let (verdict, _, out) = scenario.run(&rec.input);
        assert_eq!(verdict, Verdict::Forward, "{}", e.upstream);
        let t = parse_tunnel(&out);
        assert_eq!(t.outer_dst, ip(e.primary), "{}: primary", e.upstream);
        assert_eq!(t.hops, e.hops.iter().map(|h| ip(h)).collect::<Vec<_>>(), "{}: hop list", e.upstream);
        assert_eq!(t.outer_src, ip("65.65.65.65"), "{}", e.upstream);
        assert_eq!(t.dst_port, gue::PORT, "{}", e.upstream);
        let family = if rec.input[12..14] == [0x86, 0xdd] { Protocol::Ipv6 } else { Protocol::Ipv4 };
        assert_eq!(t.inner_protocol, family, "{}", e.upstream);
    }
}

/// classify_v4 test_01 also names the outer source port of 10.11.12.13:45678 (61139), and the
/// ICMP error about that flow (test_02) travels with the same port: same flow, same ECMP path.
#[test]
fn classify_v4_source_port() {
    let s01 = golden::scenario("s01_basic_default_fields");
    let port = |idx| parse_tunnel(&s01.run(&s01.record(idx).input).2).src_port;
    assert_eq!(port(0), 61139);
    assert_eq!(port(11), 61139);
}

/// tests/stub_server_tests.sh: the packet hashes of the two stub-server flows.
#[test]
fn stub_server_hashes() {
    let s11 = golden::scenario("s11_stub_server_equiv_force_table0");
    let hash = |idx| s11.run(&s11.record(idx).input).1.expect("forwarded").pkt_hash;
    assert_eq!(hash(0), 0x920d_666b_6791_1c9a);
    assert_eq!(hash(1), 0x6056_77c7_1b0f_36f6);
}

/// tests/test_director_hash_fields.py: src_addr alone ignores the client port; src_addr +
/// src_port does not; migration (`alt_hash_fields`) tunnels through 4 hops, 3 of them listed.
#[test]
fn hash_fields() {
    // Two flows, 10.11.12.13:45678 and :45679 → 1.1.1.1:80, under three configurations of one
    // table (GLB's test table.json in each scenario).
    let s01 = golden::scenario("s01_basic_default_fields");
    let s03 = golden::scenario("s03_hash_src_addr_src_port");
    let s06 = golden::scenario("s06_hash_migration_alt_fields");
    assert!(s01.table.bytes() == s03.table.bytes() && s03.table.bytes() == s06.table.bytes());
    let flows = [s03.record(0), s03.record(1)];
    for (rec, port) in flows.iter().zip(["45678", "45679"]) {
        assert_eq!(rec.description, format!("tcp4 10.11.12.13:{port} -> 1.1.1.1:80"));
    }
    let run = |s: &golden::Scenario, rec: &golden::Record| {
        let (verdict, routed, out) = s.run(&rec.input);
        assert_eq!(verdict, Verdict::Forward, "{} {}", s.name, rec.description);
        (routed.expect("forwarded").pkt_hash, parse_tunnel(&out))
    };
    let hash = |s: &golden::Scenario, rec: &golden::Record| run(s, rec).0;
    assert_eq!(hash(&s01, flows[0]), hash(&s01, flows[1]), "src_addr: the client port does not count");
    assert_ne!(hash(&s03, flows[0]), hash(&s03, flows[1]), "src_addr + src_port: it does");
    let migrating = flows.map(|rec| run(&s06, rec).1);
    for t in &migrating {
        assert_eq!(t.hops.len(), 3, "migration: secondary, alt primary, alt secondary listed");
        assert_eq!(t.udp_len, 8 + 8 + 12 + 40, "GUE header grows by the two alt hops");
    }
    // The main pair follows s03's hash, the alt pair s01's (src_addr alone): shared by both ports.
    assert_eq!(
        migrating[0].hops[1..],
        migrating[1].hops[1..],
        "alt hops of one client are the same for any port"
    );
    for (rec, t) in flows.iter().zip(&migrating) {
        let main = run(&s03, rec).1;
        let alt = run(&s01, rec).1;
        assert_eq!(
            (t.outer_dst, t.hops[0]),
            (main.outer_dst, main.hops[0]),
            "{}: main pair",
            rec.description
        );
        assert_eq!(t.hops[1..], [alt.outer_dst, alt.hops[0]], "{}: alt pair", rec.description);
    }
}

/// tests/test_director_classify_ranges_v4.py / _v6.py (s08): inside a /26 or /122 → tunnelled,
/// outside → the kernel; ports 100–200 of a range bind → tunnelled, 99 and 201 → the kernel.
#[test]
fn classify_ranges() {
    let s08 = golden::scenario("s08_cidr_and_port_ranges");
    let mut checked = 0;
    for rec in &s08.records {
        let d = &rec.description;
        let expected = if d.contains("(inside /") || d.contains("(inside 1.1.1.64/26)") {
            Verdict::Forward
        } else if d.contains("(outside /") {
            Verdict::Kernel
        } else if d.contains("(range 100-200)") {
            let port: u16 = d
                .split(" (")
                .next()
                .and_then(|head| head.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("port in {d:?}"));
            if (100..=200).contains(&port) { Verdict::Forward } else { Verdict::Kernel }
        } else {
            continue;
        };
        assert_eq!(s08.run(&rec.input).0, expected, "s08 idx {}: {d}", rec.idx);
        checked += 1;
    }
    assert!(checked >= 28, "the upstream range sets are in s08 ({checked} frames)");
}
