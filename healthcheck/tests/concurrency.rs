//! Hundreds of targets in one round, on a single-threaded runtime: all checks run at once (the
//! round takes one timeout, not 300) and no thread is started per target.

use glb_healthcheck::config::{ServiceConfig, TablePaths};
use glb_healthcheck::metrics::Metrics;
use glb_healthcheck::service::Service;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status.lines().find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok()).expect("Threads line")
}

#[tokio::test] // current-thread runtime
async fn three_hundred_targets_in_one_round_without_a_thread_each() {
    // 100 listening ports (tcp passes), 100 closed ports (tcp fails at once), and 100 http
    // targets on a listener that never accepts (the request sits in the backlog: timeout).
    let open: Vec<TcpListener> = (0..100).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    // Bound together so the kernel cannot hand out a port twice, then released: closed.
    let closing: Vec<TcpListener> =
        (0..100).map(|_| TcpListener::bind("127.0.0.3:0").expect("bind")).collect();
    let closed: Vec<u16> = closing.iter().map(|l| l.local_addr().expect("addr").port()).collect();
    drop(closing);
    let silent = TcpListener::bind("127.0.0.4:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();

    let mut backends = Vec::new();
    for l in &open {
        let port = l.local_addr().expect("addr").port();
        backends
            .push(format!(r#"{{"ip": "127.0.0.1", "state": "active", "healthchecks": {{"tcp": {port}}}}}"#));
    }
    for port in &closed {
        backends
            .push(format!(r#"{{"ip": "127.0.0.3", "state": "active", "healthchecks": {{"tcp": {port}}}}}"#));
    }
    for i in 0..100 {
        backends.push(format!(
            r#"{{"ip": "127.0.0.4", "state": "active", "healthchecks": {{"http": {silent_port}, "http_uri": "/{i}"}}}}"#
        ));
    }
    let source = format!(
        r#"{{"healthchecks": {{"interval_ms": 50, "timeout_ms": 500, "trigger": 1}},
            "tables": [{{"hash_key": "", "seed": "", "binds": [], "backends": [{}]}}]}}"#,
        backends.join(",")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.json");
    std::fs::write(&src, source).expect("source");
    let config = ServiceConfig {
        forwarding_table: TablePaths { src, dst: dir.path().join("checked.json") },
        reload_command: None,
        reload_timeout_ms: None,
    };
    let mut svc = Service::start(config, Duration::ZERO, Arc::new(Metrics::default())).expect("starts");
    assert_eq!(svc.status().borrow().targets.len(), 300);

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                peak.fetch_max(threads(), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    thread::sleep(Duration::from_millis(10));
    let baseline = threads();
    let started = Instant::now();
    svc.round().await;
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().expect("sampler");

    assert!(took >= Duration::from_millis(500), "the hanging checks ran to their timeout: {took:?}");
    assert!(took < Duration::from_millis(1500), "300 checks ran concurrently: {took:?}");
    let extra = peak.load(Ordering::SeqCst).saturating_sub(baseline);
    assert!(extra <= 2, "{extra} extra threads during the round (baseline {baseline})");
    let healthy: Vec<bool> = svc.table().tables[0].backends.iter().map(|b| b.healthy).collect();
    assert_eq!(healthy.iter().filter(|&&h| h).count(), 100);
    assert!(healthy[..100].iter().all(|&h| h) && healthy[100..].iter().all(|&h| !h));
    drop((open, silent));
}
