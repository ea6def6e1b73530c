//! The process: start-up (spec §1.1), the round loop (§1.7), the sync step (§1.9) and SIGHUP
//! (§1.10). One task owns all mutable state, so a SIGHUP and a finished round never interleave
//! their syncs (GLB has no lock there).

use crate::apply::{TargetState, apply};
use crate::config::{LoadError, ServiceConfig, Timing, load_table};
use crate::metrics::Metrics;
use crate::probe::Prober;
use crate::publish::{Decision, WriteError, WriteGate, render, run_reload, write_atomic};
use crate::status::{Status, TableSummary, TargetStatus};
use crate::targets::{CheckKind, Target, all_targets, backends_without_checks};
use forwarding_table::model::ForwardingTableJson;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why the process cannot start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The service config is unusable.
    #[error("service config: {0}")]
    Config(LoadError),
    /// The source table is unusable.
    #[error("source table: {0}")]
    Source(LoadError),
    /// The table has gue/fou targets but the raw ICMP socket cannot be opened.
    #[error("{0}")]
    Tunnel(String),
    /// The initial checked table cannot be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The HTTP endpoint cannot listen.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// The SIGHUP handler cannot be installed.
    #[error("cannot install the SIGHUP handler: {0}")]
    Signal(std::io::Error),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The service config file (`--config`).
    pub config: PathBuf,
    /// Where `/health` and `/metrics` are served (GLB: 127.0.0.1:19520).
    pub listen: SocketAddr,
    /// Minimum time between two writes and reloads (GLB: 10 s).
    pub hold: Duration,
}

/// Runs the health checker until the process is killed.
///
/// # Errors
/// Any start-up problem; once running, problems are logged and the previous state is kept.
pub async fn run(options: Options) -> Result<(), StartError> {
    // Installed first: SIGHUP's default action would kill the process.
    let sighup = signal(SignalKind::hangup()).map_err(StartError::Signal)?;
    let config = ServiceConfig::load(&options.config).map_err(StartError::Config)?;
    let metrics = Arc::new(Metrics::default());
    let mut service = Service::start(config, options.hold, Arc::clone(&metrics))?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| StartError::Listen { addr: options.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: options.listen, source })?;
    log::info!("Listening for HTTP on {addr}");
    tokio::spawn(crate::api::serve(listener, service.status(), metrics));
    service.run(sighup).await;
    Ok(())
}

/// The health checker's state and behaviour.
#[derive(Debug)]
pub struct Service {
    config: ServiceConfig,
    table: ForwardingTableJson,
    timing: Timing,
    targets: BTreeMap<Target, TargetState>,
    summaries: Vec<TableSummary>,
    gate: WriteGate,
    prober: Arc<Prober>,
    metrics: Arc<Metrics>,
    status: watch::Sender<Arc<Status>>,
    rounds: u64,
}

impl Service {
    /// Loads the source table, registers its targets and writes the checked table once with the
    /// source's own `healthy` values (no reload command for this write, as in GLB). Must run
    /// inside a Tokio runtime (the raw ICMP socket registers with it).
    ///
    /// # Errors
    /// Unusable source table, no raw ICMP socket for a table with tunnel targets, or the initial
    /// write failing.
    pub fn start(config: ServiceConfig, hold: Duration, metrics: Arc<Metrics>) -> Result<Self, StartError> {
        let table = load_table(&config.forwarding_table.src).map_err(StartError::Source)?;
        log::info!("Loaded forwarding table from disk filename={}", config.forwarding_table.src.display());
        warn_about(&table);
        let timing = Timing::from_table(&table);
        log_timing(&timing);
        let mut service = Self {
            config,
            table,
            timing,
            targets: BTreeMap::new(),
            summaries: Vec::new(),
            gate: WriteGate::new(hold, Instant::now()),
            prober: Arc::new(Prober::new(Arc::clone(&metrics))),
            metrics,
            status: watch::Sender::new(Arc::new(Status::default())),
            rounds: 0,
        };
        service.sync_targets();
        if service.has_tunnel_targets() {
            service.prober.open_tunnel().map_err(StartError::Tunnel)?;
        }
        service.store()?;
        service.publish_status();
        Ok(service)
    }

    /// Updates whenever the state changes; `/health` and `/metrics` read it.
    #[must_use]
    pub fn status(&self) -> watch::Receiver<Arc<Status>> {
        self.status.subscribe()
    }

    /// The table as last computed.
    #[must_use]
    pub fn table(&self) -> &ForwardingTableJson {
        &self.table
    }

    /// The timing in force.
    #[must_use]
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Rounds forever, handling SIGHUP between and during rounds.
    pub async fn run(&mut self, mut sighup: Signal) {
        loop {
            let mut round = std::pin::pin!(self.launch_round());
            let results = loop {
                tokio::select! {
                    results = &mut round => break results,
                    Some(()) = sighup.recv() => {
                        log::info!("Received signal, reloading forwarding table.");
                        let _ = self.reload_source().await;
                    }
                }
            };
            self.finish_round(results).await;
        }
    }

    /// One round: every check at once, a full interval, then results, sync and maybe a write.
    pub async fn round(&mut self) {
        let results = self.launch_round().await;
        self.finish_round(results).await;
    }

    /// Re-reads the source table (and its timing). On failure everything is kept as it was.
    ///
    /// # Errors
    /// The table could not be read or parsed (already logged).
    pub async fn reload_source(&mut self) -> Result<(), LoadError> {
        let src = self.config.forwarding_table.src.clone();
        let table = match load_table(&src) {
            Ok(table) => table,
            Err(e) => {
                log::error!(
                    "Could not reload the forwarding table; keeping the previous table and health state: {e}"
                );
                Metrics::inc(&self.metrics.source_reload_failures);
                return Err(e);
            }
        };
        log::info!("Loaded forwarding table from disk filename={}", src.display());
        warn_about(&table);
        Metrics::inc(&self.metrics.source_reloads);
        let timing = Timing::from_table(&table);
        if timing != self.timing {
            log_timing(&timing);
        }
        self.table = table;
        self.timing = timing;
        self.sync_targets();
        if self.has_tunnel_targets() {
            // Failure is logged and each tunnel check then fails with the reason.
            let _ = self.prober.open_tunnel();
        }
        self.gate.force(Instant::now());
        self.sync().await;
        Ok(())
    }

    /// All checks of this round, independent of `self` so SIGHUP can be handled meanwhile.
    fn launch_round(&self) -> impl Future<Output = Vec<(Target, Result<(), String>)>> + 'static {
        let targets: Vec<Target> = self.targets.keys().cloned().collect();
        let prober = Arc::clone(&self.prober);
        let Timing { interval, timeout, .. } = self.timing;
        async move {
            let mut checks = JoinSet::new();
            for target in targets {
                let prober = Arc::clone(&prober);
                checks.spawn(async move {
                    let result = prober.check(&target, timeout).await;
                    (target, result)
                });
            }
            let collect = async {
                let mut results = Vec::with_capacity(checks.len());
                while let Some(joined) = checks.join_next().await {
                    match joined {
                        Ok(result) => results.push(result),
                        Err(e) => log::error!("a check task failed: {e}"),
                    }
                }
                results
            };
            let (results, ()) = tokio::join!(collect, tokio::time::sleep(interval));
            results
        }
    }

    async fn finish_round(&mut self, results: Vec<(Target, Result<(), String>)>) {
        for (target, result) in results {
            // A target removed by a SIGHUP during the round is simply forgotten.
            if let Some(state) = self.targets.get_mut(&target) {
                state.record(result);
            }
        }
        self.rounds += 1;
        Metrics::inc(&self.metrics.rounds);
        self.sync().await;
    }

    /// Recomputes health; writes and reloads when something changed and the hold allows.
    async fn sync(&mut self) {
        let applied = apply(&mut self.table, &self.targets);
        for change in &applied.changes {
            log::info!("{change}");
            Metrics::inc(&self.metrics.backend_health_changes);
        }
        if !applied.changes.is_empty() {
            self.gate.mark_dirty();
        }
        for s in &applied.summaries {
            log::info!(
                "Table backend summary tableName={} healthyBackends={} unhealthyBackends={}",
                s.name.as_deref().unwrap_or(""),
                s.healthy,
                s.unhealthy
            );
        }
        self.summaries = applied.summaries;
        self.publish_status();
        let now = Instant::now();
        match self.gate.poll(now) {
            Decision::Clean => {}
            Decision::Held(until) => {
                Metrics::inc(&self.metrics.writes_held);
                log::warn!(
                    "Table is dirty, but suppressing write and reload until the hold ends remainingMs={}",
                    until.saturating_duration_since(now).as_millis()
                );
            }
            Decision::Write => {
                log::info!("Table is dirty, storing and reloading");
                if let Err(e) = self.store() {
                    log::error!("{e}; not running the reload command");
                    self.gate.write_failed();
                    return;
                }
                match &self.config.reload_command {
                    Some(command) => match run_reload(command, self.config.reload_timeout()).await {
                        Ok(()) => Metrics::inc(&self.metrics.reloads),
                        Err(_) => Metrics::inc(&self.metrics.reload_failures),
                    },
                    None => log::info!("Would have reloaded, but reload command not present in config"),
                }
            }
        }
    }

    fn store(&self) -> Result<(), WriteError> {
        let dst = &self.config.forwarding_table.dst;
        log::info!("Storing forwarding table to disk filename={}", dst.display());
        // Synchronous on purpose: a few KB and one fsync, and nothing else in this task may run
        // meanwhile anyway.
        let result = write_atomic(dst, render(&self.table).as_bytes());
        let counter =
            if result.is_ok() { &self.metrics.table_writes } else { &self.metrics.table_write_failures };
        Metrics::inc(counter);
        result
    }

    /// Keeps the state of targets still wanted, adds fresh ones, drops the rest.
    fn sync_targets(&mut self) {
        let wanted = all_targets(&self.table);
        let trigger = self.timing.trigger;
        self.targets.retain(|t, _| wanted.contains(t));
        for state in self.targets.values_mut() {
            state.dampener.set_thresholds(trigger, trigger);
        }
        for target in wanted {
            self.targets.entry(target).or_insert_with(|| TargetState::new(trigger));
        }
        log::info!("Registered {} distinct check target(s)", self.targets.len());
    }

    fn has_tunnel_targets(&self) -> bool {
        self.targets.keys().any(|t| matches!(t.kind, CheckKind::Gue | CheckKind::Fou))
    }

    fn publish_status(&self) {
        let targets = self
            .targets
            .iter()
            .map(|(target, state)| TargetStatus {
                target: target.clone(),
                healthy: state.dampener.reported(),
                last_check_passed: state.last_passed,
                last_error: state.last_error.clone(),
            })
            .collect();
        let status = Status { rounds: self.rounds, targets, tables: self.summaries.clone() };
        self.status.send_replace(Arc::new(status));
    }
}

fn warn_about(table: &ForwardingTableJson) {
    for backend in backends_without_checks(table) {
        log::warn!("{backend} has no `healthchecks`: no checks are run and it counts as healthy");
    }
}

fn log_timing(timing: &Timing) {
    log::info!(
        "Check timing intervalMs={} timeoutMs={} trigger={}",
        timing.interval.as_millis(),
        timing.timeout.as_millis(),
        timing.trigger
    );
}
