//! GLB's proxy-side test suite (glb-healthcheck-redirect-xdp.md §2.8) ported to network
//! namespaces, plus the scenarios §5.5 adds: SYN cookies, `TIME_WAIT`, last resort, alt == self
//! and malformed GUE. Every scenario runs with IPv4 and IPv6 inner packets, against the real
//! `glb-redirect` binary in two proxy namespaces; outcomes are observed on the wire (AF_PACKET
//! captures, the tester's UDP socket) and in the daemons' `/stats` counters.
//!
//! Needs root (namespaces, veth, TUN, raw sockets, BPF); skips with a message otherwise.

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use support::{
    ACK, ALT, BANNER, FAMILIES, Family, Lab, Options, PROXIES, PROXY, PSH, RST, SOURCE_PORT, SYN, TESTER,
    WAIT, capture, echo_request, gue, parse_ip, tcp_packet, too_big,
};
use testkit::{PacketSocket, require_root};

/// A tester port per scenario and family, so that one family's retransmissions never match the
/// other's expectations.
fn port(base: u16, family: &Family) -> u16 {
    base + u16::from(family.vip.is_ipv6())
}

/// Nothing arrives on the tester's chained-GUE socket for a while.
fn expect_no_chained(lab: &Lab, what: &str) {
    if let Some((from, _)) = lab.recv_chained(Duration::from_millis(500)) {
        panic!("unexpected chained GUE from {from}: {what}");
    }
}

/// PROXY forwarded one datagram, ALT took it (its counters moved by `alt`), and nothing went on
/// to the tester.
fn expect_taken_by_alt(
    lab: &Lab,
    before: &(HashMap<String, u64>, HashMap<String, u64>),
    alt: &[(&str, u64)],
    family: &Family,
) {
    lab.expect_counters(PROXY, &before.0, &[("total_packets", 1), ("forwarded_to_alternate_packets", 1)]);
    lab.expect_counters(ALT, &before.1, alt);
    expect_no_chained(lab, family.name);
}

/// 00: an echo request through either proxy is answered directly (not encapsulated) by the
/// proxy's own address — what the health checker's gue check relies on.
#[test]
fn echo_is_answered_directly() {
    require_root!();
    let lab = Lab::new("e", Options::default());
    for family in FAMILIES {
        for proxy in [PROXY, ALT] {
            let token = format!("glbhc_{}_{proxy}", family.name);
            let before = lab.stats(proxy);
            let inner = echo_request(family.tester, family.proxies[proxy], token.as_bytes());
            lab.send(proxy, &gue(0, &[PROXIES[ALT]], &inner));
            let reply_type = if family.vip.is_ipv4() { 0 } else { 129 };
            let replied = capture(&lab.capture, true, |packet| {
                let (src, dst, _, l4) = parse_ip(packet)?;
                (src == family.proxies[proxy]
                    && dst == family.tester
                    && l4.first() == Some(&reply_type)
                    && l4.get(8..) == Some(token.as_bytes()))
                .then_some(())
            });
            assert!(replied.is_some(), "{}: no direct echo reply from proxy {proxy}", family.name);
            lab.expect_counters(proxy, &before, &[("total_packets", 1), ("accepted_stateless_packets", 1)]);
        }
    }
}

/// 01: a SYN is taken locally whatever the hop list says; the SYN-ACK comes from the VIP.
#[test]
fn syn_is_accepted_locally() {
    require_root!();
    let lab = Lab::new("s", Options::default());
    for family in FAMILIES {
        let port = port(1123, &family);
        let (proxy_before, alt_before) = (lab.stats(PROXY), lab.stats(ALT));
        let syn = tcp_packet((family.tester, port), (family.vip, 22), 1000, 0, SYN);
        lab.send(PROXY, &gue(0, &[PROXIES[ALT]], &syn));
        let synack = lab.expect_segment((family.vip, 22), port, |s| s.flags & SYN != 0, family.name);
        assert_eq!((synack.flags & (SYN | ACK), synack.ack), (SYN | ACK, 1001), "{}", family.name);
        lab.expect_counters(PROXY, &proxy_before, &[("total_packets", 1), ("accepted_syn_packets", 1)]);
        lab.expect_counters(ALT, &alt_before, &[]);
    }
}

/// 02: an ACK nobody knows goes PROXY → ALT → tester; the last hop's outer source is ALT, the
/// UDP source port is kept, and only `next_hop` changed.
#[test]
fn unknown_ack_is_chained_through_every_hop() {
    require_root!();
    let lab = Lab::new("c", Options::default());
    for family in FAMILIES {
        let (proxy_before, alt_before) = (lab.stats(PROXY), lab.stats(ALT));
        let ack = tcp_packet((family.tester, port(9999, &family)), (family.vip, 22), 1, 1, ACK);
        let hops = [PROXIES[ALT], TESTER];
        lab.send(PROXY, &gue(0, &hops, &ack));
        let (from, datagram) = lab.recv_chained(WAIT).expect("chained GUE at the tester");
        assert_eq!(from, SocketAddr::from((PROXIES[ALT], SOURCE_PORT)), "{}", family.name);
        assert_eq!(datagram, gue(2, &hops, &ack), "{}: next_hop 2, everything else unchanged", family.name);
        let forwarded = [("total_packets", 1), ("forwarded_to_alternate_packets", 1)];
        lab.expect_counters(PROXY, &proxy_before, &forwarded);
        lab.expect_counters(ALT, &alt_before, &forwarded);
    }
}

/// 03: the SYN reached ALT, the final ACK reaches PROXY: PROXY forwards it, ALT's request socket
/// takes it, and the server's banner comes from the VIP.
#[test]
fn split_handshake_completes_on_alt() {
    require_root!();
    let lab = Lab::new("h", Options::default());
    for family in FAMILIES {
        let port = port(40_001, &family);
        let (client, server) = ((family.tester, port), (family.vip, 22));
        let before = (lab.stats(PROXY), lab.stats(ALT));
        lab.send(ALT, &gue(0, &[], &tcp_packet(client, server, 1234, 0, SYN)));
        let synack = lab.expect_segment(server, port, |s| s.flags & SYN != 0, "SYN-ACK from ALT");
        assert_eq!(synack.ack, 1235, "{}", family.name);
        let ack = tcp_packet(client, server, 1235, synack.seq.wrapping_add(1), ACK);
        lab.send(PROXY, &gue(0, &[PROXIES[ALT], TESTER], &ack));
        let banner =
            lab.expect_segment(server, port, |s| !s.payload.is_empty(), "banner after the split handshake");
        assert_eq!((banner.payload.as_slice(), banner.flags & PSH), (BANNER, PSH), "{}", family.name);
        expect_taken_by_alt(
            &lab,
            &before,
            &[("total_packets", 2), ("accepted_syn_packets", 1), ("accepted_established_packets", 1)],
            &family,
        );
    }
}

/// 04: a PMTU error about a flow established on ALT, sent to PROXY, reaches ALT's stack.
#[test]
fn too_big_reaches_the_proxy_holding_the_flow() {
    require_root!();
    let lab = Lab::new("p", Options::default());
    let tun = lab.proxies[ALT].run(|| PacketSocket::open("glbtun0"));
    for family in FAMILIES {
        let port = port(40_101, &family);
        let (client, server) = ((family.tester, port), (family.vip, 22));
        lab.send(ALT, &gue(0, &[], &tcp_packet(client, server, 5000, 0, SYN)));
        let synack = lab.expect_segment(server, port, |s| s.flags & SYN != 0, "SYN-ACK");
        lab.send(ALT, &gue(0, &[], &tcp_packet(client, server, 5001, synack.seq.wrapping_add(1), ACK)));
        let banner = lab.expect_segment(server, port, |s| !s.payload.is_empty(), "banner");

        let before = (lab.stats(PROXY), lab.stats(ALT));
        let quoted = tcp_packet(server, client, banner.seq, 5001, ACK | PSH);
        let error = too_big(family.router, family.vip, &quoted);
        lab.send(PROXY, &gue(0, &[PROXIES[ALT], TESTER], &error));
        let seen = capture(&tun, false, |packet| {
            let (src, dst, _, l4) = parse_ip(packet)?;
            (src == family.router && dst == family.vip).then(|| l4.to_vec())
        })
        .unwrap_or_else(|| panic!("{}: the PMTU error never reached ALT's glbtun0", family.name));
        let expected_kind: &[u8] = if family.vip.is_ipv4() { &[3, 4] } else { &[2, 0] };
        assert_eq!(&seen[..2], expected_kind, "{}", family.name);
        assert_eq!(&seen[8..], &quoted[..], "{}: the quoted packet arrives intact", family.name);
        expect_taken_by_alt(
            &lab,
            &before,
            &[("total_packets", 1), ("accepted_established_packets", 1)],
            &family,
        );
    }
}

/// With `tcp_syncookies=2` ALT keeps no state for a SYN: the ACK carrying its cookie is taken
/// (counted as a cookie), an ACK with a wrong cookie goes on to the next hop.
#[test]
fn syn_cookie_ack_is_accepted() {
    require_root!();
    let lab = Lab::new("k", Options { alt_always_cookies: true });
    for family in FAMILIES {
        let port = port(40_201, &family);
        let (client, server) = ((family.tester, port), (family.vip, 22));
        let before = lab.stats(ALT);
        lab.send(ALT, &gue(0, &[], &tcp_packet(client, server, 7000, 0, SYN)));
        let synack = lab.expect_segment(server, port, |s| s.flags & SYN != 0, "cookie SYN-ACK");

        let wrong = tcp_packet(client, server, 7001, synack.seq.wrapping_add(1000), ACK);
        lab.send(ALT, &gue(0, &[TESTER], &wrong));
        let (from, datagram) = lab.recv_chained(WAIT).expect("a wrong cookie is forwarded");
        assert_eq!(
            (from, datagram),
            (SocketAddr::from((PROXIES[ALT], SOURCE_PORT)), gue(1, &[TESTER], &wrong))
        );

        let right = tcp_packet(client, server, 7001, synack.seq.wrapping_add(1), ACK);
        lab.send(ALT, &gue(0, &[TESTER], &right));
        let banner =
            lab.expect_segment(server, port, |s| !s.payload.is_empty(), "banner after the cookie ACK");
        assert_eq!(banner.payload, BANNER, "{}", family.name);
        lab.expect_counters(
            ALT,
            &before,
            &[
                ("total_packets", 3),
                ("accepted_syn_packets", 1),
                ("forwarded_to_alternate_packets", 1),
                ("accepted_syn_cookie_packets", 1),
            ],
        );
        expect_no_chained(&lab, family.name);
    }
}

/// A segment of a flow in `TIME_WAIT` on ALT is ALT's: PROXY forwards it, ALT takes it.
#[test]
fn time_wait_socket_counts_as_known() {
    require_root!();
    let lab = Lab::new("w", Options::default());
    for family in FAMILIES {
        let server_port = port(7000, &family);
        let listener = lab.tester.run(|| TcpListener::bind((family.tester, server_port))).expect("listen");
        // ALT connects to the tester and closes first: its socket ends in TIME_WAIT.
        let client =
            lab.proxies[ALT].run(|| TcpStream::connect((family.tester, server_port))).expect("connect");
        let (mut accepted, _) = listener.accept().expect("accept");
        let local = client.local_addr().expect("local address");
        assert_eq!(local.ip(), family.proxies[ALT]);
        drop(client);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut accepted, &mut rest).expect("EOF from ALT");
        drop(accepted);
        std::thread::sleep(Duration::from_millis(200));

        let before = (lab.stats(PROXY), lab.stats(ALT));
        let ack = tcp_packet((family.tester, server_port), (local.ip(), local.port()), 1, 1, ACK);
        lab.send(PROXY, &gue(0, &[PROXIES[ALT], TESTER], &ack));
        expect_taken_by_alt(
            &lab,
            &before,
            &[("total_packets", 1), ("accepted_established_packets", 1)],
            &family,
        );
    }
}

/// Unknown, and no hop left (none listed, or all tried): taken locally, where TCP resets it.
#[test]
fn last_resort_is_local() {
    require_root!();
    let lab = Lab::new("l", Options::default());
    for family in FAMILIES {
        let before = lab.stats(PROXY);
        for (next_hop, hops, port) in
            [(0, &[][..], port(40_301, &family)), (1, &[PROXIES[ALT]][..], port(40_303, &family))]
        {
            lab.send(
                PROXY,
                &gue(next_hop, hops, &tcp_packet((family.tester, port), (family.vip, 22), 77, 88, ACK)),
            );
            lab.expect_segment((family.vip, 22), port, |s| s.flags & RST != 0, "RST from the last resort");
        }
        lab.expect_counters(PROXY, &before, &[("total_packets", 2), ("accepted_last_resort_packets", 2)]);
        expect_no_chained(&lab, family.name);
    }
}

/// The next hop is the proxy itself: taken locally instead of looping.
#[test]
fn alt_equal_to_self_is_local() {
    require_root!();
    let lab = Lab::new("a", Options::default());
    for family in FAMILIES {
        let port = port(40_401, &family);
        let before = lab.stats(PROXY);
        let ack = tcp_packet((family.tester, port), (family.vip, 22), 77, 88, ACK);
        lab.send(PROXY, &gue(0, &[PROXIES[PROXY], TESTER], &ack));
        lab.expect_segment((family.vip, 22), port, |s| s.flags & RST != 0, "RST from PROXY");
        lab.expect_counters(PROXY, &before, &[("total_packets", 1), ("forwarded_to_self_packets", 1)]);
        expect_no_chained(&lab, family.name);
    }
}

/// Malformed GUE and inner packets are dropped and counted by reason; none reaches the stack.
#[test]
fn malformed_gue_is_dropped_and_counted() {
    require_root!();
    let lab = Lab::new("m", Options::default());
    let v4 = FAMILIES[0];
    let v6 = FAMILIES[1];
    let syn = |family: &Family, port| tcp_packet((family.tester, port), (family.vip, 22), 1, 0, SYN);
    let hop = PROXIES[ALT].octets();

    let mut no_private_data = vec![0x00, 4, 0, 0];
    no_private_data.extend_from_slice(&syn(&v4, 41_001));
    // hlen 2 (one hop's room) but hop_count 2.
    let mut hop_count_mismatch = vec![0x02, 4, 0, 0, 0, 0, 0, 2];
    hop_count_mismatch.extend_from_slice(&hop);
    hop_count_mismatch.extend_from_slice(&syn(&v4, 41_002));
    let mut gre = gue(0, &[], &syn(&v4, 41_003));
    gre[1] = 47;
    // IPv6 with a hop-by-hop options header before TCP.
    let plain = syn(&v6, 41_004);
    let mut extension = plain[..40].to_vec();
    extension[6] = 0; // next header: hop-by-hop
    extension[5] += 8; // payload length
    extension.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next TCP, PadN
    extension.extend_from_slice(&plain[40..]);
    let extension = gue(0, &[], &extension);
    // GUE says IPv4, the inner packet is IPv6.
    let mut wrong_version = gue(0, &[], &syn(&v6, 41_005));
    wrong_version[1] = 4;
    let truncated = vec![0x01, 4, 0];
    let mut short_private = gue(0, &[PROXIES[ALT]], &[]);
    short_private.truncate(10);

    let before = lab.stats(PROXY);
    for datagram in
        [&no_private_data, &hop_count_mismatch, &gre, &extension, &wrong_version, &truncated, &short_private]
    {
        lab.send(PROXY, datagram);
    }
    // A valid SYN last: once its SYN-ACK is seen, everything before it was handled.
    lab.send(PROXY, &gue(0, &[], &syn(&v4, 41_009)));
    let leaked = capture(&lab.capture, true, |packet| {
        let segment = support::parse_segment(packet)?;
        (segment.src == (v4.vip, 22) || segment.src == (v6.vip, 22)).then_some(segment.dst.1)
    });
    assert_eq!(
        leaked,
        Some(41_009),
        "a malformed datagram reached the stack, or the marker SYN got no answer"
    );
    lab.expect_counters(
        PROXY,
        &before,
        &[
            ("total_packets", 8),
            ("accepted_syn_packets", 1),
            ("dropped_no_private_data_packets", 1),
            ("dropped_hop_count_mismatch_packets", 1),
            ("dropped_inner_protocol_packets", 1),
            ("dropped_inner_unsupported_packets", 1),
            ("dropped_inner_malformed_packets", 1),
            ("dropped_truncated_packets", 2),
        ],
    );
}
