//! What happens to a frame, and the counters that record it.

/// The outcome for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Encapsulated in place; transmit it.
    Forward,
    /// Not load-balanced traffic (no bind matches, not IP, unreadable IP header): hand it to the
    /// kernel unchanged.
    Kernel,
    /// Matched a bind but cannot be forwarded.
    Drop(DropReason),
}

/// Why a matched frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The fields the hash or the tunnel needs are missing, or the frame ends before the IP
    /// packet does.
    Truncated,
    /// The buffer has too little headroom for the tunnel headers.
    NoHeadroom,
    /// The tunnelled packet would exceed 65 535 bytes.
    TooBig,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 3] = [Self::Truncated, Self::NoHeadroom, Self::TooBig];

    /// Counter index.
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            Self::Truncated => 0,
            Self::NoHeadroom => 1,
            Self::TooBig => 2,
        }
    }

    /// Metric label.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::NoHeadroom => "no_headroom",
            Self::TooBig => "too_big",
        }
    }
}

/// Per-worker packet counters (plain integers: each worker owns its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames seen.
    pub received: u64,
    /// Frames that matched a bind.
    pub matched: u64,
    /// Frames encapsulated.
    pub forwarded: u64,
    /// Frames for the kernel.
    pub kernel: u64,
    /// Matched frames dropped, by [`DropReason::index`].
    pub dropped: [u64; DropReason::ALL.len()],
}

impl Counters {
    /// Records one verdict.
    pub fn record(&mut self, verdict: Verdict) {
        self.received += 1;
        match verdict {
            Verdict::Forward => {
                self.matched += 1;
                self.forwarded += 1;
            }
            Verdict::Kernel => self.kernel += 1,
            Verdict::Drop(reason) => {
                self.matched += 1;
                self.dropped[reason.index()] += 1;
            }
        }
    }

    /// Adds another worker's counters.
    pub fn add(&mut self, other: &Counters) {
        self.received += other.received;
        self.matched += other.matched;
        self.forwarded += other.forwarded;
        self.kernel += other.kernel;
        for (a, b) in self.dropped.iter_mut().zip(other.dropped) {
            *a += b;
        }
    }
}
