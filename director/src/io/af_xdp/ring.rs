//! The four single-producer/single-consumer rings an AF_XDP socket shares with the kernel (fill,
//! completion, RX, TX), and the anonymous mappings behind them and the UMEM.
//!
//! A ring is a power-of-two array of descriptors plus a producer and a consumer index, free
//! running `u32`s (they wrap at 2³², the slot is `index & (size - 1)`). For the fill and TX rings
//! we produce and the kernel consumes; for the RX and completion rings the kernel produces and we
//! consume. Each side publishes its own index with a release store and reads the other's with an
//! acquire load (the protocol of the kernel's `xsk_queue.h` and libxdp's `xsk.h`).
//!
//! The index arithmetic is in small safe functions ([`filled`], [`free`], [`slot`]) tested on
//! plain numbers; [`Ring`] itself is tested on a fake ring in a `Vec` (so the tests run under
//! Miri), with the test playing the kernel's side.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// `XDP_RING_NEED_WAKEUP` in a ring's flags word: the kernel waits for a syscall.
const NEED_WAKEUP: u32 = 1;

/// Entries between `consumer` and `producer`: produced, not yet consumed.
#[must_use]
pub(super) const fn filled(producer: u32, consumer: u32) -> u32 {
    producer.wrapping_sub(consumer)
}

/// Entries a producer may still write into a ring of `size` entries.
#[must_use]
pub(super) const fn free(size: u32, producer: u32, consumer: u32) -> u32 {
    size.saturating_sub(filled(producer, consumer))
}

/// The array slot of free-running `index` in a ring of `size` (a power of two) entries.
#[must_use]
pub(super) const fn slot(index: u32, size: u32) -> usize {
    (index & (size - 1)) as usize
}

/// A mapping this process owns, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mapping` is the only handle to its pages in this process; moving it to another
// thread moves that exclusive ownership (no thread-local state is involved).
unsafe impl Send for Mapping {}

impl Mapping {
    /// Takes ownership of `len` bytes mapped at `ptr`.
    ///
    /// # Safety
    /// `ptr..ptr + len` must be one live mapping made by `mmap`, not referenced by anything else
    /// in this process, and not unmapped by anyone but this `Mapping`.
    pub(super) unsafe fn from_raw(ptr: NonNull<u8>, len: usize) -> Self {
        Self { ptr, len }
    }

    /// An anonymous private read-write mapping of `len` bytes, backed by transparent huge pages
    /// where the kernel has them (a hint: `MADV_HUGEPAGE` failing leaves normal pages). Not
    /// populated: registering it as a UMEM pins (and so faults in) every page.
    pub(super) fn anonymous(len: usize) -> std::io::Result<Self> {
        use rustix::mm::{Advice, MapFlags, ProtFlags, madvise, mmap_anonymous};
        // SAFETY: a new anonymous mapping at an address the kernel chooses (null hint) cannot
        // alias any existing Rust object.
        let ptr = unsafe {
            mmap_anonymous(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)
        }?;
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        // SAFETY: `ptr` is the fresh `len`-byte mapping made just above, owned by nobody else.
        let mapping = unsafe { Self::from_raw(ptr, len) };
        // SAFETY: advice on exactly that mapping; MADV_HUGEPAGE changes how it is backed, not
        // its contents or addresses.
        if let Err(e) = unsafe { madvise(ptr.as_ptr().cast(), len, Advice::LinuxHugepage) } {
            log::debug!("af_xdp: no transparent huge pages for the UMEM: {e}");
        }
        Ok(mapping)
    }

    /// Start of the mapping.
    pub(super) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `from_raw`'s contract: this is one whole mapping that only this value unmaps,
        // and nothing borrowed from it outlives the owner (rings and the UMEM hold their
        // `Mapping` and hand out no references into it).
        let result = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
        if let Err(e) = result {
            log::warn!("af_xdp: munmap of {} bytes failed: {e}", self.len);
        }
    }
}

/// Which side of a ring this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// We write descriptors (fill, TX).
    Producer,
    /// We read descriptors (RX, completion).
    Consumer,
}

/// One ring. `local` is our own index (not yet published until [`Ring::submit`] /
/// [`Ring::release`]); `cached` is the last value read of the kernel's.
#[derive(Debug)]
pub(super) struct Ring<T: Copy> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: Option<NonNull<AtomicU32>>,
    descs: NonNull<T>,
    size: u32,
    role: Role,
    local: u32,
    cached: u32,
    _mapping: Option<Mapping>,
}

// SAFETY: the ring's pointers lead into memory owned by the ring (its `Mapping`) or, for test
// rings, memory the creator keeps alive and otherwise leaves to the ring; the other party is
// the kernel, which is indifferent to which thread uses the ring. Not `Sync`: one thread at a
// time.
unsafe impl<T: Copy + Send> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// A ring over raw pointers, starting from the indices currently in memory.
    ///
    /// # Safety
    /// `producer`, `consumer` and `flags` (if any) must point to aligned `u32`s and `descs` to
    /// `size` aligned `T`s, all valid for as long as the ring lives (kept alive by `mapping`
    /// when given); `size` must be a power of two; only this ring may act as `role`'s side.
    pub(super) unsafe fn from_raw(
        producer: NonNull<AtomicU32>,
        consumer: NonNull<AtomicU32>,
        flags: Option<NonNull<AtomicU32>>,
        descs: NonNull<T>,
        size: u32,
        role: Role,
        mapping: Option<Mapping>,
    ) -> Self {
        debug_assert!(size.is_power_of_two());
        let mut ring =
            Self { producer, consumer, flags, descs, size, role, local: 0, cached: 0, _mapping: mapping };
        match role {
            Role::Producer => {
                ring.local = ring.producer().load(Ordering::Relaxed);
                ring.cached = ring.consumer().load(Ordering::Acquire);
            }
            Role::Consumer => {
                ring.local = ring.consumer().load(Ordering::Relaxed);
                ring.cached = ring.producer().load(Ordering::Acquire);
            }
        }
        ring
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: `from_raw`'s contract: valid and aligned for the ring's life; shared
        // access only, through atomics.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    /// Producer: how many more entries [`Self::push`] accepts (reads the kernel's consumer
    /// index when the cached view shows fewer than `want`).
    pub(super) fn free_entries(&mut self, want: u32) -> u32 {
        debug_assert_eq!(self.role, Role::Producer);
        let mut n = free(self.size, self.local, self.cached);
        if n < want {
            self.cached = self.consumer().load(Ordering::Acquire);
            n = free(self.size, self.local, self.cached);
        }
        n
    }

    /// Producer: writes `value` into the next slot; false when the ring is full. The kernel
    /// sees it after [`Self::submit`].
    pub(super) fn push(&mut self, value: T) -> bool {
        if self.free_entries(1) == 0 {
            return false;
        }
        let slot = slot(self.local, self.size);
        // SAFETY: `slot < size`, so in bounds of the `descs` array (`from_raw`); the slot lies
        // between the kernel's consumer index and our unpublished producer index, so the kernel
        // neither reads nor writes it until `submit`.
        unsafe { self.descs.as_ptr().add(slot).write(value) };
        self.local = self.local.wrapping_add(1);
        true
    }

    /// Producer: publishes the pushed entries to the kernel.
    pub(super) fn submit(&mut self) {
        debug_assert_eq!(self.role, Role::Producer);
        self.producer().store(self.local, Ordering::Release);
    }

    /// Producer: entries published but not yet consumed by the kernel.
    pub(super) fn outstanding(&mut self) -> u32 {
        debug_assert_eq!(self.role, Role::Producer);
        self.cached = self.consumer().load(Ordering::Acquire);
        filled(self.producer().load(Ordering::Relaxed), self.cached)
    }

    /// Producer: the kernel's consumer index (as of the last read).
    pub(super) fn kernel_consumer(&self) -> u32 {
        self.cached
    }

    /// Consumer: takes the next entry, if the kernel has produced one. The slot goes back to
    /// the kernel at [`Self::release`].
    pub(super) fn pop(&mut self) -> Option<T> {
        debug_assert_eq!(self.role, Role::Consumer);
        if filled(self.cached, self.local) == 0 {
            self.cached = self.producer().load(Ordering::Acquire);
            if filled(self.cached, self.local) == 0 {
                return None;
            }
        }
        let slot = slot(self.local, self.size);
        // SAFETY: `slot < size` (in bounds, `from_raw`); the acquire load of the producer index
        // made the kernel's write of this slot visible, and the kernel does not touch it again
        // until our consumer index passes it (`release`).
        let value = unsafe { self.descs.as_ptr().add(slot).read() };
        self.local = self.local.wrapping_add(1);
        Some(value)
    }

    /// Consumer: gives the popped slots back to the kernel.
    pub(super) fn release(&mut self) {
        debug_assert_eq!(self.role, Role::Consumer);
        self.consumer().store(self.local, Ordering::Release);
    }

    /// Whether the kernel asked for a syscall to process this ring (`XDP_USE_NEED_WAKEUP`);
    /// true when the kernel has no flags word (it always needs one then).
    pub(super) fn needs_wakeup(&self) -> bool {
        match self.flags {
            // SAFETY: `from_raw`'s contract, as for `producer`; atomic shared access only.
            Some(flags) => unsafe { flags.as_ref() }.load(Ordering::Relaxed) & NEED_WAKEUP != 0,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_arithmetic_wraps() {
        assert_eq!(filled(5, 3), 2);
        assert_eq!(filled(2, u32::MAX - 1), 4, "producer wrapped past 2^32");
        assert_eq!(free(8, 2, u32::MAX - 1), 4);
        assert_eq!(free(8, 8, 0), 0);
        assert_eq!(free(8, 0, 0), 8);
        assert_eq!(slot(u32::MAX, 8), 7);
        assert_eq!(slot(u32::MAX.wrapping_add(1), 8), 0);
        assert_eq!(slot(13, 8), 5);
    }

    /// A ring's shared memory as the kernel lays it out, in the heap.
    struct FakeRing {
        producer: Box<AtomicU32>,
        consumer: Box<AtomicU32>,
        flags: Box<AtomicU32>,
        descs: NonNull<u64>,
        storage: *mut [u64],
    }

    impl FakeRing {
        fn new(size: u32, start: u32) -> Self {
            let storage = Box::into_raw(vec![0u64; size as usize].into_boxed_slice());
            Self {
                producer: Box::new(AtomicU32::new(start)),
                consumer: Box::new(AtomicU32::new(start)),
                flags: Box::new(AtomicU32::new(0)),
                descs: NonNull::new(storage.cast::<u64>()).unwrap(),
                storage,
            }
        }

        fn ring(&self, role: Role) -> Ring<u64> {
            let size = u32::try_from(self.storage.len()).unwrap();
            // SAFETY: every pointer is into heap memory `self` keeps alive and that the test
            // outlives the ring with; the test acts as the other side only.
            unsafe {
                Ring::from_raw(
                    NonNull::from(&*self.producer),
                    NonNull::from(&*self.consumer),
                    Some(NonNull::from(&*self.flags)),
                    self.descs,
                    size,
                    role,
                    None,
                )
            }
        }

        /// The kernel's side: reads the slot of `index`.
        fn read(&self, index: u32) -> u64 {
            let size = u32::try_from(self.storage.len()).unwrap();
            // SAFETY: in bounds (masked); the ring is not writing this slot (the test is
            // single-threaded and the slot is published).
            unsafe { self.descs.as_ptr().add(slot(index, size)).read() }
        }

        /// The kernel's side: writes the slot of `index`.
        fn write(&self, index: u32, value: u64) {
            let size = u32::try_from(self.storage.len()).unwrap();
            // SAFETY: in bounds (masked); the slot is not yet published to the ring.
            unsafe { self.descs.as_ptr().add(slot(index, size)).write(value) };
        }
    }

    impl Drop for FakeRing {
        fn drop(&mut self) {
            // SAFETY: made by `Box::into_raw` in `new`, freed once here.
            drop(unsafe { Box::from_raw(self.storage) });
        }
    }

    #[test]
    fn producer_fills_publishes_and_wraps() {
        let fake = FakeRing::new(4, u32::MAX - 1);
        let mut ring = fake.ring(Role::Producer);
        assert_eq!(ring.free_entries(4), 4);
        for v in 10..14 {
            assert!(ring.push(v));
        }
        assert!(!ring.push(99), "full ring refuses");
        assert_eq!(fake.producer.load(Ordering::Relaxed), u32::MAX - 1, "not published before submit");
        ring.submit();
        assert_eq!(fake.producer.load(Ordering::Relaxed), 2, "producer wrapped");
        assert_eq!(ring.outstanding(), 4);
        // The kernel consumes two.
        let start = u32::MAX - 1;
        assert_eq!((fake.read(start), fake.read(start.wrapping_add(1))), (10, 11));
        fake.consumer.store(start.wrapping_add(2), Ordering::Release);
        assert_eq!(ring.outstanding(), 2);
        assert_eq!(ring.kernel_consumer(), 0);
        assert!(ring.push(14) && ring.push(15) && !ring.push(16));
        ring.submit();
        assert_eq!((fake.read(2), fake.read(3)), (14, 15));
    }

    #[test]
    fn consumer_reads_in_order_and_releases() {
        let fake = FakeRing::new(8, u32::MAX - 2);
        let mut ring = fake.ring(Role::Consumer);
        assert_eq!(ring.pop(), None);
        let mut index = u32::MAX - 2;
        for v in 0..6 {
            fake.write(index, 100 + v);
            index = index.wrapping_add(1);
        }
        fake.producer.store(index, Ordering::Release);
        let got: Vec<u64> = std::iter::from_fn(|| ring.pop()).collect();
        assert_eq!(got, (100..106).collect::<Vec<_>>());
        assert_eq!(fake.consumer.load(Ordering::Relaxed), u32::MAX - 2, "not released yet");
        ring.release();
        assert_eq!(fake.consumer.load(Ordering::Relaxed), 3);
        assert_eq!(ring.pop(), None);
    }

    #[test]
    fn wakeup_flag() {
        let fake = FakeRing::new(2, 0);
        let ring = fake.ring(Role::Producer);
        assert!(!ring.needs_wakeup());
        fake.flags.store(NEED_WAKEUP, Ordering::Relaxed);
        assert!(ring.needs_wakeup());
    }
}
