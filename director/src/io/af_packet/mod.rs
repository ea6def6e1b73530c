//! AF_PACKET backend (the default): one `TPACKET_V3` socket per worker, bound to the port, with
//! memory-mapped RX and TX rings, in a `PACKET_FANOUT_HASH` group with the other workers.
//!
//! Setup (the order matters): `socket(AF_PACKET, SOCK_RAW, 0)` (protocol 0: nothing is queued
//! before the bind) → `PACKET_VERSION = TPACKET_V3` → `PACKET_QDISC_BYPASS` → `PACKET_IGNORE_OUTGOING`
//! (without it a socket sees its own TX) → `PACKET_LOSS` (a malformed TX slot is skipped instead
//! of stopping the ring) → `PACKET_RX_RING` and `PACKET_TX_RING` → one `mmap` for both →
//! `bind(ifindex, ETH_P_ALL)` → optional `PACKET_ADD_MEMBERSHIP`/`PACKET_MR_PROMISC` → `PACKET_FANOUT`.
//!
//! - **RX**: [`RX_BLOCKS`] blocks of [`RX_BLOCK_SIZE`] bytes; the kernel retires a block after
//!   [`RX_BLOCK_TIMEOUT_MS`] even when it is not full, so that is the worst added latency at low
//!   rates. `rx_burst` copies frames out (one copy into the worker's burst buffers, which have the
//!   tunnel headroom) and returns each block once all its frames are copied. A VLAN tag the NIC
//!   stripped is put back, so the pipeline sees the frame as it was on the wire.
//! - **TX**: a `TPACKET_V3` TX ring (the kernel handles it frame by frame, as V2: fixed slots, data
//!   at offset 48) of [`TX_RING_BYTES`], slots sized for the port's MTU when the socket is opened.
//!   `tx` copies into the next free slot; `flush` kicks the kernel with one non-blocking
//!   `sendto(fd, NULL, 0)`. When the next slot is still in flight, `tx` kicks and looks again,
//!   then reports the queue full.
//! - **Fanout**: sockets that join one group id on one interface share its traffic by flow hash
//!   (each flow stays on one socket). [`fanout_group_id`] derives the id from the process id and
//!   the interface index: all workers of one director share a group, and a second director on the
//!   same host uses a different one (the kernel also refuses to merge groups of different
//!   interfaces or modes). `PACKET_FANOUT_FLAG_DEFRAG` is not used: fragments reach the pipeline
//!   as they arrived.
//!
//! # The kernel's copy
//!
//! AF_PACKET does not steal frames: the kernel's own stack also receives every frame that
//! arrives on the port. The director must be the only one that acts on them, so the port carries
//! no IP address (the host's addresses live on the kernel-path TAP, `vglb_kni0`, as with GLB's
//! KNI) and the kernel must drop its copy silently. The operator sets, on the port:
//!
//! ```text
//! sysctl -w net.ipv4.conf.PORT.forwarding=0   # never route VIP traffic itself
//! sysctl -w net.ipv4.conf.PORT.rp_filter=1    # nothing is routed via the port: drop every
//!                                             # IPv4 copy, including those for host addresses
//! sysctl -w net.ipv4.conf.PORT.arp_ignore=1   # (or `ip link set PORT arp off`) no ARP replies
//! sysctl -w net.ipv6.conf.PORT.disable_ipv6=1 # no link-local address, IPv6 copies dropped
//! ```
//!
//! `rp_filter` matters because Linux is a weak host: without it a frame for a host address that
//! arrives on the port is delivered locally (answered twice: once by the kernel's copy and once
//! through the TAP). `tests/af_packet.rs` (`kernel_copy_*`) checks the IPv4 and ARP claims, and
//! that relaxing `rp_filter` or `forwarding` makes the kernel act on its copy. Turn GRO off on the
//! port (`ethtool -K PORT gro off`) so the director sees frames, not coalesced super-packets.

#![allow(unsafe_code, reason = "AF_PACKET socket options, mmap'd rings and sendto through libc")]

mod ring;

use super::netdev;
use super::{Burst, IoError, PacketIo};
use ring::{BlockRing, FrameLayout, FrameRing, Push, RxWalker, TxWalker};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// RX ring blocks per socket. Many small blocks rather than a few large ones: at low rates the
/// kernel retires each block after [`RX_BLOCK_TIMEOUT_MS`] however little it holds, so the ring
/// buffers `RX_BLOCKS` ms of traffic at least (128 ms here) while the worker is busy or
/// preempted, and a full block is handed over sooner.
pub const RX_BLOCKS: usize = 128;
/// Bytes per RX block (holds a 64 KiB GRO packet, should one arrive).
pub const RX_BLOCK_SIZE: usize = 128 * 1024;
/// Milliseconds after which the kernel hands over a block that is not full.
pub const RX_BLOCK_TIMEOUT_MS: u32 = 1;
/// Bytes of TX ring per socket.
pub const TX_RING_BYTES: usize = 8 * 1024 * 1024;
/// Bytes per TX ring block (a multiple of any page size in use).
const TX_BLOCK_SIZE: usize = 64 * 1024;
/// The kernel's RX frame-size bookkeeping for V3 (blocks hold variable-size packets; the value
/// only has to be aligned and fit a header).
const RX_FRAME_SIZE: usize = 2048;
/// `TPACKET_V3` (libc has the enum but not a constant of the socket-option's type).
const TPACKET_V3: libc::c_int = 2;
const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_ALL: u16 = 0x0003;
/// `AF_PACKET` as `sockaddr_ll::sll_family` (libc has it as a `c_int`).
const AF_PACKET_FAMILY: libc::c_ushort = 17;
/// `PACKET_MR_PROMISC` as `packet_mreq::mr_type`.
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const _: () = assert!(libc::AF_PACKET == 17 && libc::PACKET_MR_PROMISC == 1);

/// How to open the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AfPacketOptions {
    /// `PACKET_FANOUT_HASH` group to join (`None`: receive everything on the interface).
    pub fanout_group: Option<u16>,
    /// Put the interface in promiscuous mode for as long as the socket is open (not needed when
    /// routers send to the port's own MAC).
    pub promiscuous: bool,
}

/// The fanout group id for one director process on one interface: the low 16 bits of the
/// process id, mixed with the interface index by an odd multiplier (so, for a fixed interface,
/// processes whose ids differ in the low 16 bits get different groups, and for a fixed process
/// every interface gets its own group).
#[must_use]
pub fn fanout_group_id(pid: u32, ifindex: u32) -> u16 {
    let mixed = pid ^ ifindex.wrapping_mul(0x9E37_79B9);
    (mixed & 0xFFFF) as u16
}

/// [`fanout_group_id`] for this process and `interface`.
///
/// # Errors
/// No such interface.
pub fn default_fanout_group(interface: &str) -> Result<u16, IoError> {
    Ok(fanout_group_id(std::process::id(), netdev::interface_index(interface)?))
}

/// Kernel counters of one socket since the previous call (`PACKET_STATISTICS` resets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingStats {
    /// Frames the socket received (including dropped ones).
    pub packets: u32,
    /// Frames dropped because the RX ring was full.
    pub drops: u32,
    /// Times the ring froze because no block was free.
    pub freezes: u32,
}

/// The shared mapping of both rings; unmapped on drop.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by one `AfPacket` and only touched through it (the raw pointer is
// what makes `Mapping` !Send); the kernel side is synchronised through the status words.
unsafe impl Send for Mapping {}

impl Mapping {
    /// The status word at `offset`; panics if out of bounds or misaligned.
    fn status(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len, "status word {offset} outside the ring");
        // SAFETY: in bounds (checked above), 4-byte aligned (the mapping is page aligned and the
        // offset a multiple of 4), valid for as long as `self` is (unmapped only in Drop). Status
        // words are shared with the kernel and only ever accessed atomically by this process.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    /// `len` bytes at `offset`; panics if out of bounds.
    ///
    /// # Safety
    /// The range must be owned by user space (its block or slot status says so) for the whole
    /// borrow, and no status word inside it may be used while the slice lives.
    unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.len), "range outside the ring");
        // SAFETY: in bounds (checked above), valid while `self` is; the caller guarantees that the
        // kernel does not write the range during the borrow and that we do not either.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(offset), len) }
    }

    /// `len` bytes at `offset`, writable; panics if out of bounds.
    ///
    /// # Safety
    /// As [`Self::bytes`]; `&mut self` makes the borrow exclusive on our side.
    unsafe fn bytes_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.len), "range outside the ring");
        // SAFETY: in bounds (checked above), valid while `self` is, exclusive on our side through
        // `&mut self`; the caller guarantees that the kernel does not touch the range meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(offset), len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/len are exactly what mmap returned, and no borrow of the mapping outlives
        // `self`. A failure leaves a leak, not unsoundness.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// The RX half of the mapping.
#[derive(Debug)]
struct RxRing<'a> {
    map: &'a Mapping,
}

impl BlockRing for RxRing<'_> {
    fn blocks(&self) -> usize {
        RX_BLOCKS
    }

    fn is_ours(&self, index: usize) -> bool {
        self.map.status(index * RX_BLOCK_SIZE + ring::BLOCK_STATUS).load(Ordering::Acquire)
            & libc::TP_STATUS_USER
            != 0
    }

    fn with_block<R>(&self, index: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: the walker calls this only after `is_ours` saw TP_STATUS_USER (acquire), so the
        // kernel leaves the block alone until `release`; the slice does not outlive `f`, and the
        // status word is not touched during `f`.
        let block = unsafe { self.map.bytes(index * RX_BLOCK_SIZE, RX_BLOCK_SIZE) };
        f(block)
    }

    fn release(&self, index: usize) {
        self.map
            .status(index * RX_BLOCK_SIZE + ring::BLOCK_STATUS)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

/// The TX half of the mapping.
#[derive(Debug)]
struct TxRing<'a> {
    map: &'a mut Mapping,
    base: usize,
    layout: FrameLayout,
}

impl TxRing<'_> {
    fn status(&self, index: usize) -> &AtomicU32 {
        self.map.status(self.base + self.layout.offset(index) + ring::PKT_STATUS)
    }
}

impl FrameRing for TxRing<'_> {
    fn layout(&self) -> FrameLayout {
        self.layout
    }

    fn is_free(&self, index: usize) -> bool {
        ring::tx_slot_free(self.status(index).load(Ordering::Acquire))
    }

    fn with_slot<R>(&mut self, index: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let offset = self.base + self.layout.offset(index);
        // SAFETY: the walker calls this only after `is_free` saw the slot available (acquire):
        // the kernel reads it again only after `submit`; the slice does not outlive `f`, which
        // writes everything but the status word.
        let slot = unsafe { self.map.bytes_mut(offset, self.layout.frame_size) };
        f(slot)
    }

    fn submit(&mut self, index: usize) {
        self.status(index).store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
    }
}

/// One AF_PACKET socket with its rings: a worker's share of the port.
#[derive(Debug)]
pub struct AfPacket {
    map: Mapping,
    fd: OwnedFd,
    tx_layout: FrameLayout,
    /// Largest frame the device takes (MTU + Ethernet header, + 4 when VLAN-tagged).
    max_frame: usize,
    rx: RxWalker,
    tx: TxWalker,
}

impl AfPacket {
    /// Opens a socket on `interface`, joining `fanout_group` if given (not promiscuous).
    ///
    /// # Errors
    /// No such interface, not permitted (needs `CAP_NET_RAW`), or the kernel refused a setting.
    pub fn open(interface: &str, fanout_group: Option<u16>) -> Result<Self, IoError> {
        Self::open_with(interface, AfPacketOptions { fanout_group, promiscuous: false })
    }

    /// Opens a socket on `interface` with `options`.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_with(interface: &str, options: AfPacketOptions) -> Result<Self, IoError> {
        let ifindex = netdev::interface_index(interface)?;
        let mtu = netdev::mtu(interface)?;
        let max_frame = mtu + ETH_HLEN;
        let ctx = |what: &str| format!("AF_PACKET on {interface}: {what}");

        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0)
        };
        if fd < 0 {
            return Err(IoError::os(ctx("socket"), io::Error::last_os_error()));
        }
        // SAFETY: fd was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };

        let one: libc::c_int = 1;
        setsockopt(&fd, libc::PACKET_VERSION, &TPACKET_V3).map_err(|e| IoError::os(ctx("TPACKET_V3"), e))?;
        setsockopt(&fd, libc::PACKET_QDISC_BYPASS, &one)
            .map_err(|e| IoError::os(ctx("PACKET_QDISC_BYPASS"), e))?;
        setsockopt(&fd, libc::PACKET_IGNORE_OUTGOING, &one)
            .map_err(|e| IoError::os(ctx("PACKET_IGNORE_OUTGOING"), e))?;
        setsockopt(&fd, libc::PACKET_LOSS, &one).map_err(|e| IoError::os(ctx("PACKET_LOSS"), e))?;

        let rx_req = libc::tpacket_req3 {
            tp_block_size: c_uint(RX_BLOCK_SIZE),
            tp_block_nr: c_uint(RX_BLOCKS),
            tp_frame_size: c_uint(RX_FRAME_SIZE),
            tp_frame_nr: c_uint(RX_BLOCKS * (RX_BLOCK_SIZE / RX_FRAME_SIZE)),
            tp_retire_blk_tov: RX_BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::PACKET_RX_RING, &rx_req).map_err(|e| IoError::os(ctx("PACKET_RX_RING"), e))?;
        let tx_layout = tx_layout(max_frame + VLAN_HLEN);
        let tx_req = libc::tpacket_req3 {
            tp_block_size: c_uint(tx_layout.block_size),
            tp_block_nr: c_uint(tx_layout.block_nr),
            tp_frame_size: c_uint(tx_layout.frame_size),
            tp_frame_nr: c_uint(tx_layout.frames()),
            tp_retire_blk_tov: 0,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::PACKET_TX_RING, &tx_req).map_err(|e| IoError::os(ctx("PACKET_TX_RING"), e))?;

        let len = RX_BLOCK_SIZE * RX_BLOCKS + tx_layout.len();
        // SAFETY: a fresh shared mapping of the socket's rings, at an address the kernel picks;
        // the result is checked before use and owned by `Mapping` from here on.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(IoError::os(ctx("mmap of the rings"), io::Error::last_os_error()));
        }
        let Some(base) = NonNull::new(base.cast::<u8>()) else {
            return Err(IoError::Setup(ctx("mmap returned null")));
        };
        let map = Mapping { base, len };

        let mut addr = sockaddr_ll(ifindex)?;
        addr.sll_protocol = ETH_P_ALL.to_be();
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(fd.as_raw_fd(), std::ptr::from_ref(&addr).cast(), socklen::<libc::sockaddr_ll>())
        };
        if rc < 0 {
            return Err(IoError::os(ctx("bind"), io::Error::last_os_error()));
        }
        if options.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: addr.sll_ifindex,
                mr_type: PACKET_MR_PROMISC,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(&fd, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| IoError::os(ctx("PACKET_MR_PROMISC"), e))?;
        }
        if let Some(group) = options.fanout_group {
            let arg = libc::c_int::from(group) | (libc::PACKET_FANOUT_HASH.cast_signed() << 16);
            setsockopt(&fd, libc::PACKET_FANOUT, &arg)
                .map_err(|e| IoError::os(ctx(&format!("PACKET_FANOUT group {group}")), e))?;
        }
        Ok(Self { map, fd, tx_layout, max_frame, rx: RxWalker::default(), tx: TxWalker::default() })
    }

    /// The kernel's counters since the previous call.
    ///
    /// # Errors
    /// The socket is gone.
    pub fn statistics(&self) -> Result<RingStats, IoError> {
        let mut stats = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
        let mut len = socklen::<libc::tpacket_stats_v3>();
        // SAFETY: `stats` and `len` are valid for writes and `len` is the size of `stats`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                std::ptr::from_mut(&mut stats).cast(),
                &raw mut len,
            )
        };
        if rc < 0 {
            return Err(IoError::os("PACKET_STATISTICS", io::Error::last_os_error()));
        }
        Ok(RingStats { packets: stats.tp_packets, drops: stats.tp_drops, freezes: stats.tp_freeze_q_cnt })
    }

    fn tx_ring(&mut self) -> TxRing<'_> {
        TxRing { map: &mut self.map, base: RX_BLOCK_SIZE * RX_BLOCKS, layout: self.tx_layout }
    }

    /// Asks the kernel to send every submitted slot, without waiting. Ok(false): try again later.
    fn kick(&self) -> Result<bool, IoError> {
        // SAFETY: sendto with no buffer and no address only tells the kernel to walk the TX ring.
        let rc = unsafe {
            libc::sendto(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0)
        };
        if rc >= 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        if kick_error_is_transient(&err) {
            Ok(false)
        } else {
            Err(IoError::os("AF_PACKET TX kick (sendto)", err))
        }
    }
}

/// Errors of a TX kick that leave the queued slots for the next kick (a full device queue, a
/// link that is down) rather than stopping the worker (the device is gone, the socket is bad).
fn kick_error_is_transient(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR | libc::ENETDOWN | libc::ENOMEM | libc::EMSGSIZE)
    )
}

impl Drop for AfPacket {
    fn drop(&mut self) {
        // The one record of RX ring overruns: what the kernel counted since the last read.
        if let Ok(s) = self.statistics() {
            log::info!(
                "af_packet: socket closing; kernel counters since the last read: packets {}, drops {}, ring freezes {}",
                s.packets,
                s.drops,
                s.freezes
            );
        }
    }
}

impl PacketIo for AfPacket {
    fn rx_burst(&mut self, burst: &mut Burst) -> Result<usize, IoError> {
        Ok(self.rx.fill(&RxRing { map: &self.map }, burst))
    }

    fn tx(&mut self, frame: &[u8]) -> Result<bool, IoError> {
        let tagged = frame.len() >= ETH_HLEN && matches!([frame[12], frame[13]], [0x81, 0x00] | [0x88, 0xa8]);
        if frame.len() < ETH_HLEN || frame.len() > self.max_frame + if tagged { VLAN_HLEN } else { 0 } {
            // The kernel would refuse it (and log); count it as a TX drop.
            return Ok(false);
        }
        let mut tx = std::mem::take(&mut self.tx);
        let mut pushed = tx.push(&mut self.tx_ring(), frame);
        if pushed == Push::Full {
            if self.kick()? {
                tx.pending = 0;
            }
            pushed = tx.push(&mut self.tx_ring(), frame);
        }
        self.tx = tx;
        Ok(pushed == Push::Queued)
    }

    fn flush(&mut self) -> Result<usize, IoError> {
        if self.tx.pending == 0 {
            return Ok(0);
        }
        if self.kick()? { Ok(std::mem::take(&mut self.tx.pending)) } else { Ok(0) }
    }
}

/// TX geometry for frames up to `max_frame` bytes: power-of-two slots (at least 2 KiB) in
/// [`TX_BLOCK_SIZE`] blocks, [`TX_RING_BYTES`] in all.
fn tx_layout(max_frame: usize) -> FrameLayout {
    let frame_size = (ring::TX_DATA_OFFSET + max_frame).next_power_of_two().clamp(2048, TX_BLOCK_SIZE);
    FrameLayout { block_size: TX_BLOCK_SIZE, frame_size, block_nr: TX_RING_BYTES / TX_BLOCK_SIZE }
}

fn sockaddr_ll(ifindex: u32) -> Result<libc::sockaddr_ll, IoError> {
    let ifindex = libc::c_int::try_from(ifindex)
        .map_err(|_| IoError::Setup(format!("interface index {ifindex} too large")))?;
    Ok(libc::sockaddr_ll {
        sll_family: AF_PACKET_FAMILY,
        sll_protocol: 0,
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    })
}

fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised T and the length passed is its size; the
    // kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            std::ptr::from_ref(value).cast(),
            socklen::<T>(),
        )
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// Ring sizes are small compile-time or MTU-derived numbers.
fn c_uint(value: usize) -> libc::c_uint {
    libc::c_uint::try_from(value).unwrap_or(libc::c_uint::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_ids_separate_processes_and_interfaces() {
        let ids: std::collections::HashSet<u16> =
            (1000..1000 + 65_536).map(|pid| fanout_group_id(pid, 7)).collect();
        assert_eq!(ids.len(), 65_536, "one interface: pids differing in the low 16 bits never collide");
        let ids: std::collections::HashSet<u16> =
            (1..=4096).map(|ifindex| fanout_group_id(4242, ifindex)).collect();
        assert_eq!(ids.len(), 4096, "one process: every interface its own group");
        assert_eq!(fanout_group_id(4242, 3), fanout_group_id(4242, 3));
    }

    #[test]
    fn tx_layout_fits_the_mtu() {
        for (mtu, frame_size) in [(1500, 2048), (1280, 2048), (2000, 4096), (9000, 16_384), (65_535, 65_536)]
        {
            let layout = tx_layout(mtu + ETH_HLEN + VLAN_HLEN);
            assert_eq!(layout.frame_size, frame_size, "mtu {mtu}");
            assert!(
                layout.capacity() >= (mtu + ETH_HLEN + VLAN_HLEN).min(TX_BLOCK_SIZE - ring::TX_DATA_OFFSET)
            );
            assert_eq!(layout.len(), TX_RING_BYTES);
            assert_eq!(layout.block_size % layout.frame_size, 0);
        }
    }

    #[test]
    fn kick_errors() {
        assert!(kick_error_is_transient(&io::Error::from_raw_os_error(libc::EAGAIN)));
        assert!(kick_error_is_transient(&io::Error::from_raw_os_error(libc::ENETDOWN)));
        assert!(!kick_error_is_transient(&io::Error::from_raw_os_error(libc::ENXIO)));
        assert!(!kick_error_is_transient(&io::Error::from_raw_os_error(libc::EBADF)));
    }
}
