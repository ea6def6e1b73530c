//! The http and tcp checks against real servers on loopback.

mod common;

use common::{HttpServer, closed_port};
use glb_healthcheck::metrics::Metrics;
use glb_healthcheck::probe::Prober;
use glb_healthcheck::targets::{CheckKind, Target};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(300);

fn target(kind: CheckKind, ip: &str, port: u16, uri: &str) -> Target {
    Target { kind, ip: ip.into(), port, uri: uri.into() }
}

async fn check(t: &Target) -> (Result<(), String>, Duration) {
    let prober = Prober::new(Arc::new(Metrics::default()));
    let started = Instant::now();
    let result = prober.check(t, TIMEOUT).await;
    (result, started.elapsed())
}

#[tokio::test]
async fn http_passes_only_on_200_and_follows_redirects() {
    let server = HttpServer::start("127.0.0.1");
    let port = server.addr.port();
    let (ok, _) = check(&target(CheckKind::Http, "127.0.0.1", port, "/")).await;
    assert_eq!(ok, Ok(()));

    let (missing, _) = check(&target(CheckKind::Http, "127.0.0.1", port, "/missing")).await;
    let err = missing.expect_err("404 fails");
    assert!(err.contains("404"), "{err}");

    let (redirected, _) = check(&target(CheckKind::Http, "127.0.0.1", port, "/redirect")).await;
    assert_eq!(redirected, Ok(()), "a redirect to a 200 passes, as Go's client follows it");

    let (looping, _) = check(&target(CheckKind::Http, "127.0.0.1", port, "/loop")).await;
    let err = looping.expect_err("endless redirects fail");
    assert!(err.contains("10 redirects"), "{err}");

    server.set_status(204);
    let (no_content, _) = check(&target(CheckKind::Http, "127.0.0.1", port, "/")).await;
    assert!(no_content.expect_err("204 is not 200").contains("204"));

    let (bad_uri, _) = check(&target(CheckKind::Http, "127.0.0.1", port, "no-slash")).await;
    assert!(bad_uri.is_err(), "a URI without a leading slash fails, as in GLB");
}

#[tokio::test]
async fn http_that_hangs_fails_at_the_timeout() {
    let server = HttpServer::start("127.0.0.1");
    let (result, took) = check(&target(CheckKind::Http, "127.0.0.1", server.addr.port(), "/hang")).await;
    let err = result.expect_err("a hanging server fails");
    assert!(err.contains("within 300 ms"), "{err}");
    assert!(took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(500), "took {took:?}");
}

#[tokio::test]
async fn http_to_a_closed_port_fails_fast() {
    let port = closed_port("127.0.0.1");
    let (result, took) = check(&target(CheckKind::Http, "127.0.0.1", port, "/")).await;
    assert!(result.expect_err("refused").contains("connect"));
    assert!(took < TIMEOUT, "took {took:?}");
}

#[tokio::test]
async fn tcp_open_passes_and_closed_fails() {
    let server = HttpServer::start("127.0.0.2");
    let (open, _) = check(&target(CheckKind::Tcp, "127.0.0.2", server.addr.port(), "")).await;
    assert_eq!(open, Ok(()));
    let port = closed_port("127.0.0.2");
    let (closed, _) = check(&target(CheckKind::Tcp, "127.0.0.2", port, "")).await;
    let err = closed.expect_err("closed port fails");
    assert!(err.contains(&format!("127.0.0.2:{port}")) && err.contains("refused"), "{err}");
}

#[tokio::test]
async fn ipv6_targets_are_formatted_with_brackets() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        println!("SKIP ipv6_targets_are_formatted_with_brackets: no IPv6 loopback on this machine");
        return;
    };
    drop(listener);
    let server = HttpServer::start("::1");
    let port = server.addr.port();
    assert_eq!(check(&target(CheckKind::Http, "::1", port, "/")).await.0, Ok(()));
    assert_eq!(check(&target(CheckKind::Tcp, "::1", port, "")).await.0, Ok(()));
}

#[tokio::test]
async fn an_invalid_address_fails_without_panicking() {
    for ip in ["", "not an ip", "300.1.2.3", "127.0.0.1:80"] {
        // Never resolved: a name would be a DNS query, and tests send nothing off the machine.
        for kind in [CheckKind::Http, CheckKind::Tcp] {
            let (result, _) = check(&target(kind, ip, 80, "/")).await;
            assert!(result.expect_err(ip).contains("is not an IP address"), "{kind} {ip:?}");
        }
    }
}
