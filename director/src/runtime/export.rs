//! Counters out: statsd datagrams with GLB's metric names (glb-director.md §6.5), a Prometheus
//! text endpoint and a `/table` JSON endpoint (the table in force, like a router's route table).
//! Off the packet path: everything here reads the workers' atomics from the control side.

use super::control::{ControlStats, WorkerLink};
use super::stats::StatsSnapshot;
use super::table::TableHandle;
use crate::pipeline::DropReason;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// GLB's statsd prefix.
const PREFIX: &str = "glb_director_ng";

/// Sends per-worker deltas to statsd on 127.0.0.1, as GLB's control loop does every ~10 s.
#[derive(Debug)]
pub struct Statsd {
    socket: UdpSocket,
    target: SocketAddr,
    last: Vec<StatsSnapshot>,
}

impl Statsd {
    /// A sender to `127.0.0.1:port`.
    ///
    /// # Errors
    /// No UDP socket could be opened.
    pub fn new(port: u16) -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket, target: SocketAddr::from(([127, 0, 0, 1], port)), last: Vec::new() })
    }

    /// The datagrams for one export: GLB's per-core counter names with `#core:CC` tags, as deltas
    /// since the previous export.
    pub fn datagrams(&mut self, workers: &[WorkerLink], reloads: u64) -> Vec<String> {
        self.last.resize(workers.len(), StatsSnapshot::default());
        let mut out = Vec::new();
        for (w, last) in workers.iter().zip(self.last.iter_mut()) {
            let now = w.stats.snapshot();
            let core = w.core.unwrap_or(w.id);
            let delta = |a: u64, b: u64| a.saturating_sub(b);
            let dropped = now.dropped.iter().sum::<u64>() - last.dropped.iter().sum::<u64>();
            for (name, value) in [
                ("core.packets.total", delta(now.received, last.received)),
                ("core.packets.matched", delta(now.matched, last.matched)),
                ("core.packets.unmatched", 0),
                ("core.packets.rx_errors", 0),
                ("core.packets.kni", delta(now.to_kernel, last.to_kernel)),
                ("core.packets.encap.success", delta(now.encapsulated, last.encapsulated)),
                ("core.packets.encap.failure", dropped),
                ("core.packets.eth_tx_sent", delta(now.transmitted, last.transmitted)),
                ("core.packets.kni_tx_sent", delta(now.to_kernel, last.to_kernel)),
                ("core.config_reload_count", delta(now.reloads, last.reloads)),
            ] {
                out.push(format!("{PREFIX}.{name}:{value}|c|#core:{core:02}"));
            }
            *last = now;
        }
        out.push(format!("{PREFIX}.control.config_reload_count:{reloads}|g"));
        out
    }

    /// Sends one export; send errors are ignored (statsd is best effort, as in GLB).
    pub fn send(&mut self, workers: &[WorkerLink], reloads: u64) {
        for line in self.datagrams(workers, reloads) {
            let _ = self.socket.send_to(line.as_bytes(), self.target);
        }
    }
}

/// A Prometheus counter family over worker snapshots: name, help, value.
type CounterFamily = (&'static str, &'static str, fn(&StatsSnapshot) -> u64);

/// Prometheus text exposition of every worker's counters and the control counters.
#[must_use]
pub fn prometheus(workers: &[WorkerLink], control: &ControlStats, tables: &TableHandle) -> String {
    let mut out = String::new();
    let snapshots: Vec<(String, StatsSnapshot)> =
        workers.iter().map(|w| (w.id.to_string(), w.stats.snapshot())).collect();
    let families: [CounterFamily; 8] = [
        ("glb_director_received_packets_total", "Frames received from the port", |s| s.received),
        ("glb_director_matched_packets_total", "Frames that matched a bind", |s| s.matched),
        ("glb_director_encapsulated_packets_total", "Frames GUE-encapsulated", |s| s.encapsulated),
        ("glb_director_transmitted_packets_total", "Frames handed to the port's TX", |s| s.transmitted),
        ("glb_director_kernel_packets_total", "Frames sent to the kernel path", |s| s.to_kernel),
        ("glb_director_from_kernel_packets_total", "Frames from the kernel path sent out of the port", |s| {
            s.from_kernel
        }),
        ("glb_director_tx_dropped_packets_total", "Frames a TX queue refused", |s| s.tx_dropped),
        ("glb_director_worker_reloads_total", "Table switches made by the worker", |s| s.reloads),
    ];
    for (name, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
        for (worker, s) in &snapshots {
            let _ = writeln!(out, "{name}{{worker=\"{worker}\"}} {}", get(s));
        }
    }
    let name = "glb_director_dropped_packets_total";
    let _ = writeln!(out, "# HELP {name} Matched frames dropped, by reason.\n# TYPE {name} counter");
    for (worker, s) in &snapshots {
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "{name}{{worker=\"{worker}\",reason=\"{}\"}} {}",
                reason.name(),
                s.dropped[reason.index()]
            );
        }
    }
    let name = "glb_director_worker_table_generation";
    let _ = writeln!(out, "# HELP {name} Generation of the table the worker uses.\n# TYPE {name} gauge");
    for (worker, s) in &snapshots {
        let _ = writeln!(out, "{name}{{worker=\"{worker}\"}} {}", s.generation);
    }
    let current = tables.current();
    for (name, kind, help, value) in [
        ("glb_director_table_generation", "gauge", "Generation of the table in force", current.number),
        (
            "glb_director_table_reloads_total",
            "counter",
            "Tables published after start-up",
            control.reloads.load(Ordering::Relaxed),
        ),
        (
            "glb_director_table_reload_failures_total",
            "counter",
            "Reloads rejected (unreadable or invalid file); the previous table stayed",
            control.reload_failures.load(Ordering::Relaxed),
        ),
        (
            "glb_director_table_reloads_unchanged_total",
            "counter",
            "Reload requests whose file was the table in force; nothing published",
            control.reloads_unchanged.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} {kind}\n{name} {value}");
    }
    out
}

/// The table in force as JSON: generation, digest, and per table its binds and backends with
/// state and health.
#[must_use]
pub fn table_json(tables: &TableHandle) -> serde_json::Value {
    let current = tables.current();
    let file = current.table.file();
    let tables: Vec<serde_json::Value> = file
        .tables()
        .map(|t| {
            serde_json::json!({
                "index": t.index(),
                "binds": t.binds().map(|b| serde_json::json!({
                    "ip": b.address.to_string(), "prefix_len": b.prefix_len, "proto": b.proto,
                    "port_start": b.port_start, "port_end": b.port_end,
                })).collect::<Vec<_>>(),
                "backends": t.backends().map(|b| serde_json::json!({
                    "ip": b.address.to_string(), "state": b.state.name(), "healthy": b.healthy,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "generation": current.number, "digest": current.digest, "tables": tables })
}

/// Serves `GET /metrics` and `GET /table` on `listener` until `stop`; one short request per
/// connection (a scrape endpoint, not a web server).
pub fn serve(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    workers: Vec<WorkerLink>,
    control: Arc<ControlStats>,
    tables: Arc<TableHandle>,
) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = respond(stream, &workers, &control, &tables);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn respond(
    stream: TcpStream,
    workers: &[WorkerLink],
    control: &ControlStats,
    tables: &TableHandle,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body) = match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", prometheus(workers, control, tables)),
        "/table" => ("200 OK", "application/json", format!("{:#}\n", table_json(tables))),
        _ => ("404 Not Found", "text/plain", "try /metrics or /table\n".to_owned()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Tells systemd the daemon is ready (`Type=notify`), if `NOTIFY_SOCKET` is set.
pub fn sd_notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else { return };
    let path = path.to_string_lossy().into_owned();
    let sent = match path.strip_prefix('@') {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
                .and_then(|addr| socket.send_to_addr(b"READY=1", &addr))
        }
        None => socket.send_to(b"READY=1", &path),
    };
    if let Err(e) = sent {
        log::warn!("sd_notify READY=1 failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{SeenGeneration, WorkerStats};

    #[test]
    fn statsd_sends_glb_names_as_deltas() {
        let stats = Arc::new(WorkerStats::default());
        let link = WorkerLink {
            id: 0,
            core: Some(3),
            stats: Arc::clone(&stats),
            seen: Arc::new(SeenGeneration::default()),
        };
        let mut statsd = Statsd::new(9).expect("socket");
        stats.received.fetch_add(10, Ordering::Relaxed);
        stats.encapsulated.fetch_add(7, Ordering::Relaxed);
        stats.dropped[DropReason::Truncated.index()].fetch_add(1, Ordering::Relaxed);
        let first = statsd.datagrams(std::slice::from_ref(&link), 2);
        assert!(first.contains(&"glb_director_ng.core.packets.total:10|c|#core:03".to_owned()), "{first:#?}");
        assert!(first.contains(&"glb_director_ng.core.packets.encap.success:7|c|#core:03".to_owned()));
        assert!(first.contains(&"glb_director_ng.core.packets.encap.failure:1|c|#core:03".to_owned()));
        stats.received.fetch_add(5, Ordering::Relaxed);
        let second = statsd.datagrams(std::slice::from_ref(&link), 2);
        assert!(
            second.contains(&"glb_director_ng.core.packets.total:5|c|#core:03".to_owned()),
            "deltas: {second:#?}"
        );
        assert!(second.contains(&"glb_director_ng.core.packets.encap.success:0|c|#core:03".to_owned()));
    }
}
