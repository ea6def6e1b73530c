//! The CPU's time-stamp counter, for cycles-per-packet figures.

/// The time-stamp counter now (`RDTSC`); `None` on architectures without one.
#[must_use]
pub fn ticks() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC reads a counter; it has no memory effects and is available on every
        // x86_64 CPU (the kernel may only forbid it through CR4.TSD, which Linux leaves clear).
        Some(unsafe { std::arch::x86_64::_rdtsc() })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}
