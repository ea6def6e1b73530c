//! The poll-mode worker loop (DPDK l3fwd's shape): one thread per core, owning its port, its
//! kernel-path queue, its burst buffers, its counters and its view of the table.
//!
//! ```text
//! loop until stopped:
//!   table ← handle (once per burst; a new generation is picked up here, never mid-burst)
//!   rx burst from the port → pipeline → Forward: port TX | Kernel: kernel-path TX | Drop: count
//!   rx burst from the kernel path → port TX (frames the host writes leave through the port)
//!   flush TX once the port's queue is drained (a burst came back short) or every FLUSH_BURSTS
//!   full bursts; idle back-off if set
//! ```
//!
//! The flush rule needs no clock: under load, bursts come back full and TX is handed over in
//! batches of up to [`FLUSH_BURSTS`] bursts (one `sendto` moves a whole AF_PACKET batch; AF_XDP
//! copy mode sends 32 frames per call, so the backend kicks as often as needed); at low rates
//! every frame leaves in the loop iteration that received it.

use super::stats::WorkerStats;
use super::table::{SeenGeneration, TableHandle};
use crate::io::{BURST_SIZE, Burst, Forwarded, IoError, PacketIo};
use crate::pipeline::{Counters, Pipeline, Verdict};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Most bursts forwarded between two flushes while bursts come back full.
pub const FLUSH_BURSTS: usize = 4;

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
        let mut unflushed = 0;
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
            let forwarded = self.forward_burst(&table.table, &mut burst)?;
            if forwarded.received > 0 {
                unflushed += 1;
            }
            let from_kernel = match &mut self.kernel {
                Some(kernel) => kernel.rx_burst(&mut kernel_burst)?,
                None => 0,
            };
            if from_kernel > 0 {
                self.forward_from_kernel(&mut kernel_burst)?;
                unflushed += 1;
            }
            drop(table);
            if unflushed > 0 && (forwarded.received < BURST_SIZE || unflushed >= FLUSH_BURSTS) {
                self.flush()?;
                unflushed = 0;
            }
            if forwarded.received == 0 && from_kernel == 0 {
                if let Idle::Sleep(pause) = self.idle {
                    std::thread::sleep(pause);
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        self.flush()
    }

    /// Receives a burst from the port and runs the pipeline over it where the backend received
    /// it: Forward goes back out of the port (in place where the backend can), Kernel is copied
    /// to the kernel path, Drop is only counted.
    fn forward_burst(
        &mut self,
        table: &forwarding_table::LoadedTable,
        burst: &mut Burst,
    ) -> Result<Forwarded, IoError> {
        let Self { port, kernel, pipeline, stats, .. } = self;
        let mut kernel_refused = 0;
        let forwarded = port.rx_forward(burst, &mut |frames, transmit| {
            let mut counters = Counters::default();
            let mut verdicts = [Verdict::Kernel; BURST_SIZE];
            // The whole burst at once, as the pipeline bench measures it (the table file is
            // viewed once per burst).
            pipeline.process_burst(table, frames, &mut verdicts, &mut counters);
            for ((frame, verdict), marked) in frames.iter().zip(verdicts).zip(transmit.iter_mut()) {
                match verdict {
                    Verdict::Forward => *marked = true,
                    Verdict::Kernel => {
                        let sent = match kernel {
                            Some(kernel) => kernel.tx(frame.data())?,
                            None => false,
                        };
                        kernel_refused += u64::from(!sent);
                    }
                    Verdict::Drop(_) => {}
                }
            }
            stats.add_pipeline(&counters);
            Ok(())
        })?;
        if forwarded.transmitted > 0 {
            stats.transmitted.fetch_add(forwarded.transmitted, Ordering::Relaxed);
        }
        let tx_dropped = forwarded.refused + kernel_refused;
        if tx_dropped > 0 {
            stats.tx_dropped.fetch_add(tx_dropped, Ordering::Relaxed);
        }
        Ok(forwarded)
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
