//! The control thread: reloads the table when asked (SIGUSR1 as GLB, SIGHUP, or a change in the
//! table's directory), retires replaced tables once every worker has moved on, and exports
//! counters.
//!
//! A reload reads the whole file, validates it completely (`LoadedTable::from_bytes`) and only
//! then publishes it with one atomic store. A file that fails is logged and counted, and the
//! workers keep the table they have (decisions.md §5; GLB exits instead). A file identical to
//! the table in force is not published again: one change usually arrives as several requests
//! (glb-healthcheck's reload command signals, and the directory watch sees the rename), and a
//! new generation would make every worker switch and the old table wait for retirement for
//! nothing.

use super::stats::{StatsSnapshot, WorkerStats};
use super::table::{SeenGeneration, TableHandle};
use forwarding_table::LoadedTable;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the control loop wakes (signals and file events are seen within this).
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Control-plane counters, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct ControlStats {
    /// Tables published after start-up.
    pub reloads: AtomicU64,
    /// Reload attempts whose file failed to read or validate.
    pub reload_failures: AtomicU64,
    /// Reload requests whose file was byte for byte the table in force (nothing published).
    pub reloads_unchanged: AtomicU64,
}

/// What a worker shares with the control thread.
#[derive(Debug, Clone)]
pub struct WorkerLink {
    /// Worker index.
    pub id: usize,
    /// CPU it is pinned to.
    pub core: Option<usize>,
    /// Its counters.
    pub stats: Arc<WorkerStats>,
    /// The generation it uses.
    pub seen: Arc<SeenGeneration>,
}

/// The control thread's state.
#[derive(Debug)]
pub struct Control {
    /// The table in force.
    pub tables: Arc<TableHandle>,
    /// Where the table is read from.
    pub table_path: PathBuf,
    /// Set by signals and the file watch to request a reload.
    pub reload_requested: Arc<AtomicBool>,
    /// Set to stop everything.
    pub stop: Arc<AtomicBool>,
    /// The workers.
    pub workers: Vec<WorkerLink>,
    /// Reload counters.
    pub stats: Arc<ControlStats>,
}

impl Control {
    /// Loads and publishes the table file now; a file identical to the table in force is only
    /// counted. Returns the generation in force afterwards.
    ///
    /// # Errors
    /// The file cannot be read or fails validation; the table in force stays.
    pub fn reload(&self) -> Result<u64, String> {
        let bytes = std::fs::read(&self.table_path)
            .map_err(|e| format!("cannot read {}: {e}", self.table_path.display()));
        if let Ok(bytes) = &bytes {
            let current = self.tables.current();
            if current.table.bytes() == bytes.as_slice() {
                self.stats.reloads_unchanged.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "forwarding table unchanged (digest {}), keeping generation {}",
                    current.digest,
                    current.number
                );
                return Ok(current.number);
            }
        }
        let result = bytes.and_then(|bytes| {
            LoadedTable::from_bytes(bytes)
                .map_err(|e| format!("{} is invalid: {e}", self.table_path.display()))
        });
        match result {
            Ok(table) => {
                let number = self.tables.publish(table);
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "forwarding table reloaded: generation {number}, digest {}",
                    self.tables.current().digest
                );
                Ok(number)
            }
            Err(e) => {
                self.stats.reload_failures.fetch_add(1, Ordering::Relaxed);
                log::error!(
                    "forwarding table reload failed, keeping generation {}: {e}",
                    self.tables.current().number
                );
                Err(e)
            }
        }
    }

    /// Drops replaced tables no worker can still hold.
    pub fn retire(&self) {
        let oldest = self.workers.iter().map(|w| w.seen.get()).min().unwrap_or(u64::MAX);
        self.tables.retire(oldest);
    }

    /// Sum of every worker's counters.
    #[must_use]
    pub fn totals(&self) -> StatsSnapshot {
        let mut total = StatsSnapshot::default();
        for w in &self.workers {
            total.add(&w.stats.snapshot());
        }
        total
    }

    /// Runs until `stop`: reloads on request, retires old tables, calls `tick` every
    /// `tick_every` (statsd export).
    pub fn run(&self, tick_every: Duration, mut tick: impl FnMut(&Self)) {
        let mut last_tick = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if self.reload_requested.swap(false, Ordering::AcqRel) {
                // Errors are logged and counted inside; forwarding continues either way.
                let _ = self.reload();
            }
            self.retire();
            if last_tick.elapsed() >= tick_every {
                tick(self);
                last_tick = Instant::now();
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

/// Watches the table's directory (so atomic renames over the file are seen) and requests a
/// reload when the file is created, written or renamed into place.
///
/// # Errors
/// The directory cannot be watched.
pub fn watch_table(path: &Path, reload: Arc<AtomicBool>) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(std::ffi::OsStr::to_os_string);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_))
            && event.paths.iter().any(|p| p.file_name().map(std::ffi::OsStr::to_os_string) == name);
        if relevant {
            reload.store(true, Ordering::Release);
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
