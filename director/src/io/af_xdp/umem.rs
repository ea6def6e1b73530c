//! The UMEM: one anonymous mapping cut into equal frames, registered with the socket. The
//! kernel writes received frames into it and reads transmitted ones from it; which frames the
//! process may touch at a given moment is decided by the rings (see `AfXdp`).

use super::ring::Mapping;
use rustix::net::xdp::{XdpUmemReg, XdpUmemRegFlags};

/// Frames of one UMEM.
#[derive(Debug)]
pub(super) struct Umem {
    mapping: Mapping,
    frame_size: u32,
    frames: u32,
}

/// Whether `addr..addr + len` lies inside one frame of a UMEM of `frames` × `frame_size`
/// bytes (`frame_size` a power of two).
#[must_use]
pub(super) fn in_one_frame(addr: u64, len: u64, frame_size: u32, frames: u32) -> bool {
    let size = u64::from(frame_size);
    let offset = addr & (size - 1);
    addr / size < u64::from(frames) && offset.checked_add(len).is_some_and(|end| end <= size)
}

impl Umem {
    /// `frames` frames of `frame_size` (a power of two, at least 2048) bytes.
    pub(super) fn new(frames: u32, frame_size: u32) -> std::io::Result<Self> {
        debug_assert!(frame_size.is_power_of_two());
        let len = usize::try_from(u64::from(frames) * u64::from(frame_size))
            .map_err(|_| std::io::Error::other("UMEM larger than the address space"))?;
        Ok(Self { mapping: Mapping::anonymous(len)?, frame_size, frames })
    }

    /// The `XDP_UMEM_REG` argument.
    pub(super) fn registration(&self) -> XdpUmemReg {
        XdpUmemReg {
            addr: self.mapping.ptr().as_ptr() as u64,
            len: self.mapping.len() as u64,
            chunk_size: self.frame_size,
            headroom: 0,
            flags: XdpUmemRegFlags::empty(),
            tx_metadata_len: 0,
        }
    }

    /// Bytes per frame.
    pub(super) fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The UMEM address of frame `index`.
    pub(super) fn frame(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.frame_size)
    }

    /// The start of the frame holding `addr`.
    pub(super) fn frame_start(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.frame_size) - 1)
    }

    /// Starts loading the cache line at UMEM address `addr` (ignored outside the UMEM).
    pub(super) fn prefetch(&self, addr: u64) {
        if !in_one_frame(addr, 1, self.frame_size, self.frames) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let offset = usize::try_from(addr).unwrap_or(usize::MAX);
            // SAFETY: `offset` is inside the mapping (checked above), so the pointer arithmetic
            // stays in one allocation; a prefetch only hints the cache and never faults or
            // changes memory.
            unsafe {
                let line = self.mapping.ptr().as_ptr().add(offset);
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.cast::<i8>());
            }
        }
    }

    /// Copies `dst.len()` bytes from UMEM address `addr` into `dst`; false (nothing copied)
    /// when the range is not inside one frame.
    ///
    /// # Safety
    /// The frame holding `addr` must belong to the process now: taken from the RX ring and not
    /// yet given back on the fill ring (the kernel does not write it meanwhile).
    pub(super) unsafe fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        if !in_one_frame(addr, dst.len() as u64, self.frame_size, self.frames) {
            return false;
        }
        // `in_one_frame` bounds `addr` by the mapping's length, a `usize`.
        let offset = usize::try_from(addr).unwrap_or(usize::MAX);
        // SAFETY: `offset..offset + dst.len()` is inside the mapping (checked above); the
        // caller guarantees the kernel is not writing that frame; `dst` is a distinct Rust
        // buffer, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.mapping.ptr().as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
        true
    }

    /// The whole frame holding `addr`, writable, and `addr`'s offset in it; `None` when `addr`
    /// is outside the UMEM. Lets the pipeline rewrite a received frame where the kernel put it.
    ///
    /// # Safety
    /// The frame must belong to the process now (taken from the RX ring, not yet given back on
    /// the fill or TX ring), and no other reference into it may exist while the slice lives.
    #[allow(
        clippy::mut_from_ref,
        reason = "the UMEM is shared with the kernel: which frames are writable is decided by the \
                  rings, not by a Rust borrow; the caller states it"
    )]
    pub(super) unsafe fn frame_mut(&self, addr: u64) -> Option<(&mut [u8], usize)> {
        if !in_one_frame(addr, 0, self.frame_size, self.frames) {
            return None;
        }
        let start = usize::try_from(self.frame_start(addr)).unwrap_or(usize::MAX);
        let offset = usize::try_from(addr).unwrap_or(usize::MAX) - start;
        // SAFETY: the frame `start..start + frame_size` is inside the mapping (checked above);
        // the caller guarantees the kernel does not touch it and nothing else borrows it.
        let frame = unsafe {
            std::slice::from_raw_parts_mut(self.mapping.ptr().as_ptr().add(start), self.frame_size as usize)
        };
        Some((frame, offset))
    }

    /// Copies `src` to UMEM address `addr`; false (nothing copied) when it does not fit in one
    /// frame.
    ///
    /// # Safety
    /// The frame holding `addr` must belong to the process now: on its TX free list, not
    /// posted on the TX ring (the kernel does not read it meanwhile).
    pub(super) unsafe fn write(&self, addr: u64, src: &[u8]) -> bool {
        if !in_one_frame(addr, src.len() as u64, self.frame_size, self.frames) {
            return false;
        }
        let offset = usize::try_from(addr).unwrap_or(usize::MAX);
        // SAFETY: in bounds (checked above); the caller guarantees the kernel is not reading
        // that frame; `src` is a distinct Rust buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.mapping.ptr().as_ptr().add(offset), src.len());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_bounds() {
        assert!(in_one_frame(0, 2048, 2048, 4));
        assert!(!in_one_frame(0, 2049, 2048, 4));
        assert!(in_one_frame(2048 + 256, 1792, 2048, 4));
        assert!(!in_one_frame(2048 + 256, 1793, 2048, 4), "crosses into the next frame");
        assert!(!in_one_frame(4 * 2048, 1, 2048, 4), "past the last frame");
        assert!(!in_one_frame(u64::MAX - 1, 1, 2048, 4));
        assert!(!in_one_frame(100, u64::MAX, 2048, 4), "length overflow");
    }

    #[test]
    fn write_then_read_back() {
        let umem = Umem::new(4, 2048).expect("mmap");
        assert_eq!(umem.frame(3), 6144);
        assert_eq!(umem.frame_start(6144 + 300), 6144);
        let frame = [0xabu8; 100];
        // SAFETY: no kernel shares this UMEM (it is not registered).
        assert!(unsafe { umem.write(6144 + 256, &frame) });
        let mut back = [0u8; 100];
        // SAFETY: as above.
        assert!(unsafe { umem.read(6144 + 256, &mut back) });
        assert_eq!(back, frame);
        // SAFETY: as above.
        assert!(!unsafe { umem.write(6144 + 2000, &frame) }, "does not fit the frame");
        // SAFETY: as above, and no other reference into frame 3 exists.
        let (whole, offset) = unsafe { umem.frame_mut(6144 + 256) }.expect("inside the UMEM");
        assert_eq!((whole.len(), offset), (2048, 256));
        assert_eq!(whole[256..356], frame, "the frame as written");
        whole[255] = 7;
        // SAFETY: as above (`whole` is no longer used).
        assert!(unsafe { umem.frame_mut(4 * 2048) }.is_none(), "past the last frame");
        let mut before = [0u8; 1];
        // SAFETY: as above.
        assert!(unsafe { umem.read(6144 + 255, &mut before) });
        assert_eq!(before, [7], "written through the frame");
    }
}
