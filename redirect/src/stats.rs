//! Counters: GLB's seven (`/proc/glb_redirect_stats`, §2.1) and ours (drops by reason, I/O
//! errors). Each worker owns a [`WorkerCounters`]; it counts a burst in a plain array and adds
//! it to its atomics once per burst. Readers sum the workers, as GLB sums its per-CPU counters.

use crate::decision::Accept;
use crate::packet::DropReason;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every counter, in the order `/stats` prints them: GLB's seven first, in GLB's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Datagrams received.
    Total,
    /// See [`Accept::Syn`].
    AcceptedSyn,
    /// See [`Accept::LastResort`].
    AcceptedLastResort,
    /// See [`Accept::Established`].
    AcceptedEstablished,
    /// See [`Accept::SynCookie`].
    AcceptedSynCookie,
    /// See [`Accept::ToSelf`].
    ForwardedToSelf,
    /// Datagrams forwarded to the next hop.
    ForwardedToAlternate,
    /// Non-TCP inner packets (UDP, ICMP), taken locally without a lookup (GLB counts them in
    /// `total_packets` only).
    AcceptedStateless,
    /// Dropped, by reason.
    Dropped(DropReason),
    /// Socket lookups that got neither an answer nor "no such socket" (treated as not found).
    LookupErrors,
    /// SYN-cookie checks that failed to run (treated as "no cookie").
    SynCookieCheckErrors,
    /// Inner packets the TUN device refused (lost).
    TunWriteErrors,
    /// Forwarded datagrams the raw socket refused, or that could not be rewritten (lost).
    ForwardErrors,
}

impl Counter {
    /// All counters.
    pub const ALL: [Self; 18] = [
        Self::Total,
        Self::AcceptedSyn,
        Self::AcceptedLastResort,
        Self::AcceptedEstablished,
        Self::AcceptedSynCookie,
        Self::ForwardedToSelf,
        Self::ForwardedToAlternate,
        Self::AcceptedStateless,
        Self::Dropped(DropReason::Truncated),
        Self::Dropped(DropReason::NoPrivateData),
        Self::Dropped(DropReason::HopCountMismatch),
        Self::Dropped(DropReason::InnerProtocol),
        Self::Dropped(DropReason::InnerMalformed),
        Self::Dropped(DropReason::InnerUnsupported),
        Self::LookupErrors,
        Self::SynCookieCheckErrors,
        Self::TunWriteErrors,
        Self::ForwardErrors,
    ];

    /// Its position in [`Self::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            Self::Total => 0,
            Self::AcceptedSyn => 1,
            Self::AcceptedLastResort => 2,
            Self::AcceptedEstablished => 3,
            Self::AcceptedSynCookie => 4,
            Self::ForwardedToSelf => 5,
            Self::ForwardedToAlternate => 6,
            Self::AcceptedStateless => 7,
            Self::Dropped(DropReason::Truncated) => 8,
            Self::Dropped(DropReason::NoPrivateData) => 9,
            Self::Dropped(DropReason::HopCountMismatch) => 10,
            Self::Dropped(DropReason::InnerProtocol) => 11,
            Self::Dropped(DropReason::InnerMalformed) => 12,
            Self::Dropped(DropReason::InnerUnsupported) => 13,
            Self::LookupErrors => 14,
            Self::SynCookieCheckErrors => 15,
            Self::TunWriteErrors => 16,
            Self::ForwardErrors => 17,
        }
    }

    /// The counter of an accept decision.
    #[must_use]
    pub const fn accepted(accept: Accept) -> Self {
        match accept {
            Accept::Syn => Self::AcceptedSyn,
            Accept::Established => Self::AcceptedEstablished,
            Accept::SynCookie => Self::AcceptedSynCookie,
            Accept::LastResort => Self::AcceptedLastResort,
            Accept::ToSelf => Self::ForwardedToSelf,
        }
    }

    /// Its name in `/stats` (GLB's for GLB's counters).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Total => "total_packets",
            Self::AcceptedSyn => "accepted_syn_packets",
            Self::AcceptedLastResort => "accepted_last_resort_packets",
            Self::AcceptedEstablished => "accepted_established_packets",
            Self::AcceptedSynCookie => "accepted_syn_cookie_packets",
            Self::ForwardedToSelf => "forwarded_to_self_packets",
            Self::ForwardedToAlternate => "forwarded_to_alternate_packets",
            Self::AcceptedStateless => "accepted_stateless_packets",
            Self::Dropped(DropReason::Truncated) => "dropped_truncated_packets",
            Self::Dropped(DropReason::NoPrivateData) => "dropped_no_private_data_packets",
            Self::Dropped(DropReason::HopCountMismatch) => "dropped_hop_count_mismatch_packets",
            Self::Dropped(DropReason::InnerProtocol) => "dropped_inner_protocol_packets",
            Self::Dropped(DropReason::InnerMalformed) => "dropped_inner_malformed_packets",
            Self::Dropped(DropReason::InnerUnsupported) => "dropped_inner_unsupported_packets",
            Self::LookupErrors => "socket_lookup_errors",
            Self::SynCookieCheckErrors => "syn_cookie_check_errors",
            Self::TunWriteErrors => "tun_write_errors",
            Self::ForwardErrors => "forward_errors",
        }
    }

    /// One line of help for `/metrics`.
    #[must_use]
    pub const fn help(self) -> &'static str {
        match self {
            Self::Total => "GUE datagrams received",
            Self::AcceptedSyn => "SYN segments taken locally",
            Self::AcceptedLastResort => "Unknown flows taken locally because no hop was left",
            Self::AcceptedEstablished => "Segments of flows a local socket knows, taken locally",
            Self::AcceptedSynCookie => "ACKs carrying a valid SYN cookie, taken locally",
            Self::ForwardedToSelf => "Unknown flows whose next hop is this host, taken locally",
            Self::ForwardedToAlternate => "Unknown flows forwarded to the next hop",
            Self::AcceptedStateless => "Non-TCP inner packets (UDP, ICMP) taken locally without a lookup",
            Self::Dropped(DropReason::Truncated) => "Dropped: shorter than the GUE header and private data",
            Self::Dropped(DropReason::NoPrivateData) => "Dropped: GUE hlen 0 (no GLB private data)",
            Self::Dropped(DropReason::HopCountMismatch) => "Dropped: GUE hlen is not hop count + 1",
            Self::Dropped(DropReason::InnerProtocol) => "Dropped: GUE protocol neither 4 nor 41",
            Self::Dropped(DropReason::InnerMalformed) => "Dropped: inner IP, TCP or ICMP header unreadable",
            Self::Dropped(DropReason::InnerUnsupported) => {
                "Dropped: inner protocol not TCP, UDP or ICMP (IPv6 extension headers included)"
            }
            Self::LookupErrors => "Socket lookups that failed (treated as no socket)",
            Self::SynCookieCheckErrors => "SYN-cookie checks that failed to run (treated as no cookie)",
            Self::TunWriteErrors => "Inner packets the TUN device refused",
            Self::ForwardErrors => "Datagrams that could not be forwarded",
        }
    }
}

/// One worker's counters, padded so two workers never share a cache line. Each has a single
/// writer (its worker); relaxed atomics suffice because readers only need eventual totals.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    values: [AtomicU64; Counter::ALL.len()],
}

/// A burst's counts, added to a [`WorkerCounters`] at once.
pub type BurstCounts = [u64; Counter::ALL.len()];

impl WorkerCounters {
    /// Adds a burst's counts.
    pub fn add(&self, counts: &BurstCounts) {
        for (value, &n) in self.values.iter().zip(counts) {
            if n != 0 {
                value.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Reads one counter.
    #[must_use]
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter.index()].load(Ordering::Relaxed)
    }
}

/// Every worker's counters, for the HTTP endpoint.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// One per worker.
    pub workers: Vec<Arc<WorkerCounters>>,
    /// Whether SYN-cookie ACKs can be recognised (the BPF check loaded).
    pub syn_cookie_check: bool,
}

impl Registry {
    /// The sum of `counter` over the workers.
    #[must_use]
    pub fn total(&self, counter: Counter) -> u64 {
        self.workers.iter().map(|w| w.get(counter)).sum()
    }

    /// `/proc/glb_redirect_stats` format: `name: value` lines.
    #[must_use]
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for counter in Counter::ALL {
            let _ = writeln!(out, "{}: {}", counter.name(), self.total(counter));
        }
        out
    }

    /// Prometheus text exposition.
    #[must_use]
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        for counter in Counter::ALL {
            let name = format!("glb_redirect_{}_total", counter.name());
            let _ = writeln!(out, "# HELP {name} {}.\n# TYPE {name} counter", counter.help());
            let _ = writeln!(out, "{name} {}", self.total(counter));
        }
        for (name, help, value) in [
            ("glb_redirect_workers", "Worker threads", self.workers.len() as u64),
            (
                "glb_redirect_syn_cookie_check_available",
                "1 if SYN-cookie ACKs are recognised (BPF check loaded), else 0",
                u64::from(self.syn_cookie_check),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_the_list_and_names_are_unique() {
        for (i, counter) in Counter::ALL.iter().enumerate() {
            assert_eq!(counter.index(), i, "{counter:?}");
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
    }

    #[test]
    fn workers_are_summed_in_glbs_format() {
        let workers: Vec<_> = (0..2).map(|_| Arc::new(WorkerCounters::default())).collect();
        let mut burst = [0u64; Counter::ALL.len()];
        burst[Counter::Total.index()] = 3;
        burst[Counter::AcceptedSyn.index()] = 2;
        workers[0].add(&burst);
        burst[Counter::Dropped(DropReason::NoPrivateData).index()] = 1;
        workers[1].add(&burst);
        let registry = Registry { workers, syn_cookie_check: true };
        let text = registry.render_text();
        let glb: Vec<&str> = text.lines().take(7).collect();
        assert_eq!(
            glb,
            [
                "total_packets: 6",
                "accepted_syn_packets: 4",
                "accepted_last_resort_packets: 0",
                "accepted_established_packets: 0",
                "accepted_syn_cookie_packets: 0",
                "forwarded_to_self_packets: 0",
                "forwarded_to_alternate_packets: 0",
            ]
        );
        assert!(text.contains("\ndropped_no_private_data_packets: 1\n"));
        let prom = registry.render_prometheus();
        assert!(prom.contains("\nglb_redirect_total_packets_total 6\n"));
        assert!(prom.contains("\nglb_redirect_syn_cookie_check_available 1\n"));
    }
}
