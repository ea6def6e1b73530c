//! The example deployment end to end (`vagrant/lab`, run as root): a user's TCP connections
//! through the router's BGP-learned ECMP route, two directors (AF_PACKET) and three proxies
//! (glb-redirect), with drains, proxy failures and a director crash. Each test brings up its own
//! lab under a unique prefix and takes it down again, checking that nothing is left.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::{
    BGP_HOLD, Client, DIRECTORS, HOLD, INTERVAL, Lab, PROXIES, TRIGGER, USER_HOSTS, request, serial,
    user_ip4, user_ip6, vip4, vip6, wait,
};

/// Which proxy answers each user address: one request per address from new connections.
fn proxies_by_address(lab: &Lab, rounds: usize) -> BTreeMap<std::net::IpAddr, BTreeSet<String>> {
    lab.within("user", || {
        let mut seen: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
        for _ in 0..rounds {
            for &host in &USER_HOSTS {
                let src = user_ip4(host);
                let proxy = request(src, vip4()).unwrap_or_else(|e| panic!("request from {src}: {e}"));
                seen.entry(src).or_default().insert(proxy);
            }
        }
        seen
    })
}

fn encapsulated(lab: &Lab, director: &str) -> u64 {
    lab.director_counter(director, "glb_director_encapsulated_packets_total")
}

#[test]
fn requests_stick_to_proxies_and_survive_drain_and_proxy_failure() {
    testkit::require_root!();
    let _serial = serial();
    let lab = Lab::up('a');

    // 100 requests, each on a new connection, round-robin over the 7 user addresses.
    let before: Vec<u64> = DIRECTORS.iter().map(|d| encapsulated(&lab, d)).collect();
    let answers = lab.within("user", || {
        (0..100)
            .map(|i| {
                let src = user_ip4(USER_HOSTS[i % USER_HOSTS.len()]);
                (src, request(src, vip4()).unwrap_or_else(|e| panic!("request {i} from {src}: {e}")))
            })
            .collect::<Vec<_>>()
    });
    let mut by_address: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
    for (src, proxy) in &answers {
        assert!(PROXIES.contains(&proxy.as_str()), "unexpected answer {proxy:?}");
        by_address.entry(*src).or_default().insert(proxy.clone());
    }
    for (src, proxies) in &by_address {
        assert_eq!(proxies.len(), 1, "{src} landed on several proxies: {proxies:?}");
    }
    let used: BTreeSet<&String> = by_address.values().flatten().collect();
    assert!(used.len() >= 2, "all 7 addresses on one proxy: {by_address:?}");
    for (director, before) in DIRECTORS.iter().zip(before) {
        let after = encapsulated(&lab, director);
        assert!(after > before, "ECMP sent no flow of 100 to {director}");
    }
    eprintln!("address → proxy: {by_address:?}");

    // IPv6 inside the IPv4 tunnel: two new connections per address, same proxy both times.
    lab.within("user", || {
        for &host in &USER_HOSTS {
            let src = user_ip6(host);
            let first = request(src, vip6()).unwrap_or_else(|e| panic!("IPv6 request from {src}: {e}"));
            let second = request(src, vip6()).unwrap_or_else(|e| panic!("IPv6 request from {src}: {e}"));
            assert_eq!(first, second, "{src} moved between proxies");
        }
    });

    // Direct server return: 1 MB answers reach the user through the router's DC port while the
    // directors' ports see only the client side (requests and ACKs).
    let port = |d: &str| format!("d{}", d.trim_start_matches("director"));
    let directors_rx = |lab: &Lab| DIRECTORS.iter().map(|d| lab.rx_bytes(d, &port(d))).sum::<u64>();
    let (directors_before, router_before) = (directors_rx(&lab), lab.rx_bytes("router", "r-dc"));
    let received: usize = lab.within("user", || {
        USER_HOSTS
            .iter()
            .map(|&host| {
                let mut client = Client::connect(user_ip4(host), vip4()).expect("connect");
                client.get("/bytes/1000000").expect("1 MB").len()
            })
            .sum()
    });
    assert_eq!(received, 7_000_000);
    let directors = directors_rx(&lab) - directors_before;
    let router = lab.rx_bytes("router", "r-dc") - router_before;
    eprintln!("7 MB of answers: router DC port received {router} bytes, director ports {directors}");
    assert!(router >= 7_000_000, "the answers did not come from the DC net to the router ({router} bytes)");
    assert!(directors < 700_000, "director ports received {directors} bytes: answers passed a director");

    // Drain: 50 long-lived connections to the proxy with the most addresses stay usable while it
    // drains (their packets reach the new primary and are sent on to it: second chance); new
    // connections go elsewhere.
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for proxies in by_address.values() {
        *counts.entry(proxies.first().expect("a proxy")).or_default() += 1;
    }
    let (&drained, _) = counts.iter().max_by_key(|(_, n)| **n).expect("a proxy");
    let drained = drained.clone();
    let sources: Vec<_> = by_address.iter().filter(|(_, p)| p.contains(&drained)).map(|(a, _)| *a).collect();
    let mut held = lab.within("user", || {
        (0..50)
            .map(|i| {
                let mut client = Client::connect(sources[i % sources.len()], vip4()).expect("connect");
                assert_eq!(client.proxy().expect("first request"), drained);
                client
            })
            .collect::<Vec<_>>()
    });
    let forwarded = |lab: &Lab| {
        PROXIES.iter().map(|p| lab.redirect_counter(p, "forwarded_to_alternate_packets")).sum::<u64>()
    };
    let forwarded_before = forwarded(&lab);
    lab.run(&["drain", &drained]);
    // The binary table has one state for both (GLB's format).
    let took = lab.await_backend(&DIRECTORS, &drained, "draining/inactive", true);
    eprintln!("{drained} draining on both directors after {took:?}");
    for (i, client) in held.iter_mut().enumerate() {
        let proxy = client.proxy().unwrap_or_else(|e| panic!("held connection {i} after the drain: {e}"));
        assert_eq!(proxy, drained, "held connection {i} answered by another proxy");
    }
    let second_chances = forwarded(&lab) - forwarded_before;
    assert!(second_chances >= 50, "the new primaries sent only {second_chances} packets on to {drained}");
    let after_drain = proxies_by_address(&lab, 2);
    for (src, proxies) in &after_drain {
        assert!(!proxies.contains(&drained), "a new connection from {src} went to draining {drained}");
    }
    drop(held);
    lab.run(&["restore", &drained]);
    lab.await_backend(&DIRECTORS, &drained, "active", true);

    // Failure: stop a proxy's web server; after interval × trigger plus the hold (and the round in
    // progress) no director sends it new connections, and every request succeeds elsewhere.
    let failed = PROXIES.iter().find(|p| **p != drained).expect("another proxy").to_string();
    let stopped = Instant::now();
    lab.run(&["fail", &failed]);
    lab.await_backend(&DIRECTORS, &failed, "active", false);
    let took = stopped.elapsed();
    let bound = INTERVAL * (TRIGGER + 1) + HOLD + Duration::from_millis(1500);
    eprintln!("{failed} out of both tables {took:?} after its server stopped (bound {bound:?})");
    assert!(took <= bound, "{failed} was taken out after {took:?}, more than {bound:?}");
    let after_fail = proxies_by_address(&lab, 3);
    for (src, proxies) in &after_fail {
        assert!(!proxies.contains(&failed), "a new connection from {src} went to failed {failed}");
    }
    lab.run(&["restore", &failed]);
    lab.await_backend(&DIRECTORS, &failed, "active", true);
    assert_eq!(proxies_by_address(&lab, 1), by_address, "after restoring, addresses map as at the start");

    lab.down();
}

#[test]
fn connections_survive_a_director_crash() {
    testkit::require_root!();
    let _serial = serial();
    let lab = Lab::up_twice_at_once('b');
    assert_eq!(lab.router_nexthops(support::VIP4), 2);

    // 50 long-lived connections over the 7 addresses; which went through director1 is read from
    // its counter around each connection's first request (nothing else is tunnelled meanwhile).
    let mut held = Vec::new();
    let mut via_director1 = 0;
    for i in 0..50 {
        let before = encapsulated(&lab, "director1");
        let mut client = lab.within("user", || {
            Client::connect(user_ip4(USER_HOSTS[i % USER_HOSTS.len()]), vip4()).expect("connect")
        });
        let proxy = client.proxy().expect("first request");
        if encapsulated(&lab, "director1") > before {
            via_director1 += 1;
        }
        held.push((client, proxy));
    }
    eprintln!("{via_director1} of 50 connections went through director1");
    assert!((1..50).contains(&via_director1), "ECMP did not spread the 50 connections over both directors");

    let crashed = Instant::now();
    lab.run(&["fail", "director1"]);
    let took = wait("the router to withdraw director1's route", BGP_HOLD + Duration::from_secs(5), || {
        lab.router_nexthops(support::VIP4) == 1
    });
    eprintln!("director1's route withdrawn {:?} after the crash", crashed.elapsed());
    assert!(took <= BGP_HOLD + Duration::from_secs(2), "withdrawn after {took:?}");
    let before = encapsulated(&lab, "director2");
    for (i, (client, proxy)) in held.iter_mut().enumerate() {
        let now = client.proxy().unwrap_or_else(|e| panic!("connection {i} after director1 crashed: {e}"));
        assert_eq!(&now, proxy, "connection {i} moved to another proxy");
    }
    assert!(encapsulated(&lab, "director2") > before, "director2 carried nothing");
    let fresh = proxies_by_address(&lab, 1);
    assert!(fresh.values().all(|p| p.len() == 1), "{fresh:?}");

    // Back to two paths: the flows rehash over both directors and still reach their proxies.
    lab.run(&["restore", "director1"]);
    wait("director1's route back", Duration::from_secs(20), || lab.router_nexthops(support::VIP4) == 2);
    for (i, (client, proxy)) in held.iter_mut().enumerate() {
        let now = client.proxy().unwrap_or_else(|e| panic!("connection {i} after director1 came back: {e}"));
        assert_eq!(&now, proxy, "connection {i} moved to another proxy");
    }
    drop(held);
    lab.down();
}
