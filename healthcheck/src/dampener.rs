//! The per-target result dampener, with GLB's exact semantics (spec §1.8).
//!
//! A single failed probe must not pull a backend out of every director's rows, and a single
//! success must not put a dead one back: the reported state only flips after a streak of
//! `trigger` identical raw results. The very first result is reported as-is (GLB quirk Q1, kept),
//! so a freshly started checker does not spend `trigger` rounds reporting stale health.

/// Turns a raw pass/fail stream into the reported (dampened) state.
#[derive(Debug, Clone)]
pub struct Dampener {
    successes_needed: u64,
    failures_needed: u64,
    reported: Option<bool>,
    streak_value: bool,
    streak_len: u64,
}

impl Dampener {
    /// A dampener that needs `successes_needed` consecutive passes to report healthy again and
    /// `failures_needed` consecutive failures to report unhealthy.
    #[must_use]
    pub fn new(successes_needed: u64, failures_needed: u64) -> Self {
        Self { successes_needed, failures_needed, reported: None, streak_value: false, streak_len: 0 }
    }

    /// Changes the thresholds (a SIGHUP may change `trigger`), keeping the current streak.
    pub fn set_thresholds(&mut self, successes_needed: u64, failures_needed: u64) {
        self.successes_needed = successes_needed;
        self.failures_needed = failures_needed;
    }

    /// The reported state, or `None` before the first result.
    #[must_use]
    pub fn reported(&self) -> Option<bool> {
        self.reported
    }

    /// Feeds one raw result and returns the reported state after it.
    pub fn push(&mut self, raw: bool) -> bool {
        if raw == self.streak_value && self.streak_len > 0 {
            self.streak_len = self.streak_len.saturating_add(1);
        } else {
            self.streak_value = raw;
            self.streak_len = 1;
        }
        let reported = match self.reported {
            None => raw,
            Some(current) if current == raw => current,
            Some(current) => {
                let needed = if raw { self.successes_needed } else { self.failures_needed };
                if self.streak_len >= needed { raw } else { current }
            }
        };
        self.reported = Some(reported);
        reported
    }
}

#[cfg(test)]
mod tests {
    use super::Dampener;

    fn run(ok: u64, fail: u64, input: &str) -> String {
        let mut d = Dampener::new(ok, fail);
        input
            .split_whitespace()
            .map(|v| if d.push(v == "T") { "T" } else { "F" })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The vectors of GLB's `HealthResultDampener_test.go` (spec §1.8), verbatim.
    #[test]
    fn glb_dampener_vectors() {
        assert_eq!(run(1, 1, "T F T F T F"), "T F T F T F");
        assert_eq!(run(1, 3, "F F T F T F F F F F T F"), "F F T T T T T F F F T T");
        assert_eq!(run(3, 1, "T T F T F T T T T T F T"), "T T F F F F F T T T F F");
        assert_eq!(run(3, 3, "F F T F T F F F F F T F T T T T T"), format!("{} T T T", ["F"; 14].join(" ")));
        assert_eq!(run(3, 3, "T T F T F T T T T T F T F F F F F"), format!("{} F F F", ["T"; 14].join(" ")));
    }

    #[test]
    fn reports_nothing_before_the_first_result_and_keeps_streaks_across_threshold_changes() {
        let mut d = Dampener::new(3, 3);
        assert_eq!(d.reported(), None);
        assert!(d.push(true));
        assert!(d.push(false));
        assert!(d.push(false));
        d.set_thresholds(2, 2);
        // The streak of two failures already meets the lowered threshold on the next failure.
        assert!(!d.push(false));
        assert_eq!(d.reported(), Some(false));
    }
}
