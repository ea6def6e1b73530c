//! Hot reload under load, over in-memory ports: while frames stream through two workers, the
//! table file is replaced 100 times (atomic renames, seen by the directory watch) alternating
//! between two tables, and once with a corrupt file. Every frame must come out exactly once, to
//! the primary of one of the two tables; the corrupt file must be rejected and counted while
//! forwarding goes on.

mod support;

use forwarding_table::{HashFields, LoadedTable};
use glb_director::config::WorkerSpec;
use glb_director::io::memory::MemoryPort;
use glb_director::pipeline::{ClassifyOptions, Pipeline, PipelineConfig, TunnelEndpoint};
use glb_director::runtime::{Daemon, DaemonOptions, TableHandle, WorkerPorts};
use glb_wire::{gue, ipv4};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn hundred_swaps_under_load_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("forwarding_table.bin");
    let (a, b) = support::vip_table_generations();
    support::publish(&path, &a);
    let (table_a, table_b) =
        (LoadedTable::from_bytes(a.clone()).expect("a"), LoadedTable::from_bytes(b.clone()).expect("b"));

    let ports = [MemoryPort::new(), MemoryPort::new()];
    let pipeline = Pipeline::new(PipelineConfig {
        endpoint: TunnelEndpoint {
            gateway_mac: [2, 0, 0, 0, 0, 2],
            local_mac: [2, 0, 0, 0, 0, 1],
            src_ip: Ipv4Addr::new(192, 0, 2, 1),
        },
        hash_fields: HashFields::default(),
        alt_hash_fields: None,
        classify: ClassifyOptions { forward_icmp_echo: true },
    });
    let workers = ports
        .iter()
        .enumerate()
        .map(|(q, p)| WorkerPorts {
            spec: WorkerSpec { core: None, queue: u16::try_from(q).expect("queue") },
            port: Box::new(p.clone()),
            kernel: None,
        })
        .collect();
    let (stop, reload) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let tables = Arc::new(TableHandle::new(LoadedTable::from_bytes(a.clone()).expect("a")));
    let options = DaemonOptions {
        table_path: path.clone(),
        idle: glb_director::runtime::Idle::BusyPoll,
        statsd_port: None,
        metrics_listen: None,
        watch: true,
    };
    let daemon = Daemon::start(Arc::clone(&tables), pipeline, workers, &options, Arc::clone(&stop), reload)
        .expect("daemon starts");
    let control = Arc::clone(&daemon.control);
    let running = std::thread::spawn(move || daemon.run(None));

    // Stream frames while the table is swapped 100 times, with one corrupt file in the middle.
    const FRAMES: u32 = 40_000;
    let feeder = {
        let ports = ports.clone();
        std::thread::spawn(move || {
            for i in 0..FRAMES {
                ports[(i % 2) as usize].inject(&support::vip_frame(i));
                if i % 400 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let mut generation = 1;
    for swap in 0..100 {
        if swap == 50 {
            support::publish(&path, &a[..a.len() - 1]);
            wait_until(
                || control.stats.reload_failures.load(Ordering::Relaxed) >= 1,
                "the corrupt table is rejected",
            );
        }
        support::publish(&path, if swap % 2 == 0 { &b } else { &a });
        wait_until(|| tables.current().number > generation, "the watch picks up the new table");
        generation = tables.current().number;
    }
    feeder.join().expect("feeder");
    wait_until(|| ports.iter().all(|p| p.rx_pending() == 0), "every frame is received");
    wait_until(|| control.totals().transmitted == u64::from(FRAMES), "every frame is transmitted");
    wait_until(|| tables.retired_count() == 0, "replaced tables are freed by the control thread");
    stop.store(true, Ordering::Relaxed);
    running.join().expect("control thread").expect("workers stop cleanly");

    assert_eq!(control.stats.reload_failures.load(Ordering::Relaxed), 1, "exactly the corrupt file failed");
    assert!(control.stats.reloads.load(Ordering::Relaxed) >= 100, "every swap was published");
    let totals = control.totals();
    assert_eq!(
        (totals.received, totals.encapsulated, totals.tx_dropped),
        (u64::from(FRAMES), u64::from(FRAMES), 0)
    );
    assert!(totals.reloads >= 2, "workers switched tables while running");
    let mut seen: HashMap<u32, Ipv4Addr> = HashMap::new();
    let (mut via_a, mut via_b) = (0, 0);
    for out in ports.iter().flat_map(MemoryPort::take_transmitted) {
        let ip = ipv4::Packet::new_checked(&out[14..]).expect("outer IPv4");
        let gue = gue::Packet::new_checked(&out[14 + 20 + 8..]).expect("GUE");
        let inner = gue.payload();
        let seq = u32::from_be_bytes(inner[28..32].try_into().expect("sequence"));
        let client = ipv4::Packet::new_checked(inner).expect("inner IPv4").src_addr();
        assert!(seen.insert(seq, ip.dst_addr()).is_none(), "frame {seq} came out twice");
        if ip.dst_addr() == support::vip_primary(&table_a, client) {
            via_a += 1;
        } else {
            assert_eq!(
                ip.dst_addr(),
                support::vip_primary(&table_b, client),
                "frame {seq} went to neither table's primary"
            );
            via_b += 1;
        }
    }
    assert_eq!(seen.len(), FRAMES as usize, "every frame came out exactly once");
    assert!(via_a > 0 && via_b > 0, "both tables carried traffic ({via_a} / {via_b})");
}

fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One change often arrives as several reload requests (the healthcheck's reload command signals,
/// the directory watch sees the rename): a file identical to the table in force is counted and
/// not published again; a different one is.
#[test]
fn an_unchanged_file_is_not_published_again() {
    use glb_director::runtime::{Control, ControlStats};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("forwarding_table.bin");
    let (a, b) = support::vip_table_generations();
    support::publish(&path, &a);
    let control = Control {
        tables: Arc::new(TableHandle::new(LoadedTable::from_bytes(a.clone()).expect("a"))),
        table_path: path.clone(),
        reload_requested: Arc::new(AtomicBool::new(false)),
        stop: Arc::new(AtomicBool::new(false)),
        workers: Vec::new(),
        stats: Arc::new(ControlStats::default()),
    };
    let counts = |c: &Control| {
        (
            c.stats.reloads.load(Ordering::Relaxed),
            c.stats.reloads_unchanged.load(Ordering::Relaxed),
            c.stats.reload_failures.load(Ordering::Relaxed),
        )
    };
    assert_eq!(control.reload(), Ok(1), "the start-up table rewritten: still generation 1");
    assert_eq!(counts(&control), (0, 1, 0));
    support::publish(&path, &b);
    assert_eq!(control.reload(), Ok(2), "a different table is published");
    assert_eq!(control.reload(), Ok(2), "the same request again");
    assert_eq!(counts(&control), (1, 2, 0));
    support::publish(&path, &a);
    assert_eq!(control.reload(), Ok(3), "back to the first table: a change again");
    assert_eq!(control.tables.current().table.bytes(), a.as_slice());
    assert_eq!(counts(&control), (2, 2, 0));
}
