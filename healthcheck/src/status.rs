//! What `/health` and `/metrics` show: a snapshot the round loop publishes after every change.

use crate::targets::Target;
use serde::Serialize;

/// The whole state, as served by `/health`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Completed rounds since start.
    pub rounds: u64,
    /// Every distinct target, in a stable order.
    pub targets: Vec<TargetStatus>,
    /// Per-table backend counts, as last computed.
    pub tables: Vec<TableSummary>,
}

/// One target's state.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    /// What is probed.
    #[serde(flatten)]
    pub target: Target,
    /// The dampened state used for backend health; `null` before the first result (counts as
    /// unhealthy, as in GLB).
    pub healthy: Option<bool>,
    /// Whether the last raw check passed; `null` before the first.
    pub last_check_passed: Option<bool>,
    /// Why the last raw check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Healthy and unhealthy backends of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSummary {
    /// The table's `name`, if any.
    pub name: Option<String>,
    /// Backends written `healthy: true`.
    pub healthy: usize,
    /// Backends written `healthy: false`.
    pub unhealthy: usize,
}
