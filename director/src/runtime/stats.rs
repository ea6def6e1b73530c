//! Per-worker counters, written by their worker once per burst and read by the control thread.

use crate::pipeline::{Counters, DropReason};
use std::sync::atomic::{AtomicU64, Ordering};

/// One worker's counters. Each field has a single writer (its worker); relaxed atomics suffice
/// because readers only need eventually-consistent totals. Padded so workers on different cores
/// never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerStats {
    /// Frames received.
    pub received: AtomicU64,
    /// Frames that matched a bind.
    pub matched: AtomicU64,
    /// Frames encapsulated.
    pub encapsulated: AtomicU64,
    /// Frames sent to the kernel path.
    pub to_kernel: AtomicU64,
    /// Frames handed to the port's TX.
    pub transmitted: AtomicU64,
    /// Frames the port's or kernel path's TX refused.
    pub tx_dropped: AtomicU64,
    /// Frames from the kernel path sent out of the port.
    pub from_kernel: AtomicU64,
    /// Matched frames dropped, by [`DropReason::index`].
    pub dropped: [AtomicU64; DropReason::ALL.len()],
    /// Table switches this worker made.
    pub reloads: AtomicU64,
    /// Generation of the table this worker uses.
    pub generation: AtomicU64,
}

/// A plain copy of [`WorkerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`WorkerStats::received`].
    pub received: u64,
    /// See [`WorkerStats::matched`].
    pub matched: u64,
    /// See [`WorkerStats::encapsulated`].
    pub encapsulated: u64,
    /// See [`WorkerStats::to_kernel`].
    pub to_kernel: u64,
    /// See [`WorkerStats::transmitted`].
    pub transmitted: u64,
    /// See [`WorkerStats::tx_dropped`].
    pub tx_dropped: u64,
    /// See [`WorkerStats::from_kernel`].
    pub from_kernel: u64,
    /// See [`WorkerStats::dropped`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// See [`WorkerStats::reloads`].
    pub reloads: u64,
    /// See [`WorkerStats::generation`].
    pub generation: u64,
}

impl WorkerStats {
    /// Adds a burst's pipeline counters.
    pub fn add_pipeline(&self, c: &Counters) {
        let add = |a: &AtomicU64, n: u64| {
            if n != 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.received, c.received);
        add(&self.matched, c.matched);
        add(&self.encapsulated, c.forwarded);
        add(&self.to_kernel, c.kernel);
        for (a, n) in self.dropped.iter().zip(c.dropped) {
            add(a, n);
        }
    }

    /// Reads every counter.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            received: get(&self.received),
            matched: get(&self.matched),
            encapsulated: get(&self.encapsulated),
            to_kernel: get(&self.to_kernel),
            transmitted: get(&self.transmitted),
            tx_dropped: get(&self.tx_dropped),
            from_kernel: get(&self.from_kernel),
            dropped: std::array::from_fn(|i| get(&self.dropped[i])),
            reloads: get(&self.reloads),
            generation: get(&self.generation),
        }
    }
}

impl StatsSnapshot {
    /// Sums workers.
    pub fn add(&mut self, o: &StatsSnapshot) {
        self.received += o.received;
        self.matched += o.matched;
        self.encapsulated += o.encapsulated;
        self.to_kernel += o.to_kernel;
        self.transmitted += o.transmitted;
        self.tx_dropped += o.tx_dropped;
        self.from_kernel += o.from_kernel;
        for (a, b) in self.dropped.iter_mut().zip(o.dropped) {
            *a += b;
        }
        self.reloads += o.reloads;
        self.generation = self.generation.max(o.generation);
    }
}
