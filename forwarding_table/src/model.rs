//! Serde structs of GLB's forwarding-table JSON: the operator's source file and the health
//! checker's checked file.
//!
//! Field order is GLB's (Go struct order), so serialising with `serde_json::to_string_pretty`
//! reproduces the checked file GLB's health checker writes, key for key. Unknown keys are dropped,
//! as GLB drops them. These structs carry the JSON as written; [`crate::config`] decides whether
//! it describes a valid table.

use serde::{Deserialize, Serialize};

/// A whole forwarding-table file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardingTableJson {
    /// Global health-check timing; GLB writes `null` when absent.
    #[serde(default)]
    pub healthchecks: Option<GlobalHealthchecks>,
    /// The tables, in order.
    pub tables: Vec<TableJson>,
}

/// Global health-check timing (0 or absent means GLB's default).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GlobalHealthchecks {
    /// Per-check timeout (default 1000 ms).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout_ms: u64,
    /// Time between rounds (default 2000 ms).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval_ms: u64,
    /// Consecutive results needed to flip a state (default 3).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trigger: u64,
}

#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableJson {
    /// Label used by the health checker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// 32 hex digits: the per-packet SipHash key.
    pub hash_key: String,
    /// 32 hex digits: the row-generation SipHash key.
    pub seed: String,
    /// VIPs of this table.
    pub binds: Vec<BindJson>,
    /// Proxies of this table.
    pub backends: Vec<BackendJson>,
}

/// One bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindJson {
    /// Address, optionally `/prefix-length`.
    pub ip: String,
    /// `"tcp"` or `"udp"`.
    pub proto: String,
    /// A single port (takes precedence over the range).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// First port of a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_start: Option<u16>,
    /// Last port of a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_end: Option<u16>,
}

/// One backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendJson {
    /// IPv4 address.
    pub ip: String,
    /// `active`, `filling`, `draining` or `inactive`.
    pub state: String,
    /// Health as last checked; absent reads as false.
    #[serde(default)]
    pub healthy: bool,
    /// Checks to run against this backend; GLB writes `null` when absent.
    #[serde(default)]
    pub healthchecks: Option<BackendHealthchecks>,
}

/// Per-backend checks: a port per check type.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BackendHealthchecks {
    /// HTTP GET port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<u16>,
    /// HTTP path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_uri: Option<String>,
    /// GUE tunnel probe port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gue: Option<u16>,
    /// FOU tunnel probe port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fou: Option<u16>,
    /// TCP connect port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle(file: &str) -> String {
        let path = format!("{}/../../shared/oracle/healthcheck/run1/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    // GLB's health checker wrote this file with Go's json.MarshalIndent; re-serialising our model
    // of it must give the same bytes (key order, nulls, omitted fields, indentation).
    #[test]
    fn reproduces_glb_checked_json_byte_for_byte() {
        let glb = oracle("forwarding_table.checked.json");
        let model: ForwardingTableJson = serde_json::from_str(&glb).expect("checked JSON parses");
        assert_eq!(serde_json::to_string_pretty(&model).expect("serialises"), glb);
    }

    // The source file has keys GLB drops and backends without `healthy`; the model reads it.
    #[test]
    fn reads_source_json_dropping_unknown_keys() {
        let model: ForwardingTableJson =
            serde_json::from_str(&oracle("forwarding_table.src.json")).expect("source JSON parses");
        let table = &model.tables[0];
        assert_eq!(table.name.as_deref(), Some("web"));
        assert_eq!(table.binds[1].port_start, Some(8080));
        assert!(!table.backends[0].healthy, "missing healthy reads as false");
        assert_eq!(table.backends[3].healthchecks, None);
        assert_eq!(table.backends[4].healthchecks, Some(BackendHealthchecks::default()));
        let global = model.healthchecks.expect("global healthchecks");
        assert_eq!((global.interval_ms, global.timeout_ms, global.trigger), (500, 200, 2));
    }
}
