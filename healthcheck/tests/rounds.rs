//! Rounds driven one at a time against a real HTTP server whose answer the test flips: the
//! dampening seen in the checked file, the reload command per change, and the hold.

mod common;

use common::{HttpServer, healthy_of};
use glb_healthcheck::config::{ServiceConfig, TablePaths};
use glb_healthcheck::metrics::Metrics;
use glb_healthcheck::service::Service;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start(dir: &Path, source: &str, reload_command: &str, hold: Duration) -> Service {
    let src = dir.join("src.json");
    std::fs::write(&src, source).expect("write source");
    let config = ServiceConfig {
        forwarding_table: TablePaths { src, dst: dir.join("checked.json") },
        reload_command: Some(reload_command.to_owned()),
        reload_timeout_ms: Some(5_000),
    };
    Service::start(config, hold, Arc::new(Metrics::default())).expect("service starts")
}

fn source(trigger: u64, interval_ms: u64, server_port: u16) -> String {
    format!(
        r#"{{"healthchecks": {{"interval_ms": {interval_ms}, "timeout_ms": 500, "trigger": {trigger}}},
  "tables": [{{"name": "t", "hash_key": "12345678901234561234567890123456", "seed": "34567890123456783456789012345678",
    "binds": [{{"ip": "192.0.2.10", "proto": "tcp", "port": 80}}],
    "backends": [
      {{"ip": "127.0.0.1", "state": "active", "healthchecks": {{"http": {server_port}}}}},
      {{"ip": "127.0.0.1", "state": "active", "healthchecks": {{"tcp": {server_port}}}}}]}}]}}"#
    )
}

fn checked(dir: &Path) -> Vec<bool> {
    healthy_of(&std::fs::read_to_string(dir.join("checked.json")).expect("checked file"))
}

fn reloads(dir: &Path) -> Vec<u128> {
    std::fs::read_to_string(dir.join("reload.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().expect("a timestamp in ns"))
        .collect()
}

#[tokio::test]
async fn health_flips_after_exactly_trigger_rounds_and_each_change_reloads_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = HttpServer::start("127.0.0.1");
    let log = d.join("reload.log");
    let mut svc = start(
        d,
        &source(3, 10, server.addr.port()),
        &format!("date +%s%N >> {}", log.display()),
        Duration::ZERO,
    );
    assert_eq!(svc.timing().trigger, 3);
    assert_eq!(checked(d), [false, false], "start-up write copies the source (missing healthy → false)");
    assert!(reloads(d).is_empty(), "no reload for the start-up write");

    svc.round().await;
    assert_eq!(checked(d), [true, true], "the first result is not dampened");
    assert_eq!(reloads(d).len(), 1);

    server.set_status(500);
    for round in 1..=3 {
        svc.round().await;
        let expect_down = round == 3;
        assert_eq!(checked(d), [!expect_down, true], "failed round {round} of 3");
        assert_eq!(reloads(d).len(), if expect_down { 2 } else { 1 }, "failed round {round}");
    }
    server.set_status(200);
    for round in 1..=3 {
        svc.round().await;
        let expect_up = round == 3;
        assert_eq!(checked(d), [expect_up, true], "good round {round} of 3");
        assert_eq!(reloads(d).len(), if expect_up { 3 } else { 2 }, "good round {round}");
    }
    for _ in 0..5 {
        svc.round().await;
    }
    assert_eq!(reloads(d).len(), 3, "no change, no reload");
}

#[tokio::test]
async fn the_reload_command_never_runs_twice_inside_the_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = HttpServer::start("127.0.0.1");
    let hold = Duration::from_millis(400);
    let log = d.join("reload.log");
    let mut svc = start(d, &source(1, 20, server.addr.port()), &format!("echo r >> {}", log.display()), hold);
    let reload_count = || std::fs::read_to_string(&log).map_or(0, |s| s.lines().count());

    // The backend flips every round for 1.2 s: a change each round, a reload at most per hold.
    // The reload runs inside `round()`, so each one is bracketed by the round's start and end:
    // two reloads a hold apart have (end of the later round − start of the earlier) ≥ hold.
    let started = Instant::now();
    let mut reload_rounds: Vec<(Instant, Instant)> = Vec::new();
    let mut rounds = 0u16;
    while started.elapsed() < Duration::from_millis(1200) {
        server.set_status(if rounds.is_multiple_of(2) { 200 } else { 503 });
        let (before, round_start) = (reload_count(), Instant::now());
        svc.round().await;
        let after = reload_count();
        assert!(after <= before + 1, "one round, one reload at most");
        if after > before {
            reload_rounds.push((round_start, Instant::now()));
        }
        rounds += 1;
    }
    assert!(rounds >= 10, "only {rounds} rounds");
    // A gate that let every change through would reload in every round.
    assert!((2..=4).contains(&reload_rounds.len()), "{} reloads in {rounds} rounds", reload_rounds.len());
    for pair in reload_rounds.windows(2) {
        let span = pair[1].1 - pair[0].0;
        assert!(span >= hold, "two reloads within {span:?}");
    }

    // Once it settles, the held change is written on the first round after the hold.
    server.set_status(200);
    let settled = Instant::now();
    while settled.elapsed() < hold + Duration::from_millis(100) {
        svc.round().await;
    }
    assert_eq!(checked(d), [true, true]);
    assert!(svc.table().tables[0].backends[0].healthy, "the in-memory table agrees");
}
