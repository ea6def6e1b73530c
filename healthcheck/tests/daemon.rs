//! The `glb-healthcheck` binary as a process: GLB's run1 situation reproduced on loopback and
//! compared with GLB's bytes, SIGHUP, start-up errors, and GLB's run2 crash case.

mod common;

use common::{Daemon, HttpServer, closed_port, http_get, oracle, wait_for, write_config};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Rewrites JSON number values `: FROM` (followed by a non-digit) to `: TO`, e.g. ports.
fn subst_ports(text: &str, pairs: &[(u16, u16)]) -> String {
    let mut text = text.to_owned();
    for &(from, to) in pairs {
        let (old, new) = (format!(": {from}"), format!(": {to}"));
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(&old) {
            let after = &rest[at + old.len()..];
            let whole = !after.starts_with(|c: char| c.is_ascii_digit());
            out.push_str(&rest[..at]);
            out.push_str(if whole { &new } else { &old });
            rest = after;
        }
        out.push_str(rest);
        text = out;
    }
    text
}

fn reload_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("reload.log")).map_or(0, |s| s.lines().count())
}

/// GLB's run1 (oracle/healthcheck/README.md): the same source, timing and reload command, with the
/// ports replaced by servers this test owns (http+tcp live, tcp closed, a GUE port that does not
/// decapsulate). The checked file must be GLB's bytes, at start-up and after the first round.
#[test]
fn reproduces_glb_run1_byte_for_byte() {
    if !common::require_root("reproduces_glb_run1_byte_for_byte") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = HttpServer::start("127.0.0.1");
    let silent_gue = UdpSocket::bind("127.0.0.1:0").expect("bind silent GUE port");
    let ports = [
        (18765, server.addr.port()),
        (18766, closed_port("127.0.0.2")),
        (19523, silent_gue.local_addr().expect("addr").port()),
    ];
    let back: Vec<(u16, u16)> = ports.iter().map(|&(a, b)| (b, a)).collect();
    let src = subst_ports(&oracle("run1/forwarding_table.src.json"), &ports);
    assert_ne!(src, oracle("run1/forwarding_table.src.json"));
    std::fs::write(dir.path().join("forwarding_table.src.json"), src).expect("write source");
    write_config(dir.path(), Some("echo reload >> reload.log"));

    let mut daemon = Daemon::start(dir.path(), 10_000);
    // Once the endpoint listens the initial write is done; the first round ends 500 ms later.
    assert_eq!(subst_ports(&daemon.checked(), &back), oracle("run1/checked.at_startup.json"));

    // GLB ran about 8 rounds; 4 rounds of ours change nothing after the first.
    daemon.wait_log("Table backend summary", 4, Duration::from_secs(10));
    daemon.assert_running();
    assert_eq!(subst_ports(&daemon.checked(), &back), oracle("run1/checked.after_4s.json"));
    let reload_log = std::fs::read_to_string(dir.path().join("reload.log")).expect("reload.log");
    assert_eq!(reload_log, oracle("run1/reload.log"), "the reload command ran once, as GLB's did");

    // The same backends changed health as in GLB's log, and the same number of reloads ran.
    let glb_log = oracle("run1/healthcheck.log");
    for needle in ["Health state changed for backend", "Executing reload command"] {
        assert_eq!(daemon.count_log(needle), glb_log.matches(needle).count(), "{needle}");
    }

    // /health: every target (GLB registered 5) with its state; GLB answers an empty body here.
    let (code, body) = http_get(daemon.addr, "/health");
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&body).expect("/health is JSON");
    let targets = health["targets"].as_array().expect("targets");
    let glb_targets = serde_json::from_str::<serde_json::Value>(&oracle("run1/debug_vars.counters.json"))
        .expect("counters")["HealthCheckManager"]["TargetsAdded"]
        .as_u64();
    assert_eq!(Some(targets.len() as u64), glb_targets);
    let state = |kind: &str, ip: &str, port: u16, uri: &str| {
        targets
            .iter()
            .find(|t| t["type"] == kind && t["ip"] == ip && t["port"] == port && t["uri"] == uri)
            .unwrap_or_else(|| panic!("no target {kind} {ip}:{port}{uri} in {body}"))["healthy"]
            .as_bool()
    };
    assert_eq!(state("http", "127.0.0.1", ports[0].1, "/"), Some(true));
    assert_eq!(state("tcp", "127.0.0.1", ports[0].1, ""), Some(true));
    assert_eq!(state("http", "127.0.0.1", ports[0].1, "/missing"), Some(false));
    assert_eq!(state("tcp", "127.0.0.2", ports[1].1, ""), Some(false));
    assert_eq!(state("gue", "127.0.0.1", ports[2].1, ""), Some(false));

    let (code, metrics) = http_get(daemon.addr, "/metrics");
    assert_eq!(code, 200);
    for line in [
        "glb_healthcheck_reloads_total 1\n",
        "glb_healthcheck_table_writes_total 2\n", // start-up and first round, as GLB's ForwardingTableWrites
        "glb_healthcheck_backend_health_changes_total 4\n",
        "glb_healthcheck_backends{table=\"0\",name=\"web\",state=\"healthy\"} 3\n",
        "glb_healthcheck_targets{state=\"healthy\"} 2\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    assert_eq!(http_get(daemon.addr, "/nope").0, 404);
    drop(silent_gue);
}

fn two_backend_source(live: u16, second: &str, interval_ms: u64) -> String {
    format!(
        r#"{{"healthchecks": {{"interval_ms": {interval_ms}, "timeout_ms": 100, "trigger": 1}},
  "tables": [{{"name": "t", "hash_key": "12345678901234561234567890123456", "seed": "34567890123456783456789012345678",
    "binds": [{{"ip": "192.0.2.10", "proto": "tcp", "port": 80}}],
    "backends": [
      {{"ip": "127.0.0.1", "state": "active", "healthchecks": {{"http": {live}}}}},
      {{"ip": "127.0.0.1", "state": "active", "healthchecks": {second}}}]}}]}}"#
    )
}

#[test]
fn sighup_with_a_broken_source_keeps_the_previous_state_and_a_good_one_lifts_the_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = HttpServer::start("127.0.0.1");
    let live = server.addr.port();
    let src = dir.path().join("forwarding_table.src.json");
    let closed = closed_port("127.0.0.1");
    std::fs::write(&src, two_backend_source(live, &format!(r#"{{"tcp": {closed}}}"#), 100)).expect("source");
    write_config(dir.path(), Some("echo reload >> reload.log"));
    let mut daemon = Daemon::start(dir.path(), 10_000); // GLB's 10 s hold

    wait_for(Duration::from_secs(5), "the first reload", || (reload_lines(dir.path()) == 1).then_some(()));
    assert_eq!(daemon.healthy(), [true, false]);
    let before = daemon.checked();
    let health_before: serde_json::Value =
        serde_json::from_str(&http_get(daemon.addr, "/health").1).expect("/health JSON");

    std::fs::write(&src, "{\"tables\": [ this is not JSON").expect("break the source");
    daemon.sighup();
    daemon.wait_log("Could not reload the forwarding table", 1, Duration::from_secs(5));
    daemon.wait_log(
        "Table backend summary",
        daemon.count_log("Table backend summary") + 2,
        Duration::from_secs(5),
    );
    daemon.assert_running();
    let error_line =
        daemon.log_text().lines().find(|l| l.contains("Could not reload")).expect("error").to_owned();
    assert!(
        error_line.contains("forwarding_table.src.json") && error_line.contains("line 1"),
        "{error_line}"
    );
    assert_eq!(daemon.checked(), before, "nothing written");
    assert_eq!(reload_lines(dir.path()), 1, "no reload");
    let health_after: serde_json::Value =
        serde_json::from_str(&http_get(daemon.addr, "/health").1).expect("/health JSON");
    assert_eq!(health_after["targets"], health_before["targets"], "same targets and states");

    // A good source: the second backend now uses a check that is already a known target, and the
    // interval changes. Written at once although the 10 s hold from the first write still runs.
    std::fs::write(&src, two_backend_source(live, &format!(r#"{{"http": {live}}}"#), 150)).expect("fix");
    daemon.sighup();
    wait_for(Duration::from_secs(3), "the SIGHUP reload", || (reload_lines(dir.path()) == 2).then_some(()));
    assert_eq!(daemon.healthy(), [true, true]);
    assert_eq!(daemon.count_log("Check timing intervalMs=150 timeoutMs=100 trigger=1"), 1);
    let (_, metrics) = http_get(daemon.addr, "/metrics");
    assert!(metrics.contains("glb_healthcheck_source_reload_failures_total 1\n"), "{metrics}");
    assert!(metrics.contains("glb_healthcheck_source_reloads_total 1\n"), "{metrics}");
}

/// GLB's run2: a non-inactive backend without `healthchecks` crashes GLB at start-up (exit 2).
/// We warn, check nothing for it and write it healthy.
#[test]
fn a_backend_without_healthchecks_does_not_crash_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(common::ORACLE).join("run2_missing_healthchecks_crash/forwarding_table.src.json");
    let config = serde_json::json!({
        "forwarding_table": {"src": src, "dst": "forwarding_table.checked.json"},
        "reload_command": "echo reload >> reload.log"
    });
    std::fs::write(dir.path().join("hc.conf"), config.to_string()).expect("config");
    let mut daemon = Daemon::start(dir.path(), 10_000);
    assert!(
        daemon.log_text().contains("tables[0].backends[0] (127.0.0.1) has no `healthchecks`"),
        "{}",
        daemon.log_text()
    );
    // No global timing in run2's source: GLB's default 2 s interval.
    wait_for(Duration::from_secs(6), "the first reload", || (reload_lines(dir.path()) == 1).then_some(()));
    daemon.assert_running();
    assert_eq!(daemon.healthy(), [true]);
    assert!(daemon.checked().contains("\"healthchecks\": null"), "{}", daemon.checked());
}

fn run_to_exit(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_glb-healthcheck"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run glb-healthcheck");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn start_up_problems_exit_1_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let listen = "--listen=127.0.0.1:0";

    let (code, out) = run_to_exit(d, &["--config=missing.conf", listen]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error: service config: cannot read missing.conf"), "{out}");

    write_config(d, None);
    let (code, out) = run_to_exit(d, &["--config=hc.conf", listen]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error: source table: cannot read forwarding_table.src.json"), "{out}");

    std::fs::write(d.join("forwarding_table.src.json"), "{\"tables\": [}").expect("write");
    let (code, out) = run_to_exit(d, &["--config=hc.conf", listen]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("error: source table: cannot parse forwarding_table.src.json") && out.contains("line 1"),
        "{out}"
    );
    assert!(!d.join("forwarding_table.checked.json").exists(), "nothing written");

    std::fs::write(d.join("forwarding_table.src.json"), r#"{"tables": []}"#).expect("write");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = format!("--listen={}", taken.local_addr().expect("addr"));
    let (code, out) = run_to_exit(d, &["--config=hc.conf", &busy]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cannot listen for HTTP on"), "{out}");

    let (code, out) = run_to_exit(d, &[]);
    assert_eq!(code, Some(1), "usage error: {out}");
    assert!(out.contains("--config"), "{out}");
    let (code, out) = run_to_exit(d, &["--help"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("--config <FILE>") && !out.contains("test-reload-hold"), "{out}");
}

/// GLB ignores a raw-socket failure and times every tunnel check out; we refuse to start.
#[test]
fn tunnel_targets_without_cap_net_raw_fail_start_up() {
    if !common::require_root("tunnel_targets_without_cap_net_raw_fail_start_up") {
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        println!(
            "SKIP tunnel_targets_without_cap_net_raw_fail_start_up: setpriv (util-linux) is not installed"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let src = r#"{"tables": [{"hash_key": "", "seed": "", "binds": [],
        "backends": [{"ip": "127.0.0.1", "state": "active", "healthchecks": {"gue": 19523}}]}]}"#;
    std::fs::write(dir.path().join("forwarding_table.src.json"), src).expect("source");
    write_config(dir.path(), None);
    let out = Command::new("setpriv")
        .args(["--bounding-set=-net_raw", "--inh-caps=-net_raw", "--"])
        .arg(env!("CARGO_BIN_EXE_glb-healthcheck"))
        .args(["--config=hc.conf", "--listen=127.0.0.1:0"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run under setpriv");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cannot open the raw ICMP socket for gue/fou checks (needs CAP_NET_RAW)"),
        "{text}"
    );
}
