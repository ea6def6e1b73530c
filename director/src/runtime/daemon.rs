//! Starting and stopping the whole director: workers pinned to cores, the control thread, the
//! table watch, statsd and the metrics endpoint. Ports are opened by the caller (`launch` opens
//! the configured backend's), so tests can run the real daemon over in-memory ports.

use super::control::{Control, ControlStats, WorkerLink, watch_table};
use super::export::{Statsd, serve};
use super::stats::WorkerStats;
use super::table::{SeenGeneration, TableHandle};
use super::worker::{Idle, Worker};
use crate::config::WorkerSpec;
use crate::io::{IoError, PacketIo};
use crate::pipeline::Pipeline;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;

/// How often counters go to statsd (GLB: every ~10 s).
pub const STATSD_INTERVAL: Duration = Duration::from_secs(10);

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// A port or kernel-path device cannot be opened.
    #[error("{what}")]
    Port {
        /// Which device, for what.
        what: String,
        /// The device error.
        #[source]
        source: IoError,
    },
    /// The signal handlers cannot be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    /// A worker's device failed.
    #[error("worker {worker}")]
    Worker {
        /// Which worker.
        worker: usize,
        /// The device error.
        #[source]
        source: IoError,
    },
    /// A thread could not be started or panicked.
    #[error("{0}")]
    Thread(String),
    /// The table's directory cannot be watched.
    #[error("cannot watch the forwarding table's directory")]
    Watch(#[source] notify::Error),
    /// The metrics endpoint cannot listen.
    #[error("cannot listen on {addr} for metrics")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One worker's devices, opened by the caller.
pub struct WorkerPorts {
    /// Where it pins and which queue it serves.
    pub spec: WorkerSpec,
    /// The port.
    pub port: Box<dyn PacketIo>,
    /// Its kernel-path queue.
    pub kernel: Option<Box<dyn PacketIo>>,
}

impl std::fmt::Debug for WorkerPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPorts")
            .field("spec", &self.spec)
            .field("kernel", &self.kernel.is_some())
            .finish()
    }
}

/// Settings of a running daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The binary table file (reloaded in place).
    pub table_path: PathBuf,
    /// Waiting policy of the workers.
    pub idle: Idle,
    /// statsd port on 127.0.0.1; `None` disables statsd.
    pub statsd_port: Option<u16>,
    /// Metrics endpoint address.
    pub metrics_listen: Option<SocketAddr>,
    /// Watch the table's directory for changes.
    pub watch: bool,
}

/// A started director.
#[derive(Debug)]
pub struct Daemon {
    /// Control state (tables, counters); tests inspect it.
    pub control: Arc<Control>,
    workers: Vec<(usize, JoinHandle<Result<(), IoError>>)>,
    helpers: Vec<JoinHandle<()>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Daemon {
    /// Starts one pinned worker per `ports` entry, the table watch and the metrics endpoint.
    /// `stop` ends everything; `reload` requests a table reload (signals set both).
    ///
    /// # Errors
    /// A thread, the watch or the endpoint cannot be started.
    pub fn start(
        tables: Arc<TableHandle>,
        pipeline: Pipeline,
        ports: Vec<WorkerPorts>,
        options: &DaemonOptions,
        stop: Arc<AtomicBool>,
        reload: Arc<AtomicBool>,
    ) -> Result<Self, DaemonError> {
        let mut links = Vec::new();
        let mut workers = Vec::new();
        for (id, WorkerPorts { spec, port, kernel }) in ports.into_iter().enumerate() {
            let stats = Arc::new(WorkerStats::default());
            let seen = Arc::new(SeenGeneration::default());
            links.push(WorkerLink {
                id,
                core: spec.core,
                stats: Arc::clone(&stats),
                seen: Arc::clone(&seen),
            });
            let worker = Worker {
                id,
                port,
                kernel,
                pipeline,
                tables: Arc::clone(&tables),
                stats,
                seen,
                stop: Arc::clone(&stop),
                idle: options.idle,
            };
            let handle = std::thread::Builder::new()
                .name(format!("glb-worker-{id}"))
                .spawn(move || {
                    if let Some(core) = spec.core
                        && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
                    {
                        log::warn!("worker {id}: could not pin to core {core}");
                    }
                    log::info!("worker {id} started (core {:?}, queue {})", spec.core, spec.queue);
                    worker.run()
                })
                .map_err(|e| DaemonError::Thread(format!("cannot start worker {id}: {e}")))?;
            workers.push((id, handle));
        }
        let control_stats = Arc::new(ControlStats::default());
        let control = Arc::new(Control {
            tables: Arc::clone(&tables),
            table_path: options.table_path.clone(),
            reload_requested: Arc::clone(&reload),
            stop: Arc::clone(&stop),
            workers: links.clone(),
            stats: Arc::clone(&control_stats),
        });
        let watcher = if options.watch {
            Some(watch_table(&options.table_path, Arc::clone(&reload)).map_err(DaemonError::Watch)?)
        } else {
            None
        };
        let mut helpers = Vec::new();
        if let Some(addr) = options.metrics_listen {
            let listener =
                std::net::TcpListener::bind(addr).map_err(|source| DaemonError::Listen { addr, source })?;
            let (stop, tables) = (Arc::clone(&stop), Arc::clone(&tables));
            helpers.push(
                std::thread::Builder::new()
                    .name("glb-metrics".into())
                    .spawn(move || serve(listener, stop, links, control_stats, tables))
                    .map_err(|e| DaemonError::Thread(format!("cannot start the metrics endpoint: {e}")))?,
            );
        }
        Ok(Self { control, workers, helpers, _watcher: watcher })
    }

    /// Runs the control loop on this thread until `stop`, then joins every thread.
    ///
    /// # Errors
    /// A worker stopped with a device error or panicked.
    pub fn run(self, statsd_port: Option<u16>) -> Result<(), DaemonError> {
        let mut statsd = statsd_port.and_then(|port| Statsd::new(port).ok());
        self.control.run(STATSD_INTERVAL, |control| {
            if let Some(statsd) = &mut statsd {
                statsd.send(&control.workers, control.stats.reloads.load(Ordering::Relaxed));
            }
        });
        self.join()
    }

    /// Joins every thread after `stop` was set.
    ///
    /// # Errors
    /// A worker stopped with a device error or panicked.
    pub fn join(self) -> Result<(), DaemonError> {
        let mut first_error = None;
        for (worker, handle) in self.workers {
            let result = handle.join().map_err(|_| DaemonError::Thread(format!("worker {worker} panicked")));
            match result {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    log::error!("worker {worker} stopped: {source}");
                    first_error.get_or_insert(DaemonError::Worker { worker, source });
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        for helper in self.helpers {
            let _ = helper.join();
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Registers GLB's signals: SIGUSR1 (and our SIGHUP) request a reload; SIGINT and SIGTERM stop.
///
/// # Errors
/// A handler cannot be installed.
pub fn register_signals(stop: &Arc<AtomicBool>, reload: &Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    for signal in [SIGUSR1, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(reload))?;
    }
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(stop))?;
    }
    Ok(())
}
