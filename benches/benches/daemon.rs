//! The whole director daemon (`glb_director::runtime::Daemon`: worker thread, burst loop, table
//! handle, TX flushing) driven over an in-memory port, so the harness needs no device.
//!
//! Case: `daemon/memory_port/1_worker` — 64-byte IPv4 UDP frames from 4096 clients to one VIP,
//! 256-backend table; each iteration injects the frames and waits until the worker has
//! transmitted them all. The memory port (a mutex-guarded queue with a heap copy per frame) costs
//! far more than a NIC ring, so this measures the daemon's plumbing end to end, not line rate;
//! `benches/pipeline.rs` measures the per-packet path alone. The line-rate harness (veth,
//! AF_PACKET/AF_XDP, a DPDK peer) builds on this.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use forwarding_table::{HashFields, LoadedTable};
use glb_benches::pipeline::bench_pipeline;
use glb_director::config::WorkerSpec;
use glb_director::io::memory::MemoryPort;
use glb_director::runtime::{Daemon, DaemonOptions, Idle, TableHandle, WorkerPorts};
use glb_wire::ip::Protocol;
use glb_wire::{ipv4, udp};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);

fn frames(count: u32) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let client = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i % 4096));
            let mut f = vec![0u8; 64];
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            let repr = ipv4::Repr {
                src_addr: client,
                dst_addr: VIP,
                protocol: Protocol::Udp,
                payload_len: 30,
                ttl: 64,
                ident: 0,
                dont_frag: false,
            };
            repr.emit(&mut f[14..34]).expect("header fits");
            udp::emit(&mut f[34..64], 40_000, 53, client, VIP).expect("datagram fits");
            f
        })
        .collect()
}

fn table() -> LoadedTable {
    let backends: Vec<String> = (1..=256u32)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + i);
            format!(r#"{{"ip":"{ip}","state":"active","healthy":true}}"#)
        })
        .collect();
    let json = format!(
        r#"{{"tables":[{{"hash_key":"000102030405060708090a0b0c0d0e0f","seed":"0f0e0d0c0b0a09080706050403020100",
        "binds":[{{"ip":"{VIP}","proto":"udp","port":53}}],"backends":[{}]}}]}}"#,
        backends.join(",")
    );
    let config = forwarding_table::config::parse(&json).expect("valid table").config;
    LoadedTable::from_bytes(forwarding_table::build_binary(&config)).expect("loads")
}

fn daemon(c: &mut Criterion) {
    let port = MemoryPort::new();
    let pipeline = bench_pipeline(HashFields::default());
    let workers = vec![WorkerPorts {
        spec: WorkerSpec { core: None, queue: 0 },
        port: Box::new(port.clone()),
        kernel: None,
    }];
    let options = DaemonOptions {
        table_path: std::env::temp_dir().join("glb-bench-unused.bin"),
        idle: Idle::BusyPoll,
        statsd_port: None,
        metrics_listen: None,
        watch: false,
    };
    let (stop, reload) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let tables = Arc::new(TableHandle::new(table()));
    let daemon =
        Daemon::start(tables, pipeline, workers, &options, Arc::clone(&stop), reload).expect("daemon starts");
    let control = Arc::clone(&daemon.control);
    let running = std::thread::spawn(move || daemon.run(None));

    const BATCH: u32 = 4096;
    let input = frames(BATCH);
    let mut group = c.benchmark_group("daemon");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.bench_function("memory_port/1_worker", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before = control.totals().transmitted;
                let started = Instant::now();
                for frame in &input {
                    port.inject(black_box(frame));
                }
                while control.totals().transmitted < before + u64::from(BATCH) {
                    std::hint::spin_loop();
                }
                total += started.elapsed();
                black_box(port.take_transmitted());
            }
            total
        });
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    running.join().expect("control thread").expect("daemon stops cleanly");
}

criterion_group!(benches, daemon);
criterion_main!(benches);
