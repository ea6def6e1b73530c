//! Batch packet I/O: the one interface every backend implements and the worker loop drives.
//!
//! A worker owns one [`PacketIo`] per port (and the kernel-path device). The port's frames go
//! through [`PacketIo::rx_forward`]: the backend receives a burst, lends the frames to the
//! worker's handler (the pipeline, which encapsulates in place in the headroom before each
//! frame) and transmits the ones the handler marks. By default a backend receives into the
//! worker's [`Burst`] (up to [`BURST_SIZE`] buffers, each frame [`HEADROOM`] bytes in) and
//! transmits copies; a backend whose receive buffers can be sent as they are (AF_XDP: the UMEM
//! frame goes from the RX ring to the TX ring) lends those instead and copies nothing.
//! [`PacketIo::tx`] queues a copy of any other frame (kernel path, frames the host sends);
//! [`PacketIo::flush`] pushes queued frames to the wire (the worker calls it once its receive
//! queue is drained or after a few full bursts, `runtime::worker`).
//!
//! Backends: [`memory`] (tests, benches), AF_PACKET, AF_XDP and DPDK (cargo feature `dpdk`) —
//! the I/O backends are the only modules of this crate allowed `unsafe`, each block with a
//! `// SAFETY:` comment.

pub mod af_packet;
pub mod af_xdp;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod memory;
pub mod netdev;
pub mod tap;

use crate::pipeline::{Frame, MAX_HEADROOM};
use thiserror::Error;

/// Frames per receive burst.
pub const BURST_SIZE: usize = 32;
/// Bytes reserved before each received frame for the tunnel headers.
pub const HEADROOM: usize = 64;
/// Largest frame a burst buffer holds (jumbo frames included).
pub const MAX_FRAME: usize = 9216;
/// Size of one burst buffer.
pub const BUFFER_SIZE: usize = HEADROOM + MAX_FRAME;

const _: () = assert!(HEADROOM >= MAX_HEADROOM, "headroom must fit the largest tunnel");

/// Why a backend failed. Per-packet problems are counted, not returned: only conditions that
/// stop a worker are errors.
#[derive(Debug, Error)]
pub enum IoError {
    /// An OS call failed.
    #[error("{what}")]
    Os {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The backend cannot be set up as configured.
    #[error("{0}")]
    Setup(String),
}

impl IoError {
    /// Wraps the last OS error with context.
    pub fn os(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Os { what: what.into(), source }
    }
}

impl From<glb_sys::SysError> for IoError {
    fn from(e: glb_sys::SysError) -> Self {
        match e {
            glb_sys::SysError::Os { what, source } => Self::Os { what, source },
            glb_sys::SysError::Invalid(text) => Self::Setup(text),
        }
    }
}

/// A burst of receive buffers owned by one worker, allocated once.
#[derive(Debug)]
pub struct Burst {
    buffers: Vec<Box<[u8; BUFFER_SIZE]>>,
    lens: [usize; BURST_SIZE],
    count: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// [`BURST_SIZE`] zeroed buffers.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buffers: (0..BURST_SIZE).map(|_| Box::new([0u8; BUFFER_SIZE])).collect(),
            lens: [0; BURST_SIZE],
            count: 0,
        }
    }

    /// Forgets the frames of the previous burst.
    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// Number of frames received.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no frame was received.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether another frame fits.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.count == BURST_SIZE
    }

    /// The space for the next frame (`MAX_FRAME` bytes after the headroom); call
    /// [`Self::commit`] with the length written. `None` when the burst is full.
    pub fn next_slot(&mut self) -> Option<&mut [u8]> {
        let buffer = self.buffers.get_mut(self.count)?;
        Some(&mut buffer[HEADROOM..])
    }

    /// Records that `len` bytes were written into the slot from [`Self::next_slot`] (frames longer
    /// than [`MAX_FRAME`] are cut; the pipeline then drops them as truncated).
    pub fn commit(&mut self, len: usize) {
        if self.count < BURST_SIZE {
            self.lens[self.count] = len.min(MAX_FRAME);
            self.count += 1;
        }
    }

    /// Copies `frame` into the next slot; false when the burst is full.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        let Some(slot) = self.next_slot() else { return false };
        let len = frame.len().min(slot.len());
        slot[..len].copy_from_slice(&frame[..len]);
        self.commit(len);
        true
    }

    /// Every slot as a pipeline frame (the first [`Self::len`] hold the received frames), for
    /// `Pipeline::process_burst`.
    pub fn frame_array(&mut self) -> [Frame<'_>; BURST_SIZE] {
        let lens = self.lens;
        let mut slots = self.buffers.iter_mut().zip(lens);
        std::array::from_fn(|_| match slots.next() {
            Some((buffer, len)) => Frame::new(&mut buffer[..], HEADROOM, len),
            None => Frame::new(&mut [], 0, 0),
        })
    }

    /// The received frames as pipeline frames, in order.
    pub fn frames(&mut self) -> impl Iterator<Item = Frame<'_>> {
        let lens = self.lens;
        self.buffers[..self.count].iter_mut().zip(lens).map(|(b, len)| Frame::new(&mut b[..], HEADROOM, len))
    }
}

/// What [`PacketIo::rx_forward`] did with one burst.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    /// Frames received (and lent to the handler).
    pub received: usize,
    /// Frames the handler marked that were queued for transmission.
    pub transmitted: u64,
    /// Frames the handler marked that the full TX queue refused (TX drops).
    pub refused: u64,
}

/// The worker's part of [`PacketIo::rx_forward`]: gets the received frames (rewritable in
/// place, headroom before each) and sets `transmit[i]` for each frame `i` to send back out of
/// the same port. Frames it does not mark are released when it returns, so it copies out any it
/// sends elsewhere.
pub type BurstHandler<'h> = dyn FnMut(&mut [Frame<'_>], &mut [bool; BURST_SIZE]) -> Result<(), IoError> + 'h;

/// One port (or the kernel-path device) as a worker sees it.
pub trait PacketIo: Send {
    /// Receives up to a burst of frames into `burst` (after clearing it); returns how many.
    /// Never blocks: returns 0 when nothing is waiting.
    ///
    /// # Errors
    /// The device failed in a way that stops the worker.
    fn rx_burst(&mut self, burst: &mut Burst) -> Result<usize, IoError>;

    /// Queues a copy of `frame` for transmission. Returns false when the TX queue is full even
    /// after a flush (the caller counts the frame as a TX drop).
    ///
    /// # Errors
    /// The device failed in a way that stops the worker.
    fn tx(&mut self, frame: &[u8]) -> Result<bool, IoError>;

    /// Pushes queued frames to the wire; returns how many were handed to the device.
    ///
    /// # Errors
    /// The device failed in a way that stops the worker.
    fn flush(&mut self) -> Result<usize, IoError>;

    /// Receives up to a burst, lets `handle` process it in place and queues the frames it marks
    /// for transmission on this port; never blocks. The default receives into `burst` with
    /// [`Self::rx_burst`] and queues copies with [`Self::tx`]; backends that can transmit a
    /// receive buffer itself override it.
    ///
    /// # Errors
    /// The device failed in a way that stops the worker, or `handle` failed.
    fn rx_forward(&mut self, burst: &mut Burst, handle: &mut BurstHandler<'_>) -> Result<Forwarded, IoError> {
        let received = self.rx_burst(burst)?;
        let mut forwarded = Forwarded { received, ..Forwarded::default() };
        if received == 0 {
            return Ok(forwarded);
        }
        let mut transmit = [false; BURST_SIZE];
        let mut frames = burst.frame_array();
        handle(&mut frames[..received], &mut transmit)?;
        for (frame, _) in frames[..received].iter().zip(transmit).filter(|&(_, marked)| marked) {
            if self.tx(frame.data())? {
                forwarded.transmitted += 1;
            } else {
                forwarded.refused += 1;
            }
        }
        Ok(forwarded)
    }
}

impl<T: PacketIo + ?Sized> PacketIo for Box<T> {
    fn rx_burst(&mut self, burst: &mut Burst) -> Result<usize, IoError> {
        (**self).rx_burst(burst)
    }

    fn tx(&mut self, frame: &[u8]) -> Result<bool, IoError> {
        (**self).tx(frame)
    }

    fn flush(&mut self) -> Result<usize, IoError> {
        (**self).flush()
    }

    fn rx_forward(&mut self, burst: &mut Burst, handle: &mut BurstHandler<'_>) -> Result<Forwarded, IoError> {
        (**self).rx_forward(burst, handle)
    }
}
