//! Facts about the machine a run measured (performance.md §6.4's hygiene): kernel, CPU, TSC
//! rate, steal time over the run, load, and the source revision.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the report says about the machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// `/proc/cpuinfo`'s model name.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// TSC rate, GHz, calibrated against the monotonic clock (`None` without a TSC).
    pub tsc_ghz: Option<f64>,
    /// Share of CPU time stolen by the hypervisor during the run, percent.
    pub steal_percent: f64,
    /// 1-minute load average when the run started (other jobs on a shared machine).
    pub load_average_start: f64,
    /// Source revision (`git describe --always --dirty`), or "unknown".
    pub git: String,
    /// When the run started (UTC, ISO 8601).
    pub started_utc: String,
}

/// `/proc/stat`'s aggregate CPU times: (steal, total), in ticks.
fn cpu_times() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| l.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect())
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal guest guest_nice; guests are in user.
    let total = fields.iter().take(8).sum();
    (fields.get(7).copied().unwrap_or(0), total)
}

/// Measures the TSC's rate over `span`.
fn tsc_ghz(span: Duration) -> Option<f64> {
    let (t0, c0) = (Instant::now(), glb_director::sys::tsc::ticks()?);
    std::thread::sleep(span);
    let (t1, c1) = (Instant::now(), glb_director::sys::tsc::ticks()?);
    Some(c1.wrapping_sub(c0) as f64 / (t1 - t0).as_nanos() as f64)
}

/// Facts gathered at the start; [`Machine::finish`] adds the steal time.
#[derive(Debug)]
pub struct Probe {
    machine: Machine,
    start_times: (u64, u64),
}

impl Probe {
    /// Gathers the facts (takes about 100 ms to calibrate the TSC).
    #[must_use]
    pub fn start() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
            .map_or_else(|| "unknown".to_owned(), |m| m.trim().to_owned());
        let git = Command::new("git")
            .args(["-C", env!("CARGO_MANIFEST_DIR"), "describe", "--always", "--dirty", "--abbrev=12"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map_or_else(|| "unknown".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let machine = Machine {
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpu_model,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            tsc_ghz: tsc_ghz(Duration::from_millis(100)),
            steal_percent: 0.0,
            load_average_start: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0.0),
            git,
            started_utc: utc_now(),
        };
        Self { machine, start_times: cpu_times() }
    }

    /// The calibrated TSC rate, GHz.
    #[must_use]
    pub fn tsc_ghz(&self) -> Option<f64> {
        self.machine.tsc_ghz
    }

    /// The facts, with the steal time since [`Self::start`].
    #[must_use]
    pub fn finish(self) -> Machine {
        let (steal, total) = cpu_times();
        let (steal0, total0) = self.start_times;
        let total = total.saturating_sub(total0);
        Machine {
            steal_percent: if total == 0 {
                0.0
            } else {
                100.0 * steal.saturating_sub(steal0) as f64 / total as f64
            },
            ..self.machine
        }
    }
}

/// The current time as `YYYY-MM-DDThh:mm:ssZ`.
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(super::civil_from_days(20_454), (2026, 1, 1));
    }
}
