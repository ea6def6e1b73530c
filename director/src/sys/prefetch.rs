//! A cache prefetch hint: the one CPU instruction the data path uses that safe Rust does not expose.

/// Asks the CPU to start loading the cache line holding `value` into all cache levels, so a
/// read a little later does not wait for memory. A hint only: it never faults, changes no
/// value, and does nothing on other architectures.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` needs SSE, part of every x86_64 CPU; it reads nothing and
        // cannot fault, and the pointer comes from a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
