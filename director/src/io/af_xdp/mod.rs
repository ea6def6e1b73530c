//! AF_XDP: one `XDP_COPY` socket per worker queue, fed by an XDP redirect program the director
//! loads itself (raw `bpf(2)`, no clang or libbpf at build or run time; see [`prog`]).
//!
//! ```text
//!  NIC queue q ──▶ XDP program (native mode if the driver has it, else generic)
//!                    bpf_redirect_map(xsks_map, rx_queue_index, XDP_PASS)
//!                    │ socket for q in the map            │ no socket for q
//!                    ▼                                    ▼
//!  RX ring ◀── kernel copies into a UMEM frame       kernel stack (XDP_PASS)
//!     │ rx_forward: the pipeline encapsulates in the UMEM frame's headroom
//!     ├─▶ Forward: the same UMEM frame onto the TX ring (no copy) ─┐
//!     └─▶ anything else: frame straight back on the fill ring     │
//!  TX ring ◀── tx (kernel path, host frames): copy into a free TX frame
//!     │ flush: sendto(MSG_DONTWAIT) kick
//!  completion ring ──▶ RX frames back to the fill ring, TX frames to the free list
//! ```
//!
//! Each socket has its own UMEM of [`FRAMES`] × [`FRAME_SIZE`] bytes (transparent huge pages
//! when the kernel allows, fewer TLB misses for both sides): the first [`RX_FRAMES`] are RX
//! frames, which live on the fill ring, the RX ring, in the kernel, or — forwarded in place — on
//! the TX and completion rings (the fill ring holds all of them, so refilling never fails); the
//! other [`TX_FRAMES`] are TX frames for copies, on the free list, the TX ring or the completion
//! ring. The TX ring is shared by both kinds: when it is full a flush makes room, and a frame
//! that still finds no room is a TX drop. The RX side is the larger: its ring is what absorbs a
//! burst while the worker is busy or preempted (8192 frames: 8 ms at 1 Mpps), while a frame on
//! the TX ring comes back as soon as the kick that sent it returns.
//!
//! Forwarding in place is what DPDK's `net_af_xdp` does with testpmd, and what the line-rate
//! harness compares us with: a copy per frame costs a read of the whole frame (written by the
//! kernel on another core) and a write of a second frame the kernel then reads again.
//!
//! All sockets of one interface share one program and one XSKMAP ([`prog::Attachment`] behind an
//! `Arc`, made by the first [`AfXdp::open`]); the program is attached with `BPF_LINK_CREATE`,
//! so it is detached when the last socket of the interface is dropped or the process exits.
//!
//! Limits: the socket is bound in `XDP_COPY` mode (the kernel copies between the device and the
//! UMEM; veth has no zero-copy mode and drivers' zero-copy modes need per-driver testing we
//! cannot do here); a received frame is at most [`FRAME_SIZE`] − 256 bytes (the kernel's XDP
//! headroom), so no jumbo frames.
#![allow(
    unsafe_code,
    reason = "AF_XDP shares rings and UMEM with the kernel through mmap and loads BPF through a raw \
              syscall; every block states its invariant"
)]

pub mod prog;
mod ring;
mod umem;

pub use prog::XdpMode;

use super::{BURST_SIZE, Burst, BurstHandler, Forwarded, IoError, PacketIo};
use crate::pipeline::Frame;
use prog::Attachment;
use ring::{Mapping, Ring, Role};
use rustix::net::xdp::{SocketAddrXdp, SocketAddrXdpFlags, XdpMmapOffsets, XdpRingOffset, XdpStatistics};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

/// RX frames per socket: the fill and RX rings' size.
pub const RX_FRAMES: u32 = 8192;
/// TX frames per socket: the TX and completion rings' size.
pub const TX_FRAMES: u32 = 2048;
/// Frames per socket's UMEM.
pub const FRAMES: u32 = RX_FRAMES + TX_FRAMES;
/// Bytes per UMEM frame (one page).
pub const FRAME_SIZE: u32 = 4096;
/// Most `sendto` kicks per flush: copy mode sends up to 32 frames per call.
const MAX_KICKS: u32 = TX_FRAMES / 32 + 2;

/// `struct xdp_desc` (RX and TX rings).
type Desc = libc::xdp_desc;
const EMPTY_DESC: Desc = Desc { addr: 0, len: 0, options: 0 };

// mmap offsets of the rings in the socket (include/uapi/linux/if_xdp.h).
const XDP_PGOFF_RX_RING: u64 = 0;
const XDP_PGOFF_TX_RING: u64 = 0x8000_0000;
const XDP_UMEM_PGOFF_FILL_RING: u64 = 0x1_0000_0000;
const XDP_UMEM_PGOFF_COMPLETION_RING: u64 = 0x1_8000_0000;

/// One AF_XDP socket bound to one queue of an interface. Fields drop in order: the socket
/// closes before its rings and UMEM are unmapped.
#[derive(Debug)]
pub struct AfXdp {
    socket: OwnedFd,
    rx: Ring<Desc>,
    tx: Ring<Desc>,
    fill: Ring<u64>,
    completion: Ring<u64>,
    umem: umem::Umem,
    /// TX frames the process owns.
    free_tx: Vec<u64>,
    /// RX frames the fill ring had no room for yet (capacity for every RX frame, reserved at open,
    /// so parking one never allocates); pushed first on the next burst.
    unfilled: Vec<u64>,
    /// The TX ring's consumer index at the last flush.
    tx_consumed: u32,
    attachment: Arc<Attachment>,
    queue: u32,
    interface: String,
}

impl AfXdp {
    /// Opens a socket on `queue` of `interface` and makes the interface's redirect program
    /// (attached by the first socket of this process on the interface) send that queue's frames
    /// to it.
    ///
    /// # Errors
    /// No such interface or queue, no privileges (CAP_NET_RAW, CAP_BPF, CAP_NET_ADMIN), another
    /// XDP program on the interface, or any setup call failing.
    pub fn open(interface: &str, queue: u32) -> Result<Self, IoError> {
        let os = |what: &str| {
            let what = format!("af_xdp: {interface} queue {queue}: {what}");
            move |e: rustix::io::Errno| IoError::os(what, e.into())
        };
        if queue >= prog::XSKMAP_ENTRIES {
            return Err(IoError::Setup(format!(
                "af_xdp: queue {queue} of {interface}: at most {} queues are supported",
                prog::XSKMAP_ENTRIES
            )));
        }
        let socket =
            rustix::net::socket(AddressFamily::XDP, SocketType::RAW, None).map_err(os("AF_XDP socket"))?;
        // SIOCGIFINDEX through an ordinary socket (an AF_XDP socket answers no ioctl).
        let ifindex = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None)
            .and_then(|probe| rustix::net::netdevice::name_to_index(&probe, interface))
            .map_err(os("no such interface"))?;

        let umem = umem::Umem::new(FRAMES, FRAME_SIZE)
            .map_err(|e| IoError::os(format!("af_xdp: {interface}: mapping the UMEM"), e))?;
        rustix::net::sockopt::set_xdp_umem_reg(&socket, umem.registration()).map_err(os("XDP_UMEM_REG"))?;
        rustix::net::sockopt::set_xdp_umem_fill_ring_size(&socket, RX_FRAMES)
            .map_err(os("fill ring size"))?;
        rustix::net::sockopt::set_xdp_umem_completion_ring_size(&socket, TX_FRAMES)
            .map_err(os("completion ring size"))?;
        rustix::net::sockopt::set_xdp_rx_ring_size(&socket, RX_FRAMES).map_err(os("RX ring size"))?;
        rustix::net::sockopt::set_xdp_tx_ring_size(&socket, TX_FRAMES).map_err(os("TX ring size"))?;
        let offsets: XdpMmapOffsets =
            rustix::net::sockopt::xdp_mmap_offsets(&socket).map_err(os("XDP_MMAP_OFFSETS"))?;

        let map_err =
            |what: &'static str| move |e| IoError::os(format!("af_xdp: {interface}: mapping the {what}"), e);
        let rx = map_ring(&socket, &offsets.rx, XDP_PGOFF_RX_RING, RX_FRAMES, Role::Consumer)
            .map_err(map_err("RX ring"))?;
        let tx = map_ring(&socket, &offsets.tx, XDP_PGOFF_TX_RING, TX_FRAMES, Role::Producer)
            .map_err(map_err("TX ring"))?;
        let mut fill = map_ring(&socket, &offsets.fr, XDP_UMEM_PGOFF_FILL_RING, RX_FRAMES, Role::Producer)
            .map_err(map_err("fill ring"))?;
        let completion =
            map_ring(&socket, &offsets.cr, XDP_UMEM_PGOFF_COMPLETION_RING, TX_FRAMES, Role::Consumer)
                .map_err(map_err("completion ring"))?;

        for index in 0..RX_FRAMES {
            let pushed = fill.push(umem.frame(index));
            debug_assert!(pushed, "the fill ring holds every RX frame");
        }
        fill.submit();
        let free_tx = (RX_FRAMES..FRAMES).rev().map(|index| umem.frame(index)).collect();
        let tx_consumed = tx.kernel_consumer();

        let attachment = prog::shared(interface, ifindex)?;
        let flags = SocketAddrXdpFlags::XDP_COPY | SocketAddrXdpFlags::XDP_USE_NEED_WAKEUP;
        bind_when_free(&socket, &SocketAddrXdp::new(flags, ifindex, queue)).map_err(os("bind"))?;
        attachment.insert(queue, &socket).map_err(|e| {
            IoError::os(format!("af_xdp: {interface} queue {queue}: adding the socket to the XSKMAP"), e)
        })?;
        log::info!("af_xdp: {interface} queue {queue}: socket ready ({} XDP, copy mode)", attachment.mode());
        Ok(Self {
            socket,
            rx,
            tx,
            fill,
            completion,
            umem,
            free_tx,
            unfilled: Vec::with_capacity(RX_FRAMES as usize),
            tx_consumed,
            attachment,
            queue,
            interface: interface.to_owned(),
        })
    }

    /// Where the interface's redirect program runs.
    #[must_use]
    pub fn mode(&self) -> XdpMode {
        self.attachment.mode()
    }

    /// The queue this socket serves.
    #[must_use]
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether `other` uses the same program and XSKMAP (same interface, same process).
    #[must_use]
    pub fn shares_program_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.attachment, &other.attachment)
    }

    /// The kernel's counters for this socket (drops for want of fill-ring or RX-ring space,
    /// invalid descriptors).
    ///
    /// # Errors
    /// The `XDP_STATISTICS` getsockopt failed.
    pub fn statistics(&self) -> Result<XdpStatistics, IoError> {
        rustix::net::sockopt::xdp_statistics(&self.socket)
            .map_err(|e| IoError::os(format!("af_xdp: {}: XDP_STATISTICS", self.interface), e.into()))
    }

    /// Gives completed TX frames back: RX frames forwarded in place to the fill ring, TX frames
    /// to the free list.
    fn reap_completions(&mut self) {
        let (mut any, mut refilled) = (false, false);
        let rx_end = self.umem.frame(RX_FRAMES);
        while let Some(addr) = self.completion.pop() {
            let frame = self.umem.frame_start(addr);
            if frame < rx_end {
                self.recycle(frame);
                refilled = true;
            } else {
                self.free_tx.push(frame);
            }
            any = true;
        }
        if any {
            self.completion.release();
        }
        if refilled {
            self.fill.submit();
        }
    }

    /// Puts `desc` on the TX ring, flushing once if the ring is full; false when it stays full.
    fn post_tx(&mut self, desc: Desc) -> Result<bool, IoError> {
        if self.tx.push(desc) {
            return Ok(true);
        }
        self.flush()?;
        Ok(self.tx.push(desc))
    }

    /// Re-posts parked RX frames, then takes up to a burst of received descriptors, starting to
    /// load each frame's first cache line: the kernel just wrote them from another core, and the
    /// work that follows then waits for all those transfers at once instead of one after
    /// another. Returns how many were taken and whether any ring index moved.
    fn take_rx(&mut self, descs: &mut [Desc; BURST_SIZE]) -> (usize, bool) {
        let mut moved = false;
        while let Some(&frame) = self.unfilled.last() {
            if !self.fill.push(frame) {
                break;
            }
            self.unfilled.pop();
            moved = true;
        }
        let mut count = 0;
        while count < BURST_SIZE {
            let Some(desc) = self.rx.pop() else { break };
            self.umem.prefetch(desc.addr);
            // The headroom line the tunnel headers go into (last written when this frame was
            // used before, 8192 frames ago: long out of cache).
            self.umem.prefetch(desc.addr.wrapping_sub(64));
            descs[count] = desc;
            count += 1;
        }
        (count, moved || count > 0)
    }

    /// Gives an RX frame back to the kernel: on the fill ring, or parked until the kernel has
    /// consumed fill entries (never lost; the parking space was reserved at open).
    fn recycle(&mut self, frame: u64) {
        if !self.fill.push(frame) {
            self.unfilled.push(frame);
        }
    }

    /// Publishes what [`Self::take_rx`] and [`Self::recycle`] did; when nothing moved, wakes a
    /// driver that waits for a syscall to take the fill ring's frames.
    fn finish_rx(&mut self, moved: bool) -> Result<(), IoError> {
        if moved {
            self.rx.release();
            self.fill.submit();
            return Ok(());
        }
        if !self.fill.needs_wakeup() {
            return Ok(());
        }
        match rustix::net::recv(&self.socket, &mut [0u8; 0][..], RecvFlags::DONTWAIT) {
            Ok(_) => Ok(()),
            Err(e) if transient(e) => Ok(()),
            Err(e) => Err(IoError::os(
                format!("af_xdp: {} queue {}: RX wakeup", self.interface, self.queue),
                e.into(),
            )),
        }
    }

    /// Asks the kernel to send what is on the TX ring; copy mode sends in the syscall, at most
    /// 32 frames per call.
    fn kick_tx(&mut self) -> Result<(), IoError> {
        for _ in 0..MAX_KICKS {
            let before = self.tx.outstanding();
            if before == 0 || !self.tx.needs_wakeup() {
                break;
            }
            match rustix::net::send(&self.socket, &[], SendFlags::DONTWAIT) {
                Ok(_) => {}
                // Busy, out of buffers, device down: the frames stay on the ring for the next
                // flush (or until the worker counts TX drops because the ring is full).
                Err(e) if transient(e) => {}
                Err(e) => {
                    return Err(IoError::os(
                        format!("af_xdp: {} queue {}: TX kick", self.interface, self.queue),
                        e.into(),
                    ));
                }
            }
            if self.tx.outstanding() >= before {
                break; // no progress
            }
        }
        Ok(())
    }
}

/// How long `open` waits for a queue that another socket just released.
const BIND_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Binds `socket`, waiting up to [`BIND_WAIT`] while the queue is busy: the kernel frees a closed
/// socket's queue asynchronously, so a director restarted right after the previous one exited
/// (or after another AF_XDP program) would otherwise fail.
fn bind_when_free(socket: &OwnedFd, addr: &SocketAddrXdp) -> Result<(), rustix::io::Errno> {
    let deadline = std::time::Instant::now() + BIND_WAIT;
    loop {
        match rustix::net::bind(socket, addr) {
            Err(rustix::io::Errno::BUSY) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Errors of a kick or wakeup that leave the socket usable.
fn transient(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [Errno::AGAIN, Errno::BUSY, Errno::NOBUFS, Errno::NETDOWN, Errno::INTR].contains(&e)
}

/// Maps one of the socket's rings (`size` entries of `T`, as set with its setsockopt).
fn map_ring<T: Copy>(
    socket: &OwnedFd,
    offsets: &XdpRingOffset,
    pgoff: u64,
    size: u32,
    role: Role,
) -> std::io::Result<Ring<T>> {
    use rustix::mm::{MapFlags, ProtFlags, mmap};
    let bad = || std::io::Error::other("ring offsets outside the mapping");
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| bad());
    let (producer, consumer, desc) =
        (to_usize(offsets.producer)?, to_usize(offsets.consumer)?, to_usize(offsets.desc)?);
    let flags = offsets.flags.map(to_usize).transpose()?;
    let entries = size as usize;
    let len = desc.checked_add(entries * size_of::<T>()).ok_or_else(bad)?;
    let word_ok =
        |off: usize| off.is_multiple_of(align_of::<AtomicU32>()) && off + size_of::<AtomicU32>() <= desc;
    if !(word_ok(producer)
        && word_ok(consumer)
        && flags.is_none_or(word_ok)
        && desc.is_multiple_of(align_of::<T>()))
    {
        return Err(bad());
    }
    // SAFETY: a new shared mapping of the ring the socket created (its size was set with the
    // matching setsockopt, so `len` bytes exist at `pgoff`), at an address the kernel picks: it
    // aliases no Rust object.
    let ptr = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED | MapFlags::POPULATE,
            socket.as_fd(),
            pgoff,
        )
    }?;
    let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
    // SAFETY: `base` is the whole `len`-byte mapping just made; only this ring unmaps it.
    let mapping = unsafe { Mapping::from_raw(base, len) };
    // SAFETY: every offset was checked above to be aligned and inside the `len`-byte mapping
    // (indices and flags before `desc`, `entries` descriptors from `desc` to `len`).
    let (producer, consumer, flags, descs) = unsafe {
        (
            base.add(producer).cast::<AtomicU32>(),
            base.add(consumer).cast::<AtomicU32>(),
            flags.map(|f| base.add(f).cast::<AtomicU32>()),
            base.add(desc).cast::<T>(),
        )
    };
    // SAFETY: pointers into `mapping`, which the ring owns from now on, aligned and in bounds
    // (checked above); `size` is a power of two (asserted below for every ring); the kernel is the only other side and this
    // process makes one ring per role of each mapping.
    Ok(unsafe { Ring::from_raw(producer, consumer, flags, descs, size, role, Some(mapping)) })
}

const _: () =
    assert!(RX_FRAMES.is_power_of_two() && TX_FRAMES.is_power_of_two() && FRAME_SIZE.is_power_of_two());

impl PacketIo for AfXdp {
    fn rx_burst(&mut self, burst: &mut Burst) -> Result<usize, IoError> {
        burst.clear();
        let mut descs = [EMPTY_DESC; BURST_SIZE];
        let (count, moved) = self.take_rx(&mut descs);
        for desc in &descs[..count] {
            if let Some(slot) = burst.next_slot() {
                let len = (desc.len as usize).min(slot.len());
                // SAFETY: the frame came off the RX ring and goes back on the fill ring only
                // below, after the copy: the kernel does not write it meanwhile.
                if unsafe { self.umem.read(desc.addr, &mut slot[..len]) } {
                    burst.commit(desc.len as usize);
                }
            }
            self.recycle(self.umem.frame_start(desc.addr));
        }
        self.finish_rx(moved)?;
        Ok(burst.len())
    }

    /// In place: the handler rewrites each frame in its UMEM frame (the kernel leaves 256 bytes
    /// of headroom, more than any tunnel needs), and a marked frame goes on the TX ring as it
    /// is; the completion ring then returns it to the fill ring (`reap_completions`).
    fn rx_forward(
        &mut self,
        _burst: &mut Burst,
        handle: &mut BurstHandler<'_>,
    ) -> Result<Forwarded, IoError> {
        let mut descs = [EMPTY_DESC; BURST_SIZE];
        let (count, moved) = self.take_rx(&mut descs);
        let mut forwarded = Forwarded { received: count, ..Forwarded::default() };
        if count == 0 {
            self.finish_rx(moved)?;
            return Ok(forwarded);
        }
        let mut transmit = [false; BURST_SIZE];
        // Where each frame lies in its UMEM frame after the handler: (offset, length).
        let mut placed = [(0usize, 0usize); BURST_SIZE];
        let handled = {
            let umem = &self.umem;
            let mut frames: [Frame<'_>; BURST_SIZE] = std::array::from_fn(|i| {
                let desc = descs[..count].get(i)?;
                // SAFETY: the frame came off the RX ring and goes back to the kernel (fill or
                // TX ring) only below, after `frames` is dropped; the kernel hands out each
                // frame posted on the fill ring once, so the frames of one burst are distinct
                // and each of these slices is the only reference into its frame.
                let (buf, offset) = unsafe { umem.frame_mut(desc.addr) }?;
                Some(Frame::new(buf, offset, desc.len as usize))
            })
            .map(|frame| frame.unwrap_or_else(|| Frame::new(&mut [], 0, 0)));
            let handled = handle(&mut frames[..count], &mut transmit);
            for (place, frame) in placed.iter_mut().zip(&frames[..count]) {
                *place = (frame.start(), frame.len());
            }
            handled
        };
        for ((desc, (offset, len)), marked) in descs[..count].iter().zip(placed).zip(transmit) {
            let frame = self.umem.frame_start(desc.addr);
            if marked && len > 0 {
                let out =
                    Desc { addr: frame + offset as u64, len: u32::try_from(len).unwrap_or(0), options: 0 };
                if self.post_tx(out)? {
                    forwarded.transmitted += 1;
                    continue;
                }
                forwarded.refused += 1;
            }
            self.recycle(frame);
        }
        self.finish_rx(true)?;
        handled?;
        Ok(forwarded)
    }

    fn tx(&mut self, frame: &[u8]) -> Result<bool, IoError> {
        // The kernel skips an invalid descriptor without completing it, which would lose the
        // frame: post only what fits one frame (and is not empty).
        if frame.is_empty() || frame.len() > self.umem.frame_size() as usize {
            return Ok(false);
        }
        if self.free_tx.is_empty() {
            self.reap_completions();
        }
        if self.free_tx.is_empty() {
            self.flush()?;
        }
        let Some(addr) = self.free_tx.pop() else { return Ok(false) };
        // SAFETY: the frame was on the free list: neither on the TX ring nor in the kernel.
        let copied = unsafe { self.umem.write(addr, frame) };
        debug_assert!(copied, "frame length checked against the frame size");
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        if self.post_tx(Desc { addr, len, options: 0 })? {
            Ok(true)
        } else {
            self.free_tx.push(addr);
            Ok(false)
        }
    }

    fn flush(&mut self) -> Result<usize, IoError> {
        self.tx.submit();
        self.kick_tx()?;
        self.reap_completions();
        let consumed = self.tx.kernel_consumer();
        let handed = consumed.wrapping_sub(self.tx_consumed);
        self.tx_consumed = consumed;
        Ok(handed as usize)
    }
}

impl Drop for AfXdp {
    fn drop(&mut self) {
        // What the kernel dropped for this socket over its life: the one record of RX ring
        // overruns and fill-ring starvation.
        if let Ok(s) = self.statistics() {
            log::info!(
                "af_xdp: {} queue {}: kernel drops over the socket's life: rx_dropped {}, rx_ring_full {}, \
                 rx_fill_ring_empty {}, rx_invalid {}, tx_invalid {}",
                self.interface,
                self.queue,
                s.rx_dropped,
                s.rx_ring_full.unwrap_or(0),
                s.rx_fill_ring_empty_descs.unwrap_or(0),
                s.rx_invalid_descs,
                s.tx_invalid_descs
            );
        }
        // Frames of this queue go to the kernel again; closing the socket would remove it from
        // the map as well, this only makes the order explicit.
        if let Err(e) = self.attachment.remove(self.queue) {
            log::warn!(
                "af_xdp: {} queue {}: removing the socket from the XSKMAP: {e}",
                self.interface,
                self.queue
            );
        }
    }
}
