//! The highest rate a contestant forwards with at most [`MAX_LOSS`] loss (RFC 2544's
//! throughput, found by search over the offered rate).
//!
//! First an unpaced trial: the generator's top rate. If the contestant keeps up with it, that is
//! its rate, bounded by the generator. Otherwise what it delivered under that overload is the
//! first guess; the search then keeps the highest passing rate below the lowest failing one:
//! while nothing has passed it steps down to what the failed trial delivered (at least 10 % and
//! at most 50 % lower), afterwards it bisects (geometrically: the bracket can span a factor of 20).

use anyhow::Result;

/// Largest loss of a passing trial, frames per million (0.1 %).
const MAX_LOSS_PPM: u64 = 1000;
/// [`MAX_LOSS_PPM`] as a fraction.
pub const MAX_LOSS: f64 = MAX_LOSS_PPM as f64 / 1e6;

/// `x` rounded down to a count, within `0..=max`.
#[must_use]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped into range first; NaN becomes 0"
)]
pub fn count(x: f64, max: u64) -> u64 {
    if x.is_nan() { 0 } else { x.clamp(0.0, max as f64) as u64 }
}

/// One trial at one offered rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Trial {
    /// Offered rate, frames per second.
    pub offered_pps: f64,
    /// Frames sent.
    pub sent: u64,
    /// Frames that came back (or, for the receive ceiling, arrived).
    pub delivered: u64,
    /// Frames that reached the contestant's interface (counted by an XDP program in front of
    /// the contestant, where it has none of its own): loss before it is the generator core's.
    pub arrived: Option<u64>,
    /// CPU time the contestant's process used meanwhile, ns (user space and the kernel work of
    /// its system calls; none for XDP contestants).
    pub cpu_ns: Option<u64>,
}

impl Trial {
    /// Share of the frames lost (never negative: extra frames count as none lost).
    #[must_use]
    pub fn loss(&self) -> f64 {
        if self.sent == 0 { 1.0 } else { (1.0 - self.delivered as f64 / self.sent as f64).max(0.0) }
    }

    /// Whether the loss is within [`MAX_LOSS`] (exactly, in integers).
    #[must_use]
    pub fn passes(&self) -> bool {
        let lost = u128::from(self.sent.saturating_sub(self.delivered));
        self.sent > 0 && lost * 1_000_000 <= u128::from(self.sent) * u128::from(MAX_LOSS_PPM)
    }

    /// The rate frames came back at.
    #[must_use]
    pub fn delivered_pps(&self) -> f64 {
        self.offered_pps * (1.0 - self.loss())
    }
}

/// A search's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Found {
    /// The highest passing trial's delivered rate (0 if none passed), frames per second.
    pub pps: f64,
    /// The generator's top rate, and the contestant kept up with it: `pps` is a lower bound.
    pub generator_bound: bool,
    /// Contestant CPU time per delivered frame in the unpaced trial, ns, when it could not keep
    /// up there (saturated: the cost of a frame to its core, whatever else shared the core).
    pub cpu_ns_per_frame: Option<f64>,
    /// Every trial, in order.
    pub trials: Vec<Trial>,
}

/// Paced trials a search may add while none has passed.
const EXTRA_STEPS: usize = 4;

/// Searches with `measure(rate)` (`None`: unpaced), at most `steps` paced trials after the
/// unpaced one (plus [`EXTRA_STEPS`] while none has passed); stops early once the bracket is
/// within 1 %.
///
/// # Errors
/// A trial failed.
pub fn find(mut measure: impl FnMut(Option<f64>) -> Result<Trial>, steps: usize) -> Result<Found> {
    let top = measure(None)?;
    let mut trials = vec![top];
    if top.passes() {
        return Ok(Found { pps: top.delivered_pps(), generator_bound: true, cpu_ns_per_frame: None, trials });
    }
    let cpu_ns_per_frame =
        top.cpu_ns.filter(|_| top.delivered > 0).map(|ns| ns as f64 / top.delivered as f64);
    let mut best: Option<Trial> = None;
    let mut fail = top.offered_pps;
    let mut rate = top.delivered_pps().min(fail * 0.98).max(1.0);
    // Up to `steps` trials, and up to EXTRA_STEPS more while none has passed.
    for step in 0..steps + EXTRA_STEPS {
        if step >= steps && best.is_some() {
            break;
        }
        let trial = measure(Some(rate))?;
        trials.push(trial);
        if trial.passes() {
            if best.is_none_or(|b| trial.delivered_pps() > b.delivered_pps()) {
                best = Some(trial);
            }
        } else {
            fail = fail.min(trial.offered_pps.min(rate));
        }
        let pass = best.map_or(0.0, |b| b.offered_pps);
        if best.is_some() && fail - pass <= 0.01 * fail {
            break;
        }
        rate = match best {
            Some(_) => (pass * fail).sqrt(),
            None => trial.delivered_pps().clamp(rate * 0.5, rate * 0.9),
        };
    }
    Ok(Found {
        pps: best.map_or(0.0, |b| b.delivered_pps()),
        generator_bound: false,
        cpu_ns_per_frame,
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trial that offered `offered` pps for a second and delivered `delivered` frames.
    fn second(offered: f64, delivered: f64) -> Result<Trial> {
        Ok(Trial {
            offered_pps: offered,
            sent: count(offered, u64::MAX),
            delivered: count(delivered, u64::MAX),
            arrived: None,
            cpu_ns: None,
        })
    }

    /// A contestant forwarding up to `capacity` pps (losing the excess) behind a generator of
    /// `top` pps.
    fn model(capacity: f64, top: f64) -> impl FnMut(Option<f64>) -> Result<Trial> {
        move |rate| {
            let offered = rate.unwrap_or(top).min(top);
            second(offered, offered.min(capacity))
        }
    }

    #[test]
    fn finds_the_capacity_within_a_percent() {
        for capacity in [150_000.0, 1_234_567.0, 2_900_000.0] {
            let found = find(model(capacity, 3_000_000.0), 8).expect("search");
            assert!(!found.generator_bound);
            assert!(
                found.pps <= capacity * (1.0 + 1e-9) && found.pps > 0.98 * capacity,
                "{capacity}: {found:?}"
            );
        }
    }

    #[test]
    fn a_contestant_faster_than_the_generator_is_generator_bound() {
        let found = find(model(5e6, 3e6), 8).expect("search");
        assert!(found.generator_bound);
        assert_eq!(found.trials.len(), 1);
        assert!((found.pps - 3e6).abs() < 1.0);
    }

    #[test]
    fn a_contestant_that_loses_under_overload_is_searched_from_below() {
        // Delivers little when overloaded (livelock), all below 1 Mpps.
        let measure = |rate: Option<f64>| {
            let offered = rate.unwrap_or(4e6);
            let delivered = if offered <= 1e6 { offered } else { 2e5 };
            second(offered, delivered)
        };
        let found = find(measure, 12).expect("search");
        assert!(found.pps > 0.9e6 && found.pps <= 1e6, "{found:?}");
    }

    #[test]
    fn a_noisy_contestant_gets_extra_steps_until_a_rate_passes() {
        // Loses 1 % at every rate above 500 kpps: the four steps allowed end without a pass.
        let measure = |rate: Option<f64>| {
            let offered = rate.unwrap_or(1e6);
            let delivered = if offered <= 5e5 { offered } else { offered * 0.99 };
            second(offered, delivered)
        };
        let found = find(measure, 4).expect("search");
        assert!(found.pps > 0.0 && found.pps <= 5e5, "{found:?}");
        assert!(found.trials.len() <= 1 + 4 + EXTRA_STEPS);
    }

    #[test]
    fn loss_is_bounded() {
        let t = |sent, delivered| Trial { offered_pps: 1.0, sent, delivered, arrived: None, cpu_ns: None };
        assert!(t(100_000, 99_900).passes());
        assert!(!t(100_000, 99_899).passes());
        assert!((t(10, 12).loss()).abs() < f64::EPSILON, "extra frames are not negative loss");
        assert!(!t(0, 0).passes());
    }
}
