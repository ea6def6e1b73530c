//! The forwarding table in force, shared by the control thread and the workers.
//!
//! One atomic pointer swap publishes a new table; workers load it once per burst. Workers never
//! free a table: the control thread keeps the previous one until every worker has reported the
//! new generation, then drops it — deallocation never lands on the packet path.

use arc_swap::ArcSwap;
use forwarding_table::LoadedTable;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A loaded table and its generation number (1 for the table loaded at start-up).
#[derive(Debug)]
pub struct Generation {
    /// The table.
    pub table: LoadedTable,
    /// Increments on every successful reload.
    pub number: u64,
    /// SHA-256-free digest for humans: FNV-1a of the file bytes, hex.
    pub digest: String,
}

/// The table in force.
#[derive(Debug)]
pub struct TableHandle {
    current: ArcSwap<Generation>,
    /// Tables replaced but possibly still in a worker's hands.
    retired: std::sync::Mutex<Vec<Arc<Generation>>>,
}

impl TableHandle {
    /// Starts with `table` as generation 1.
    #[must_use]
    pub fn new(table: LoadedTable) -> Self {
        let digest = digest(table.bytes());
        Self {
            current: ArcSwap::from_pointee(Generation { table, number: 1, digest }),
            retired: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The table in force (cheap: once per burst).
    pub fn load(&self) -> arc_swap::Guard<Arc<Generation>> {
        self.current.load()
    }

    /// The table in force, as an owned reference (control thread, endpoints).
    #[must_use]
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Publishes `table` as the next generation; returns its number.
    pub fn publish(&self, table: LoadedTable) -> u64 {
        let number = self.current.load().number + 1;
        let digest = digest(table.bytes());
        let old = self.current.swap(Arc::new(Generation { table, number, digest }));
        self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(old);
        number
    }

    /// Drops retired tables once every worker has seen generation `oldest_seen` or later.
    pub fn retire(&self, oldest_seen: u64) {
        let mut retired = self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        retired.retain(|g| g.number >= oldest_seen);
    }

    /// How many replaced tables are still held.
    #[must_use]
    pub fn retired_count(&self) -> usize {
        self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

/// The generation a worker has switched to (published per burst).
#[derive(Debug, Default)]
pub struct SeenGeneration(AtomicU64);

impl SeenGeneration {
    /// Records `number`.
    pub fn store(&self, number: u64) {
        self.0.store(number, Ordering::Release);
    }

    /// The last recorded generation.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// FNV-1a 64 of `bytes` as hex: enough to tell tables apart in logs and `/table`.
#[must_use]
pub fn digest(bytes: &[u8]) -> String {
    let hash = bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}
