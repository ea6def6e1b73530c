//! The poll-mode worker loop (DPDK l3fwd's shape): one thread per core, owning its port, its
//! kernel-path queue, its burst buffers, its counters and its view of the table.
//!
//! ```text
//! loop until stopped:
//!   table ← handle (once per burst; a new generation is picked up here, never mid-burst)
//!   rx burst from the port → pipeline → Forward: port TX | Kernel: kernel-path TX | Drop: count
//!   rx burst from the kernel path → port TX (frames the host writes leave through the port)
//!   flush TX when TX_DRAIN_INTERVAL has passed since the last flush; idle back-off if set
//! ```

use super::stats::WorkerStats;
use super::table::{SeenGeneration, TableHandle};
use crate::io::{Burst, IoError, PacketIo};
use crate::pipeline::{Counters, Pipeline, Verdict};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest a transmitted frame waits in a TX queue.
pub const TX_DRAIN_INTERVAL: Duration = Duration::from_micros(100);

/// How a worker waits when its queues are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Spin (lowest latency; the core is 100 % busy, as with DPDK).
    BusyPoll,
    /// Sleep this long after an empty poll, for shared hosts.
    Sleep(Duration),
}

/// Everything one worker owns.
#[derive(Debug)]
pub struct Worker<P, K> {
    /// Index (for logs and metrics).
    pub id: usize,
    /// The port it receives from and transmits to.
    pub port: P,
    /// Its kernel-path queue, if kernel passthrough is on (otherwise unmatched frames are dropped
    /// and counted as kernel-path TX drops).
    pub kernel: Option<K>,
    /// The per-packet path.
    pub pipeline: Pipeline,
    /// The table in force.
    pub tables: Arc<TableHandle>,
    /// Its counters.
    pub stats: Arc<WorkerStats>,
    /// The generation it uses, for the control thread's retire step.
    pub seen: Arc<SeenGeneration>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Waiting policy.
    pub idle: Idle,
}

impl<P: PacketIo, K: PacketIo> Worker<P, K> {
    /// Runs until `stop` is set; flushes pending TX before returning.
    ///
    /// # Errors
    /// A device error that makes further I/O impossible.
    pub fn run(mut self) -> Result<(), IoError> {
        let mut burst = Burst::new();
        let mut kernel_burst = Burst::new();
        let mut last_flush = Instant::now();
        let mut generation = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let table = self.tables.load();
            if table.number != generation {
                if generation != 0 {
                    self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                }
                generation = table.number;
                self.stats.generation.store(generation, Ordering::Relaxed);
                self.seen.store(generation);
            }
            let received = self.port.rx_burst(&mut burst)?;
            if received > 0 {
                self.forward_burst(&table.table, &mut burst)?;
            }
            let from_kernel = match &mut self.kernel {
                Some(kernel) => kernel.rx_burst(&mut kernel_burst)?,
                None => 0,
            };
            if from_kernel > 0 {
                self.forward_from_kernel(&mut kernel_burst)?;
            }
            drop(table);
            if last_flush.elapsed() >= TX_DRAIN_INTERVAL {
                self.flush()?;
                last_flush = Instant::now();
            }
            if received == 0 && from_kernel == 0 {
                if let Idle::Sleep(pause) = self.idle {
                    std::thread::sleep(pause);
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        self.flush()
    }

    fn forward_burst(
        &mut self,
        table: &forwarding_table::LoadedTable,
        burst: &mut Burst,
    ) -> Result<(), IoError> {
        let mut counters = Counters::default();
        let (mut transmitted, mut tx_dropped) = (0, 0);
        for mut frame in burst.frames() {
            let (verdict, _) = self.pipeline.process(table, &mut frame);
            counters.record(verdict);
            let sent = match verdict {
                Verdict::Forward => {
                    let sent = self.port.tx(frame.data())?;
                    transmitted += u64::from(sent);
                    sent
                }
                Verdict::Kernel => match &mut self.kernel {
                    Some(kernel) => kernel.tx(frame.data())?,
                    None => false,
                },
                Verdict::Drop(_) => true,
            };
            tx_dropped += u64::from(!sent);
        }
        self.stats.add_pipeline(&counters);
        self.stats.transmitted.fetch_add(transmitted, Ordering::Relaxed);
        if tx_dropped > 0 {
            self.stats.tx_dropped.fetch_add(tx_dropped, Ordering::Relaxed);
        }
        Ok(())
    }

    fn forward_from_kernel(&mut self, burst: &mut Burst) -> Result<(), IoError> {
        let (mut sent, mut refused) = (0, 0);
        for frame in burst.frames() {
            if self.port.tx(frame.data())? {
                sent += 1;
            } else {
                refused += 1;
            }
        }
        self.stats.from_kernel.fetch_add(sent, Ordering::Relaxed);
        if refused > 0 {
            self.stats.tx_dropped.fetch_add(refused, Ordering::Relaxed);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.port.flush()?;
        if let Some(kernel) = &mut self.kernel {
            kernel.flush()?;
        }
        Ok(())
    }
}
