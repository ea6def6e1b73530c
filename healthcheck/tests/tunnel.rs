//! The gue and fou checks end to end on loopback, as root: a small GUE/FOU responder receives the
//! probe on its UDP port, checks every byte of it, strips the 8-byte encapsulation header and
//! injects the inner ICMP echo request into the kernel through an IPPROTO_RAW socket. The kernel
//! answers with an ordinary echo reply, which the checker's raw ICMP socket must match — the same
//! path as a real proxy's fou decapsulation (or glb-redirect's userspace agent).

mod common;

use glb_healthcheck::metrics::Metrics;
use glb_healthcheck::probe::Prober;
use glb_healthcheck::targets::{CheckKind, Target};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(400);
const GUE: [u8; 8] = [0x01, 0x04, 0, 0, 0, 0, 0, 0];
const FOU: [u8; 8] = [0x20, 0x00, 0x08, 0x00, 0, 0, 0, 0];

/// Internet checksum, written independently of the crate's.
fn ones_complement_sum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).expect("folded")
}

/// Checks a probe against GLB's layout (spec §1.6); returns the inner IPv4 packet.
fn validate(packet: &[u8], header: [u8; 8], peer: SocketAddr, me: Ipv4Addr) -> Result<Vec<u8>, String> {
    if packet.len() != 62 {
        return Err(format!("length {} instead of 62", packet.len()));
    }
    if packet[..8] != header {
        return Err(format!("encapsulation header {:02x?}", &packet[..8]));
    }
    let ip = &packet[8..28];
    let fixed = [0x45, 0, 0, 54, 0, 0, 0x40, 0, 255, 1];
    if ip[..10] != fixed {
        return Err(format!("inner IPv4 header {ip:02x?}"));
    }
    if ones_complement_sum(ip) != 0xffff {
        return Err("inner IPv4 checksum".into());
    }
    if SocketAddr::from((Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]), peer.port())) != peer {
        return Err(format!("inner source {:?} is not the UDP source {peer}", &ip[12..16]));
    }
    if ip[16..20] != me.octets() {
        return Err(format!("inner destination {:?} is not the backend {me}", &ip[16..20]));
    }
    let icmp = &packet[28..];
    if icmp[0] != 8 || icmp[1] != 0 || icmp[4..8] != [0, 0, 0, 0] || ones_complement_sum(icmp) != 0xffff {
        return Err(format!("ICMP echo request {:02x?}", &icmp[..8]));
    }
    let token = &icmp[8..];
    if !token.starts_with(b"glbhc_") || !token[6..].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'v')) {
        return Err(format!("token {:?}", String::from_utf8_lossy(token)));
    }
    Ok(packet[8..].to_vec())
}

/// A decapsulating responder on 127.0.0.1; reports each validated probe (or the problem).
struct Responder {
    port: u16,
    reports: mpsc::Receiver<Result<Vec<u8>, String>>,
    stop: Arc<AtomicBool>,
}

impl Responder {
    fn start(header: [u8; 8], decapsulate: bool) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind responder");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let raw =
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255))).expect("IPPROTO_RAW socket");
        let (tx, reports) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::SeqCst) {
                let Ok((len, peer)) = socket.recv_from(&mut buf) else { continue };
                let report = validate(&buf[..len], header, peer, Ipv4Addr::LOCALHOST);
                if let (true, Ok(inner)) = (decapsulate, &report) {
                    let to = SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
                    raw.send_to(inner, &to).expect("inject the inner echo request");
                }
                let _ = tx.send(report);
            }
        });
        Self { port, reports, stop }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn target(kind: CheckKind, ip: &str, port: u16) -> Target {
    Target { kind, ip: ip.into(), port, uri: String::new() }
}

async fn probe_through(kind: CheckKind, header: [u8; 8]) {
    let responder = Responder::start(header, true);
    let metrics = Arc::new(Metrics::default());
    let prober = Prober::new(Arc::clone(&metrics));
    let started = Instant::now();
    let result = prober.check(&target(kind, "127.0.0.1", responder.port), TIMEOUT).await;
    let report = responder.reports.recv_timeout(Duration::from_secs(1)).expect("the responder got the probe");
    let inner = report.expect("the probe has GLB's exact layout");
    assert_eq!(inner.len(), 54);
    assert_eq!(result, Ok(()), "the kernel's echo reply completes the {kind} check");
    assert!(started.elapsed() < TIMEOUT);
    let text = metrics.render(&glb_healthcheck::status::Status::default());
    assert!(
        text.contains(&format!("glb_healthcheck_checks_total{{type=\"{kind}\",result=\"pass\"}} 1\n")),
        "{text}"
    );
    assert!(text.contains("glb_healthcheck_icmp_matched_total 1\n"), "{text}");
}

#[tokio::test]
async fn gue_probe_is_decapsulated_and_answered_by_the_kernel() {
    if common::require_root("gue_probe_is_decapsulated_and_answered_by_the_kernel") {
        probe_through(CheckKind::Gue, GUE).await;
    }
}

#[tokio::test]
async fn fou_probe_is_decapsulated_and_answered_by_the_kernel() {
    if common::require_root("fou_probe_is_decapsulated_and_answered_by_the_kernel") {
        probe_through(CheckKind::Fou, FOU).await;
    }
}

#[tokio::test]
async fn a_tunnel_port_that_does_not_decapsulate_times_out() {
    if !common::require_root("a_tunnel_port_that_does_not_decapsulate_times_out") {
        return;
    }
    let responder = Responder::start(GUE, false);
    let prober = Prober::new(Arc::new(Metrics::default()));
    let started = Instant::now();
    let result = prober.check(&target(CheckKind::Gue, "127.0.0.1", responder.port), TIMEOUT).await;
    let took = started.elapsed();
    assert!(responder.reports.recv_timeout(Duration::from_secs(1)).expect("probe received").is_ok());
    let err = result.expect_err("no reply fails");
    assert!(err.contains("no echo reply"), "{err}");
    assert!(took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(300), "took {took:?}");
}

#[tokio::test]
async fn ipv6_tunnel_targets_fail_at_once() {
    if !common::require_root("ipv6_tunnel_targets_fail_at_once") {
        return;
    }
    let prober = Prober::new(Arc::new(Metrics::default()));
    let err = prober.check(&target(CheckKind::Gue, "::1", 19523), TIMEOUT).await.expect_err("IPv6 fails");
    assert!(err.contains("IPv4 only"), "{err}");
}
