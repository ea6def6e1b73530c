//! End to end: source JSON → glb-healthcheck → checked JSON → build-config → binary table, in
//! which the backend that fails its check is primary in no row (a good backend exists in all).
//!
//! build-config is run twice: through the library calls the CLI makes (`config::parse`,
//! `build_binary`), and, when `glb-director-cli` has been built beside this test (as
//! `cargo test --workspace` does), as the daemon's real `reload_command`, whose output must be
//! the same bytes.

mod common;

use common::{Daemon, HttpServer, closed_port, wait_for};
use forwarding_table::{TableFile, build_binary, config};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// `target/<profile>/glb-director-cli`, next to this test's `deps/` directory.
fn director_cli() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let cli = exe.parent()?.parent()?.join("glb-director-cli");
    cli.is_file().then_some(cli)
}

#[test]
fn the_unhealthy_backend_is_primary_in_no_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good1 = HttpServer::start("127.0.0.1");
    let good2 = HttpServer::start("127.0.0.3");
    let bad_port = closed_port("127.0.0.2");
    let source = format!(
        r#"{{"healthchecks": {{"interval_ms": 100, "timeout_ms": 200, "trigger": 2}},
  "tables": [{{"name": "web", "hash_key": "12345678901234561234567890123456", "seed": "34567890123456783456789012345678",
    "binds": [{{"ip": "192.0.2.10", "proto": "tcp", "port": 80}}],
    "backends": [
      {{"ip": "127.0.0.1", "state": "active", "healthy": true, "healthchecks": {{"http": {}}}}},
      {{"ip": "127.0.0.2", "state": "active", "healthy": true, "healthchecks": {{"tcp": {bad_port}}}}},
      {{"ip": "127.0.0.3", "state": "active", "healthy": true, "healthchecks": {{"http": {}, "tcp": {}}}}}]}}]}}"#,
        good1.addr.port(),
        good2.addr.port(),
        good2.addr.port()
    );
    std::fs::write(dir.path().join("forwarding_table.src.json"), source).expect("source");
    let cli = director_cli();
    let reload = cli
        .as_ref()
        .map(|cli| format!("{} build-config forwarding_table.checked.json table.bin", cli.display()));
    if reload.is_none() {
        println!("note: glb-director-cli is not built beside this test; checking through the library only");
    }
    common::write_config(dir.path(), reload.as_deref());
    let daemon = Daemon::start(dir.path(), 10_000);
    wait_for(Duration::from_secs(5), "the first round's write", || {
        (daemon.healthy() == [true, false, true]).then_some(())
    });
    let checked = daemon.checked();

    let validated = config::parse(&checked).expect("the checked file is a valid table for build-config");
    let bytes = build_binary(&validated.config);
    let file = TableFile::parse(&bytes).expect("the binary table reads back");
    let table = file.table(0).expect("one table");
    let addresses: Vec<IpAddr> = table.backends().map(|b| b.address).collect();
    let bad =
        addresses.iter().position(|a| *a == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).expect("bad backend");
    assert!(!table.backends().nth(bad).expect("slot").healthy, "written unhealthy");
    let rows: Vec<(usize, usize)> = table.rows().collect();
    assert_eq!(
        rows.iter().filter(|(primary, _)| *primary == bad).count(),
        0,
        "the unhealthy backend is never primary"
    );
    assert!(rows.iter().any(|(_, secondary)| *secondary == bad), "it stays a second chance somewhere");

    if reload.is_some() {
        let path = dir.path().join("table.bin");
        let built =
            wait_for(Duration::from_secs(5), "the reload command's table.bin", || std::fs::read(&path).ok());
        assert_eq!(
            built, bytes,
            "glb-director-cli build-config, run as the reload command, wrote the same table"
        );
    }
}
