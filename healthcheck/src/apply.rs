//! Target results → backend health in the table model (spec §1.4). Pure: no I/O, no clock.

use crate::dampener::Dampener;
use crate::status::TableSummary;
use crate::targets::{CheckKind, Target, backend_targets};
use forwarding_table::model::ForwardingTableJson;
use std::collections::BTreeMap;
use std::fmt;

/// What is known about one target.
#[derive(Debug, Clone)]
pub struct TargetState {
    /// Turns raw results into the reported state.
    pub dampener: Dampener,
    /// Whether the last raw check passed; `None` before the first.
    pub last_passed: Option<bool>,
    /// Why the last raw check failed.
    pub last_error: Option<String>,
}

impl TargetState {
    /// A target not checked yet, dampened with `trigger` in both directions.
    #[must_use]
    pub fn new(trigger: u64) -> Self {
        Self { dampener: Dampener::new(trigger, trigger), last_passed: None, last_error: None }
    }

    /// Feeds a raw result.
    pub fn record(&mut self, result: Result<(), String>) {
        self.dampener.push(result.is_ok());
        self.last_passed = Some(result.is_ok());
        self.last_error = result.err();
    }

    /// The dampened state; a target without a result counts as failing (GLB's zero value).
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.dampener.reported() == Some(true)
    }
}

/// A backend whose computed health differs from what the table held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// The table's name, if any.
    pub table: Option<String>,
    /// The backend's address.
    pub ip: String,
    /// Health before.
    pub old: bool,
    /// Health now.
    pub new: bool,
    /// Passing targets.
    pub successes: usize,
    /// Failing targets.
    pub failures: usize,
    /// Each target's type, dampened state and last error.
    pub checks: Vec<(CheckKind, bool, Option<String>)>,
}

impl fmt::Display for HealthChange {
    /// GLB's "Health state changed for backend" line, with its field names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Health state changed for backend tableName={} backendIp={} oldHealth={} newHealth={} successes={} failures={}",
            self.table.as_deref().unwrap_or(""),
            self.ip,
            self.old,
            self.new,
            self.successes,
            self.failures
        )?;
        for (kind, ok, error) in &self.checks {
            write!(f, " {kind}={ok}")?;
            if let Some(error) = error.as_ref().filter(|_| !ok) {
                write!(f, " {kind}Error={error:?}")?;
            }
        }
        Ok(())
    }
}

/// The result of [`apply`].
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Backends whose `healthy` changed, in file order.
    pub changes: Vec<HealthChange>,
    /// Healthy/unhealthy counts per table.
    pub summaries: Vec<TableSummary>,
}

/// Sets every backend's `healthy` to "all of its targets are healthy" and reports what changed.
/// Backends without targets (inactive, no checks) are healthy.
pub fn apply(table: &mut ForwardingTableJson, targets: &BTreeMap<Target, TargetState>) -> Applied {
    let mut applied = Applied::default();
    for tab in &mut table.tables {
        let mut summary = TableSummary { name: tab.name.clone(), healthy: 0, unhealthy: 0 };
        for backend in &mut tab.backends {
            let checks: Vec<_> = backend_targets(backend)
                .into_iter()
                .map(|t| match targets.get(&t) {
                    Some(state) => (t.kind, state.healthy(), state.last_error.clone()),
                    None => (t.kind, false, Some("not checked yet".to_owned())),
                })
                .collect();
            let successes = checks.iter().filter(|(_, ok, _)| *ok).count();
            let healthy = successes == checks.len();
            if healthy {
                summary.healthy += 1;
            } else {
                summary.unhealthy += 1;
            }
            if healthy != backend.healthy {
                applied.changes.push(HealthChange {
                    table: tab.name.clone(),
                    ip: backend.ip.clone(),
                    old: backend.healthy,
                    new: healthy,
                    successes,
                    failures: checks.len() - successes,
                    checks,
                });
                backend.healthy = healthy;
            }
        }
        applied.summaries.push(summary);
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ForwardingTableJson {
        serde_json::from_str(
            r#"{"tables": [{"name": "t", "hash_key": "", "seed": "", "binds": [], "backends": [
              {"ip": "192.0.2.1", "state": "active", "healthy": true, "healthchecks": {"http": 80, "tcp": 22}},
              {"ip": "192.0.2.2", "state": "active", "healthchecks": {"tcp": 22}},
              {"ip": "192.0.2.3", "state": "inactive"},
              {"ip": "192.0.2.4", "state": "active"},
              {"ip": "192.0.2.5", "state": "draining", "healthy": true, "healthchecks": {"gue": 19523}}]}]}"#,
        )
        .expect("test table")
    }

    fn state(passes: &[bool]) -> TargetState {
        let mut s = TargetState::new(2);
        for &p in passes {
            s.record(if p { Ok(()) } else { Err("refused".into()) });
        }
        s
    }

    #[test]
    fn backend_is_healthy_only_when_every_target_is() {
        let mut model = table();
        let all = crate::targets::all_targets(&model);
        let mut states: BTreeMap<_, _> = all.iter().map(|t| (t.clone(), state(&[true]))).collect();
        let http1 = all.iter().find(|t| t.kind == CheckKind::Http).expect("http target").clone();
        states.insert(http1, state(&[false]));
        let gue = all.iter().find(|t| t.kind == CheckKind::Gue).expect("gue target").clone();
        states.remove(&gue); // never checked: counts as failing

        let applied = apply(&mut model, &states);
        let healthy: Vec<bool> = model.tables[0].backends.iter().map(|b| b.healthy).collect();
        assert_eq!(healthy, [false, true, true, true, false]);
        assert_eq!(applied.summaries, [TableSummary { name: Some("t".into()), healthy: 3, unhealthy: 2 }]);
        let changed: Vec<&str> = applied.changes.iter().map(|c| c.ip.as_str()).collect();
        assert_eq!(changed, ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"]);
        let line = applied.changes[0].to_string();
        assert!(
            line.contains("backendIp=192.0.2.1 oldHealth=true newHealth=false successes=1 failures=1"),
            "{line}"
        );
        assert!(line.contains("http=false httpError=\"refused\" tcp=true"), "{line}");

        // Nothing changes on a second application with the same results.
        assert!(apply(&mut model, &states).changes.is_empty());
    }
}
