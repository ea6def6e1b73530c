//! DPDK backend (cargo feature `dpdk`): Debian's `libdpdk-dev` 22.11 through a small C shim
//! (`shim.c`, compiled by `build.rs` with the `cc` and `pkg-config` crates; no bindgen).
//!
//! ```text
//! Dpdk::init(eal_args)            rte_eal_init, once per process        → DpdkEal
//! DpdkEal::port(port_id, queues)  configure, RSS, one mempool per queue → Vec<DpdkQueue>
//! DpdkQueue: PacketIo             rx_forward: the pipeline rewrites each received mbuf in place
//!                                 (128 bytes of headroom) and forwarded mbufs are queued as they
//!                                 are; tx copies any other frame into a fresh mbuf; flush hands
//!                                 queued mbufs to rte_eth_tx_burst
//! ```
//!
//! In place is how DPDK applications forward (and, with `net_af_xdp`, lets the driver put the
//! mbuf's UMEM frame straight on the AF_XDP TX ring). An mbuf that cannot be rewritten in place
//! (chained, indirect or shared, or with less headroom than a tunnel needs) is copied into the
//! worker's burst buffer instead and its copy transmitted.
//!
//! The EAL arguments are passed through unchanged (`io.dpdk_eal_args`, without a program name),
//! e.g. `["-l", "0", "--no-huge", "-m", "512", "--no-pci", "--vdev=net_af_packet0,iface=eth1"]`.
//! `rte_eal_init` pins the calling thread to the first lcore; the workers are our own threads,
//! so one lcore (`-l N`) is enough. Each queue is driven by one thread at a time, which DPDK
//! allows without locks (per-queue RX/TX, multi-producer/consumer mempools). The first queue a
//! thread polls registers that thread with the EAL (`rte_thread_register`: an lcore id, hence
//! mempool caches, which the per-frame mbuf allocation and free benefit from); the thread gives
//! it back when it exits.
//!
//! Frames the device does not take on a flush stay queued (in order) and go on the next flush;
//! when [`TX_QUEUE`] frames are waiting even after a flush, [`PacketIo::tx`] refuses the frame so
//! the worker counts a TX drop. Dropping a queue frees what it still holds; dropping the last
//! queue of a port stops and closes the port and frees its mempools; dropping the last handle
//! cleans up the EAL.
#![allow(unsafe_code, reason = "FFI to DPDK through shim.c; every unsafe block states its invariant")]

use super::{BURST_SIZE, Burst, BurstHandler, Forwarded, HEADROOM, IoError, PacketIo};
use crate::pipeline::Frame;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::{CStr, CString, c_char, c_int};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The shim's functions (`shim.c`). DPDK objects are opaque; errors are negative errno values.
mod ffi {
    use std::ffi::{c_char, c_int, c_uint};
    use std::marker::{PhantomData, PhantomPinned};

    /// `struct rte_mbuf`, only ever behind a pointer.
    #[repr(C)]
    pub struct RteMbuf {
        _opaque: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// `struct rte_mempool`, only ever behind a pointer.
    #[repr(C)]
    pub struct RteMempool {
        _opaque: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// `struct glbd_stats` in shim.c (same field order).
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Stats {
        pub ipackets: u64,
        pub opackets: u64,
        pub ibytes: u64,
        pub obytes: u64,
        pub imissed: u64,
        pub ierrors: u64,
        pub oerrors: u64,
        pub rx_nombuf: u64,
    }

    // SAFETY: the signatures match shim.c, which is compiled into this crate by build.rs.
    unsafe extern "C" {
        pub fn glbd_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
        pub fn glbd_eal_cleanup() -> c_int;
        /// `rte_strerror`: a static string for any value.
        pub safe fn glbd_strerror(errnum: c_int) -> *const c_char;
        pub fn glbd_thread_register() -> c_int;
        pub fn glbd_thread_unregister();
        pub fn glbd_port_count() -> u16;
        pub fn glbd_port_by_name(name: *const c_char, port_id: *mut u16) -> c_int;
        pub fn glbd_port_mac(port_id: u16, mac: *mut u8) -> c_int;
        pub fn glbd_port_setup(
            port_id: u16,
            queues: u16,
            rx_desc: u16,
            tx_desc: u16,
            mbufs: c_uint,
            data_room: u16,
            mtu: u16,
            pools: *mut *mut RteMempool,
        ) -> c_int;
        pub fn glbd_port_close(port_id: u16);
        pub fn glbd_pool_free(pool: *mut RteMempool);
        pub fn glbd_port_stats(port_id: u16, out: *mut Stats) -> c_int;
        pub fn glbd_rx_burst(port_id: u16, queue: u16, pkts: *mut *mut RteMbuf, n: u16) -> u16;
        pub fn glbd_mbuf_copy(m: *const RteMbuf, dst: *mut u8, cap: u32) -> u32;
        pub fn glbd_mbuf_buffer(
            m: *mut RteMbuf,
            buf: *mut *mut u8,
            size: *mut u16,
            off: *mut u16,
            len: *mut u16,
        ) -> c_int;
        pub fn glbd_mbuf_place(m: *mut RteMbuf, off: u16, len: u16);
        pub fn glbd_mbuf_free_bulk(pkts: *mut *mut RteMbuf, n: c_uint);
        pub fn glbd_mbuf_from(pool: *mut RteMempool, data: *const u8, len: u32) -> *mut RteMbuf;
        pub fn glbd_tx_burst(port_id: u16, queue: u16, pkts: *mut *mut RteMbuf, n: u16) -> u16;
    }
}

/// Frames a queue holds for transmission before [`PacketIo::tx`] refuses more.
pub const TX_QUEUE: usize = 4 * BURST_SIZE;

#[expect(clippy::cast_possible_truncation, reason = "BURST_SIZE is 32 (checked below)")]
const RX_BURST: u16 = BURST_SIZE as u16;
const _: () = assert!(BURST_SIZE <= TX_QUEUE && TX_QUEUE <= u16::MAX as usize);

/// Set by the first [`Dpdk::init`]: DPDK's EAL can be initialised once per process.
static EAL_STARTED: AtomicBool = AtomicBool::new(false);

fn dpdk_error(what: &str, ret: c_int) -> IoError {
    let errnum = ret.saturating_abs();
    let text = ffi::glbd_strerror(errnum);
    let text = if text.is_null() {
        format!("error {errnum}")
    } else {
        // SAFETY: rte_strerror returns a pointer to a NUL-terminated string that is static or
        // thread-local and stays valid until the next call on this thread; it is copied at once.
        unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
    };
    IoError::Setup(format!("{what}: {text}"))
}

/// The calling thread's standing with the EAL.
enum Lcore {
    /// Not checked yet.
    Unknown,
    /// Already an lcore (an EAL thread), or registration failed (it works without, slower).
    Unregistered,
    /// Registered by us; unregistered when the thread exits. Holds the EAL until then.
    Registered(#[expect(dead_code, reason = "kept alive, not read")] Arc<EalInner>),
}

impl Drop for Lcore {
    fn drop(&mut self) {
        if matches!(self, Self::Registered(_)) {
            // SAFETY: this thread registered itself (below) and the EAL is still up: the Arc
            // dropped after this keeps it from being cleaned up.
            unsafe { ffi::glbd_thread_unregister() };
        }
    }
}

thread_local! {
    static LCORE: RefCell<Lcore> = const { RefCell::new(Lcore::Unknown) };
}

/// Registers the calling thread with the EAL the first time it drives a queue.
fn register_thread(eal: &Arc<EalInner>) {
    LCORE.with(|lcore| {
        let mut lcore = lcore.borrow_mut();
        if !matches!(*lcore, Lcore::Unknown) {
            return;
        }
        // SAFETY: the EAL is initialised (`eal` exists) and the thread is not registered yet.
        let ret = unsafe { ffi::glbd_thread_register() };
        *lcore = match ret {
            1 => Lcore::Registered(Arc::clone(eal)),
            0 => Lcore::Unregistered,
            err => {
                log::warn!("{} (mempool caches off on this thread)", dpdk_error("rte_thread_register", err));
                Lcore::Unregistered
            }
        };
    });
}

/// Entry point of the DPDK backend.
#[derive(Debug)]
pub enum Dpdk {}

impl Dpdk {
    /// Initialises DPDK's EAL with `eal_args` (passed through as they are; the program name is
    /// added). Once per process: a second call fails, even after the first handle was dropped.
    /// The calling thread is pinned to the EAL's main lcore.
    ///
    /// # Errors
    /// A second call, an argument with a NUL byte, an argument the EAL rejects or does not use,
    /// or an EAL start-up failure (memory, devices).
    pub fn init<S: AsRef<str>>(eal_args: &[S]) -> Result<DpdkEal, IoError> {
        let args: Vec<String> = eal_args.iter().map(|a| a.as_ref().to_owned()).collect();
        let owned = std::iter::once("glb-director")
            .chain(args.iter().map(String::as_str))
            .map(|arg| {
                CString::new(arg)
                    .map_err(|_| IoError::Setup(format!("EAL argument {arg:?} contains a NUL byte")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let argc =
            c_int::try_from(owned.len()).map_err(|_| IoError::Setup("too many EAL arguments".into()))?;
        if EAL_STARTED.swap(true, Ordering::SeqCst) {
            return Err(IoError::Setup("DPDK's EAL can be initialised only once per process".into()));
        }
        let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
        argv.push(std::ptr::null_mut());
        // The EAL may keep pointers into argv (it permutes it and parses lazily): leak it. This
        // happens once per process.
        let argv: &'static mut [*mut c_char] = argv.leak();
        // SAFETY: argv holds argc pointers to NUL-terminated strings followed by a null pointer,
        // all leaked so they outlive the EAL; EAL_STARTED guarantees this is the only call.
        let parsed = unsafe { ffi::glbd_eal_init(argc, argv.as_mut_ptr()) };
        if parsed < 0 {
            return Err(dpdk_error(&format!("rte_eal_init({})", args.join(" ")), parsed));
        }
        let eal = DpdkEal { inner: Arc::new(EalInner { args, ports: Mutex::default() }) };
        // rte_eal_init moved the arguments it did not use after the ones it parsed.
        let unused: Vec<String> = argv[1 + usize::try_from(parsed).unwrap_or(0)..]
            .iter()
            .take_while(|p| !p.is_null())
            .map(|&p| {
                // SAFETY: the entries are our leaked CStrings, in whatever order the EAL left them.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            })
            .collect();
        if !unused.is_empty() {
            return Err(IoError::Setup(format!("not EAL arguments: {}", unused.join(" "))));
        }
        log::info!("DPDK EAL started: {}", eal.inner.args.join(" "));
        Ok(eal)
    }
}

/// A handle on the initialised EAL; clone it freely. The EAL is cleaned up when the last handle
/// and the last queue are gone.
#[derive(Debug, Clone)]
pub struct DpdkEal {
    inner: Arc<EalInner>,
}

#[derive(Debug)]
struct EalInner {
    args: Vec<String>,
    /// Ports currently set up (a port is configured once at a time).
    ports: Mutex<BTreeSet<u16>>,
}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised (an EalInner exists only after rte_eal_init succeeded)
        // and every port was closed: each PortInner holds an Arc to this EalInner.
        let ret = unsafe { ffi::glbd_eal_cleanup() };
        if ret != 0 {
            log::warn!("{}", dpdk_error("rte_eal_cleanup", ret));
        }
    }
}

/// How a port is set up; [`Default`] suits 1500-byte frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    /// RX descriptors per queue (the driver may adjust).
    pub rx_desc: u16,
    /// TX descriptors per queue (the driver may adjust).
    pub tx_desc: u16,
    /// Mbufs in each queue's pool: enough for the RX ring, the TX ring, [`TX_QUEUE`] and a burst.
    pub mbufs: u32,
    /// Bytes of each mbuf including DPDK's 128-byte headroom: frames up to `data_room - 128`
    /// bytes are transmitted (longer ones are refused); received ones may span several mbufs.
    pub data_room: u16,
    /// MTU to configure; 0 keeps the device's default.
    pub mtu: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        // RTE_MBUF_DEFAULT_BUF_SIZE: 2048 bytes of data after 128 of headroom.
        Self { rx_desc: 1024, tx_desc: 1024, mbufs: 4095, data_room: 2048 + 128, mtu: 0 }
    }
}

/// DPDK's `RTE_PKTMBUF_HEADROOM` in Debian's build.
const MBUF_HEADROOM: usize = 128;

/// A port's counters (`rte_eth_stats_get`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Frames the device dropped because the RX queues were full.
    pub rx_missed: u64,
    /// Erroneous frames received.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

impl DpdkEal {
    /// The EAL arguments it was started with.
    #[must_use]
    pub fn args(&self) -> &[String] {
        &self.inner.args
    }

    /// Number of ports the EAL found (PCI devices bound to a DPDK driver, and `--vdev`s).
    #[must_use]
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is initialised (self exists); the call only reads ethdev's table.
        unsafe { ffi::glbd_port_count() }
    }

    /// The port id of a device by name (a `--vdev` name such as `net_pcap0`, or a PCI address).
    ///
    /// # Errors
    /// No such device.
    pub fn port_id(&self, name: &str) -> Result<u16, IoError> {
        let c_name =
            CString::new(name).map_err(|_| IoError::Setup(format!("port name {name:?} contains a NUL")))?;
        let mut port_id = 0u16;
        // SAFETY: c_name is a NUL-terminated string and port_id a valid u16, both alive across
        // the call, which copies nothing out of them afterwards.
        let ret = unsafe { ffi::glbd_port_by_name(c_name.as_ptr(), &raw mut port_id) };
        if ret != 0 {
            return Err(dpdk_error(&format!("DPDK port {name:?}"), ret));
        }
        Ok(port_id)
    }

    /// The port's MAC address (the outer source MAC of encapsulated frames).
    ///
    /// # Errors
    /// No such port.
    pub fn mac(&self, port_id: u16) -> Result<[u8; 6], IoError> {
        let mut mac = [0u8; 6];
        // SAFETY: mac is 6 writable bytes, as the shim writes.
        let ret = unsafe { ffi::glbd_port_mac(port_id, mac.as_mut_ptr()) };
        if ret != 0 {
            return Err(dpdk_error(&format!("MAC address of DPDK port {port_id}"), ret));
        }
        Ok(mac)
    }

    /// The port's counters.
    ///
    /// # Errors
    /// No such port.
    pub fn stats(&self, port_id: u16) -> Result<PortStats, IoError> {
        let mut s = ffi::Stats::default();
        // SAFETY: s is a valid, writable struct glbd_stats (same layout, repr(C)).
        let ret = unsafe { ffi::glbd_port_stats(port_id, &raw mut s) };
        if ret != 0 {
            return Err(dpdk_error(&format!("stats of DPDK port {port_id}"), ret));
        }
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Sets up and starts `port_id` with `queues` RX/TX queue pairs and [`PortConfig::default`];
    /// queue `q` of the result serves RX and TX queue `q` (give one to each worker).
    ///
    /// # Errors
    /// See [`Self::port_with`].
    pub fn port(&self, port_id: u16, queues: u16) -> Result<Vec<DpdkQueue>, IoError> {
        self.port_with(port_id, queues, &PortConfig::default())
    }

    /// [`Self::port`] with explicit sizes.
    ///
    /// # Errors
    /// The port does not exist, is already set up, supports fewer queues, or the device or the
    /// mempools cannot be set up.
    pub fn port_with(
        &self,
        port_id: u16,
        queues: u16,
        config: &PortConfig,
    ) -> Result<Vec<DpdkQueue>, IoError> {
        if queues == 0 {
            return Err(IoError::Setup(format!("DPDK port {port_id}: at least one queue is needed")));
        }
        if usize::from(config.data_room) <= MBUF_HEADROOM {
            return Err(IoError::Setup(format!("DPDK port {port_id}: data_room must exceed 128")));
        }
        if !self.inner.ports.lock().unwrap_or_else(PoisonError::into_inner).insert(port_id) {
            return Err(IoError::Setup(format!("DPDK port {port_id} is already set up")));
        }
        let mut pools = vec![std::ptr::null_mut::<ffi::RteMempool>(); usize::from(queues)];
        // SAFETY: the EAL is initialised; pools has room for `queues` pointers; the port was not
        // set up before (checked above), so no queue of it is in use.
        let ret = unsafe {
            ffi::glbd_port_setup(
                port_id,
                queues,
                config.rx_desc,
                config.tx_desc,
                config.mbufs,
                config.data_room,
                config.mtu,
                pools.as_mut_ptr(),
            )
        };
        if ret != 0 {
            self.inner.ports.lock().unwrap_or_else(PoisonError::into_inner).remove(&port_id);
            return Err(dpdk_error(&format!("setting up DPDK port {port_id} with {queues} queue(s)"), ret));
        }
        let pools: Vec<Pool> = pools.into_iter().filter_map(NonNull::new).map(Pool).collect();
        debug_assert_eq!(pools.len(), usize::from(queues), "the shim made every pool");
        let port = Arc::new(PortInner { eal: Arc::clone(&self.inner), port_id, pools });
        let max_tx_len = usize::from(config.data_room) - MBUF_HEADROOM;
        Ok((0..queues)
            .zip(port.pools.iter().copied())
            .map(|(queue, pool)| DpdkQueue {
                _port: Arc::clone(&port),
                port_id,
                queue,
                pool,
                max_tx_len,
                rx: [std::ptr::null_mut(); BURST_SIZE],
                pending: Vec::with_capacity(TX_QUEUE),
                tx_refused: 0,
            })
            .collect())
    }
}

/// A queue's mempool.
#[derive(Debug, Clone, Copy)]
struct Pool(NonNull<ffi::RteMempool>);

/// A started port; stopped, closed and its pools freed when the last queue is dropped.
#[derive(Debug)]
struct PortInner {
    eal: Arc<EalInner>,
    port_id: u16,
    pools: Vec<Pool>,
}

// SAFETY: the pool pointers are only used through DPDK's mempool calls, which are thread-safe
// (multi-producer/consumer rings), and freed in Drop, when no queue can use them any more.
unsafe impl Send for PortInner {}
// SAFETY: as for Send: shared access only reads the pointers.
unsafe impl Sync for PortInner {}

impl Drop for PortInner {
    fn drop(&mut self) {
        // SAFETY: every DpdkQueue holds an Arc to this port, so none is left to use the port's
        // queues; stopping and closing returns the queues' mbufs to the pools.
        unsafe { ffi::glbd_port_close(self.port_id) };
        for pool in &self.pools {
            // SAFETY: the port is closed, so no RX ring refers to the pool, and the queues'
            // TX mbufs were transmitted (and freed by the closed driver) or freed by DpdkQueue.
            unsafe { ffi::glbd_pool_free(pool.0.as_ptr()) };
        }
        self.eal.ports.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.port_id);
    }
}

/// One RX/TX queue pair of a DPDK port: a worker's [`PacketIo`].
pub struct DpdkQueue {
    /// Keeps the port started while this queue exists.
    _port: Arc<PortInner>,
    port_id: u16,
    queue: u16,
    pool: Pool,
    max_tx_len: usize,
    /// Received mbufs of the current burst (freed before rx_burst returns).
    rx: [*mut ffi::RteMbuf; BURST_SIZE],
    /// Owned mbufs not yet taken by the device, oldest first.
    pending: Vec<*mut ffi::RteMbuf>,
    tx_refused: u64,
}

// SAFETY: a DpdkQueue is the only user of its RX/TX queue pair (DPDK allows each queue to be
// driven from any one thread at a time); its pending mbufs are owned by it alone, and its pool
// is thread-safe. Moving it to a worker thread moves all of that together.
unsafe impl Send for DpdkQueue {}

impl fmt::Debug for DpdkQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpdkQueue")
            .field("port_id", &self.port_id)
            .field("queue", &self.queue)
            .field("pending", &self.pending.len())
            .field("tx_refused", &self.tx_refused)
            .finish_non_exhaustive()
    }
}

impl DpdkQueue {
    /// The port.
    #[must_use]
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// The queue number (RX and TX).
    #[must_use]
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Frames refused by [`PacketIo::tx`] so far: too long for one mbuf, no free mbuf, or the
    /// TX queue full.
    #[must_use]
    pub fn tx_refused(&self) -> u64 {
        self.tx_refused
    }

    /// Frames queued for transmission and not yet taken by the device.
    #[must_use]
    pub fn tx_pending(&self) -> usize {
        self.pending.len()
    }

    fn refuse(&mut self) -> bool {
        self.tx_refused += 1;
        false
    }

    /// Whether the TX queue has room for one more frame, flushing once if it is full.
    fn make_room(&mut self) -> Result<bool, IoError> {
        if self.pending.len() >= TX_QUEUE {
            self.flush()?;
        }
        Ok(self.pending.len() < TX_QUEUE)
    }

    /// Queues an owned mbuf for transmission (flushing when a burst is queued); false when the
    /// queue stays full, the mbuf then still the caller's.
    fn queue_mbuf(&mut self, mbuf: *mut ffi::RteMbuf) -> Result<bool, IoError> {
        if !self.make_room()? {
            return Ok(self.refuse());
        }
        self.pending.push(mbuf);
        // Hand over full bursts at once, as DPDK applications do; the worker's flush sends the
        // rest.
        if self.pending.len() >= BURST_SIZE {
            self.flush()?;
        }
        Ok(true)
    }

    /// Polls the RX queue into `self.rx`; how many mbufs it returned.
    fn poll_rx(&mut self) -> usize {
        register_thread(&self._port.eal);
        // SAFETY: the port is started (self._port keeps it so) and only this DpdkQueue polls this
        // RX queue; self.rx has room for RX_BURST pointers.
        let received =
            unsafe { ffi::glbd_rx_burst(self.port_id, self.queue, self.rx.as_mut_ptr(), RX_BURST) };
        usize::from(received).min(BURST_SIZE)
    }
}

impl PacketIo for DpdkQueue {
    fn rx_burst(&mut self, burst: &mut Burst) -> Result<usize, IoError> {
        burst.clear();
        let received = self.poll_rx();
        for &mbuf in &self.rx[..received] {
            copy_into(mbuf, burst);
        }
        // `received` ≤ RX_BURST, so it fits a c_uint.
        let count = u32::try_from(received).unwrap_or(0);
        // SAFETY: the first `received` entries are mbufs we own (returned by rx_burst above) and
        // are not used after this call.
        unsafe { ffi::glbd_mbuf_free_bulk(self.rx.as_mut_ptr(), count) };
        Ok(burst.len())
    }

    fn tx(&mut self, frame: &[u8]) -> Result<bool, IoError> {
        if frame.len() > self.max_tx_len || !self.make_room()? {
            return Ok(self.refuse());
        }
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        // SAFETY: the pool belongs to the live port; frame is readable for len bytes, which the
        // shim copies before returning.
        let mbuf = unsafe { ffi::glbd_mbuf_from(self.pool.0.as_ptr(), frame.as_ptr(), len) };
        if mbuf.is_null() {
            return Ok(self.refuse());
        }
        let queued = self.queue_mbuf(mbuf)?;
        debug_assert!(queued, "room was made above");
        Ok(queued)
    }

    fn rx_forward(&mut self, burst: &mut Burst, handle: &mut BurstHandler<'_>) -> Result<Forwarded, IoError> {
        let received = self.poll_rx();
        let mut forwarded = Forwarded { received, ..Forwarded::default() };
        if received == 0 {
            return Ok(forwarded);
        }
        burst.clear();
        // An mbuf that cannot be lent in place (`None`) is copied into the burst buffer.
        let mut views = [None; BURST_SIZE];
        for (&mbuf, view) in self.rx[..received].iter().zip(&mut views) {
            *view = buffer_of(mbuf);
            if view.is_none() {
                copy_into(mbuf, burst);
            }
        }
        let mut transmit = [false; BURST_SIZE];
        // Where each in-place frame lies after the handler: (offset, length).
        let mut placed = [(0u16, 0u16); BURST_SIZE];
        let handled = {
            let mut copies = burst.frame_array().into_iter();
            let mut frames: [Frame<'_>; BURST_SIZE] = std::array::from_fn(|i| match views[i] {
                // SAFETY: the mbuf was received just above and is ours until it is queued or
                // freed below, after `frames` is dropped; `buffer_of` checked that it is direct,
                // unshared and one segment, so `buf..buf + size` is its data buffer and nothing
                // else refers to it; the mbufs of one burst are distinct.
                Some(view) => unsafe { view.frame() },
                None => copies.next().unwrap_or_else(|| Frame::new(&mut [], 0, 0)),
            });
            let handled = handle(&mut frames[..received], &mut transmit);
            for (place, frame) in placed.iter_mut().zip(&frames[..received]) {
                // Inside a buffer of at most u16::MAX bytes (copies: not used).
                *place = (u16::try_from(frame.start()).unwrap_or(0), u16::try_from(frame.len()).unwrap_or(0));
            }
            handled
        };
        let mut copies = burst.frames();
        let mut to_free = [std::ptr::null_mut(); BURST_SIZE];
        let mut freed = 0;
        for i in 0..received {
            let mbuf = self.rx[i];
            // Taken for every copied frame, marked or not, to stay in step with `views`.
            let copy = if views[i].is_none() { copies.next() } else { None };
            if transmit[i] {
                let (offset, len) = placed[i];
                let sent = match copy {
                    Some(copy) => self.tx(copy.data())?,
                    None if len > 0 => {
                        // SAFETY: the handler is done with the buffer; the frame lies at
                        // `placed[i]` inside it (a Frame never leaves its buffer).
                        unsafe { ffi::glbd_mbuf_place(mbuf, offset, len) };
                        if self.queue_mbuf(mbuf)? {
                            forwarded.transmitted += 1;
                            continue; // the device owns it now
                        }
                        false
                    }
                    None => self.refuse(),
                };
                if sent {
                    forwarded.transmitted += 1;
                } else {
                    forwarded.refused += 1;
                }
            }
            to_free[freed] = mbuf;
            freed += 1;
        }
        // `freed` ≤ BURST_SIZE, so it fits a c_uint.
        let count = u32::try_from(freed).unwrap_or(0);
        // SAFETY: the first `freed` entries are received mbufs we still own (not queued), not
        // used after this call.
        unsafe { ffi::glbd_mbuf_free_bulk(to_free.as_mut_ptr(), count) };
        handled?;
        Ok(forwarded)
    }

    fn flush(&mut self) -> Result<usize, IoError> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        register_thread(&self._port.eal);
        // pending never exceeds TX_QUEUE, which fits a u16.
        let count = u16::try_from(self.pending.len()).unwrap_or(u16::MAX);
        // SAFETY: the port is started and only this DpdkQueue uses this TX queue; the first
        // `count` entries of pending are mbufs we own. The device takes ownership of the first
        // `sent` of them, which are removed from pending below and never touched again.
        let sent = unsafe { ffi::glbd_tx_burst(self.port_id, self.queue, self.pending.as_mut_ptr(), count) };
        let sent = usize::from(sent).min(self.pending.len());
        self.pending.drain(..sent);
        Ok(sent)
    }
}

/// The data buffer of an mbuf that can be rewritten in place.
#[derive(Debug, Clone, Copy)]
struct MbufView {
    buf: NonNull<u8>,
    size: u16,
    off: u16,
    len: u16,
}

impl MbufView {
    /// The frame over the whole buffer.
    ///
    /// # Safety
    /// The mbuf must be ours for `'a` and nothing else may refer to its buffer meanwhile.
    unsafe fn frame<'a>(self) -> Frame<'a> {
        // SAFETY: the caller's promise; `buffer_of` read `buf` and `size` from the mbuf.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr(), usize::from(self.size)) };
        Frame::new(buf, usize::from(self.off), usize::from(self.len))
    }
}

/// The buffer of `mbuf` when it can be rewritten in place with room for any tunnel before the
/// frame.
fn buffer_of(mbuf: *mut ffi::RteMbuf) -> Option<MbufView> {
    let (mut buf, mut size, mut off, mut len) = (std::ptr::null_mut(), 0, 0, 0);
    // SAFETY: `mbuf` is a received mbuf we own; the shim only reads it and writes the four
    // out-parameters, which are live locals.
    let ret = unsafe { ffi::glbd_mbuf_buffer(mbuf, &raw mut buf, &raw mut size, &raw mut off, &raw mut len) };
    (ret == 0 && usize::from(off) >= HEADROOM)
        .then_some(())
        .and_then(|()| NonNull::new(buf))
        .map(|buf| MbufView { buf, size, off, len })
}

/// Copies the frame of `mbuf` (every segment) into the next slot of `burst`.
fn copy_into(mbuf: *mut ffi::RteMbuf, burst: &mut Burst) {
    let Some(slot) = burst.next_slot() else { return };
    let cap = u32::try_from(slot.len()).unwrap_or(u32::MAX);
    // SAFETY: mbuf is a valid received mbuf we own; slot is writable for cap bytes and the shim
    // writes at most cap.
    let len = unsafe { ffi::glbd_mbuf_copy(mbuf, slot.as_mut_ptr(), cap) };
    burst.commit(usize::try_from(len).unwrap_or(usize::MAX));
}

impl Drop for DpdkQueue {
    fn drop(&mut self) {
        let count = u32::try_from(self.pending.len()).unwrap_or(0);
        // SAFETY: pending holds only mbufs we own (the device never took them); the pool they
        // return to is alive until self._port, dropped after this, frees it.
        unsafe { ffi::glbd_mbuf_free_bulk(self.pending.as_mut_ptr(), count) };
        self.pending.clear();
    }
}
