//! Counters shared by the probes, the round loop and the HTTP endpoint; rendered as Prometheus text.
//!
//! Plain atomics: every increment comes from a different task and nothing needs a consistent
//! snapshot across counters.

use crate::status::Status;
use crate::targets::CheckKind;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// The check failed before the timeout.
    Fail,
    /// The check ran out of time.
    Timeout,
}

const KINDS: [CheckKind; 4] = [CheckKind::Http, CheckKind::Gue, CheckKind::Fou, CheckKind::Tcp];
const VERDICTS: [(Verdict, &str); 3] =
    [(Verdict::Pass, "pass"), (Verdict::Fail, "fail"), (Verdict::Timeout, "timeout")];

/// Every counter of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    checks: [[AtomicU64; 3]; 4],
    /// Completed rounds.
    pub rounds: AtomicU64,
    /// Backends whose computed health changed.
    pub backend_health_changes: AtomicU64,
    /// Checked-table writes that succeeded.
    pub table_writes: AtomicU64,
    /// Checked-table writes that failed (the reload command is then skipped).
    pub table_write_failures: AtomicU64,
    /// Reload-command runs that exited 0.
    pub reloads: AtomicU64,
    /// Reload-command runs that failed, timed out or could not start.
    pub reload_failures: AtomicU64,
    /// Rounds in which a pending write was held back by the hold.
    pub writes_held: AtomicU64,
    /// SIGHUP reloads of the source table that succeeded.
    pub source_reloads: AtomicU64,
    /// SIGHUP reloads of the source table that failed (old state kept).
    pub source_reload_failures: AtomicU64,
    /// Tunnel probes sent.
    pub tunnel_probes_sent: AtomicU64,
    /// Packets read from the raw ICMP socket.
    pub icmp_received: AtomicU64,
    /// Echo replies that completed a pending tunnel check.
    pub icmp_matched: AtomicU64,
    /// Echo replies with a probe token no check is waiting for (late or duplicate).
    pub icmp_unmatched: AtomicU64,
}

impl Metrics {
    /// Counts one finished check.
    pub fn count_check(&self, kind: CheckKind, verdict: Verdict) {
        let k = KINDS.iter().position(|&c| c == kind).unwrap_or(0);
        let v = VERDICTS.iter().position(|&(x, _)| x == verdict).unwrap_or(0);
        self.checks[k][v].fetch_add(1, Ordering::Relaxed);
    }

    /// Increments a counter (a shorthand that keeps call sites short).
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters plus the gauges of `status`.
    #[must_use]
    pub fn render(&self, status: &Status) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str("# HELP glb_healthcheck_checks_total Finished checks by type and result.\n");
        out.push_str("# TYPE glb_healthcheck_checks_total counter\n");
        for (k, kind) in KINDS.iter().enumerate() {
            for (v, (_, name)) in VERDICTS.iter().enumerate() {
                let n = get(&self.checks[k][v]);
                let _ =
                    writeln!(out, "glb_healthcheck_checks_total{{type=\"{kind}\",result=\"{name}\"}} {n}");
            }
        }
        let counters = [
            ("rounds_total", "Completed check rounds.", &self.rounds),
            (
                "backend_health_changes_total",
                "Backend health flips written to the table.",
                &self.backend_health_changes,
            ),
            ("table_writes_total", "Successful writes of the checked table.", &self.table_writes),
            ("table_write_failures_total", "Failed writes of the checked table.", &self.table_write_failures),
            ("reloads_total", "Reload-command runs that exited 0.", &self.reloads),
            ("reload_failures_total", "Reload-command runs that failed or timed out.", &self.reload_failures),
            ("writes_held_total", "Rounds in which a pending write waited for the hold.", &self.writes_held),
            ("source_reloads_total", "Successful SIGHUP reloads of the source table.", &self.source_reloads),
            (
                "source_reload_failures_total",
                "Failed SIGHUP reloads (previous state kept).",
                &self.source_reload_failures,
            ),
            ("tunnel_probes_sent_total", "GUE/FOU probes sent.", &self.tunnel_probes_sent),
            ("icmp_received_total", "Packets read from the raw ICMP socket.", &self.icmp_received),
            ("icmp_matched_total", "Echo replies that completed a tunnel check.", &self.icmp_matched),
            (
                "icmp_unmatched_total",
                "Probe echo replies nobody waited for (late or duplicate).",
                &self.icmp_unmatched,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP glb_healthcheck_{name} {help}");
            let _ = writeln!(out, "# TYPE glb_healthcheck_{name} counter");
            let _ = writeln!(out, "glb_healthcheck_{name} {}", get(counter));
        }
        let healthy_targets = status.targets.iter().filter(|t| t.healthy == Some(true)).count();
        out.push_str("# HELP glb_healthcheck_targets Distinct check targets, by dampened state.\n");
        out.push_str("# TYPE glb_healthcheck_targets gauge\n");
        let _ = writeln!(out, "glb_healthcheck_targets{{state=\"healthy\"}} {healthy_targets}");
        let _ = writeln!(
            out,
            "glb_healthcheck_targets{{state=\"unhealthy\"}} {}",
            status.targets.len() - healthy_targets
        );
        out.push_str("# HELP glb_healthcheck_backends Backends per table, by health as last computed.\n");
        out.push_str("# TYPE glb_healthcheck_backends gauge\n");
        for (i, table) in status.tables.iter().enumerate() {
            let name = escape_label(table.name.as_deref().unwrap_or(""));
            for (state, n) in [("healthy", table.healthy), ("unhealthy", table.unhealthy)] {
                let _ = writeln!(
                    out,
                    "glb_healthcheck_backends{{table=\"{i}\",name=\"{name}\",state=\"{state}\"}} {n}"
                );
            }
        }
        out
    }
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::TableSummary;

    #[test]
    fn renders_counters_and_escaped_table_names() {
        let m = Metrics::default();
        m.count_check(CheckKind::Tcp, Verdict::Timeout);
        Metrics::inc(&m.rounds);
        let status = Status {
            tables: vec![TableSummary { name: Some("we\"b".into()), healthy: 2, unhealthy: 1 }],
            ..Status::default()
        };
        let text = m.render(&status);
        assert!(text.contains("glb_healthcheck_checks_total{type=\"tcp\",result=\"timeout\"} 1\n"), "{text}");
        assert!(text.contains("glb_healthcheck_checks_total{type=\"tcp\",result=\"pass\"} 0\n"), "{text}");
        assert!(text.contains("glb_healthcheck_rounds_total 1\n"), "{text}");
        assert!(
            text.contains("glb_healthcheck_backends{table=\"0\",name=\"we\\\"b\",state=\"unhealthy\"} 1\n"),
            "{text}"
        );
    }
}
