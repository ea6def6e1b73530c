//! An in-memory backend: frames are pushed into an RX queue and collected from a TX list. Used
//! by tests and benchmarks to run the real worker loop without a device.

use super::{Burst, IoError, PacketIo};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Both ends of an in-memory port. Clone it to feed and inspect a port a worker owns.
#[derive(Debug, Clone, Default)]
pub struct MemoryPort {
    shared: Arc<Mutex<Queues>>,
}

#[derive(Debug, Default)]
struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
    pending: usize,
}

impl MemoryPort {
    /// An empty port.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `frame` arrive on the port.
    pub fn inject(&self, frame: &[u8]) {
        self.queues().rx.push_back(frame.to_vec());
    }

    /// Frames not yet received.
    #[must_use]
    pub fn rx_pending(&self) -> usize {
        self.queues().rx.len()
    }

    /// Takes every frame flushed so far.
    #[must_use]
    pub fn take_transmitted(&self) -> Vec<Vec<u8>> {
        let mut q = self.queues();
        let flushed = q.tx.len() - q.pending;
        q.tx.drain(..flushed).collect()
    }
}

impl PacketIo for MemoryPort {
    fn rx_burst(&mut self, burst: &mut Burst) -> Result<usize, IoError> {
        burst.clear();
        let mut q = self.queues();
        while !burst.is_full() {
            let Some(frame) = q.rx.pop_front() else { break };
            burst.push(&frame);
        }
        Ok(burst.len())
    }

    fn tx(&mut self, frame: &[u8]) -> Result<bool, IoError> {
        let mut q = self.queues();
        q.tx.push(frame.to_vec());
        q.pending += 1;
        Ok(true)
    }

    fn flush(&mut self) -> Result<usize, IoError> {
        let mut q = self.queues();
        Ok(std::mem::take(&mut q.pending))
    }
}
