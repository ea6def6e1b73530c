//! Check targets: what each backend asks to be probed, de-duplicated across tables (spec §1.5).

use forwarding_table::model::{BackendJson, ForwardingTableJson};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

/// A check type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// `GET http://ip:port/uri`, pass on status 200.
    Http,
    /// GUE-encapsulated ICMP echo, answered by a plain echo reply.
    Gue,
    /// Keyed-GRE-in-UDP (fou) encapsulated ICMP echo.
    Fou,
    /// TCP connect.
    Tcp,
}

impl CheckKind {
    /// The lowercase name used in the JSON and in logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Gue => "gue",
            Self::Fou => "fou",
            Self::Tcp => "tcp",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing to probe; equal targets anywhere in the file are probed once per round.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Target {
    /// Check type.
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// Backend address as written in the table (GLB does not validate it; a probe to an
    /// unusable address simply fails).
    pub ip: String,
    /// Port of the check.
    pub port: u16,
    /// Request path for http (`/` by default), empty otherwise.
    pub uri: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}{}", self.kind, self.ip, self.port, self.uri)
    }
}

/// The backend's targets in GLB's order (http, gue, fou, tcp). `inactive` backends and backends
/// without checks have none, which makes them healthy.
#[must_use]
pub fn backend_targets(backend: &BackendJson) -> Vec<Target> {
    let Some(checks) = backend.healthchecks.as_ref().filter(|_| backend.state != "inactive") else {
        return Vec::new();
    };
    let target = |kind, port, uri: &str| Target { kind, ip: backend.ip.clone(), port, uri: uri.to_owned() };
    let uri = checks.http_uri.as_deref().unwrap_or("/");
    [
        checks.http.map(|p| target(CheckKind::Http, p, uri)),
        checks.gue.map(|p| target(CheckKind::Gue, p, "")),
        checks.fou.map(|p| target(CheckKind::Fou, p, "")),
        checks.tcp.map(|p| target(CheckKind::Tcp, p, "")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every distinct target of every table.
#[must_use]
pub fn all_targets(table: &ForwardingTableJson) -> BTreeSet<Target> {
    table.tables.iter().flat_map(|t| &t.backends).flat_map(backend_targets).collect()
}

/// Where a non-inactive backend has no `healthchecks` key: GLB crashes on it (Q4); we treat it as
/// "no checks" (always healthy) and say so, as `tables[i].backends[j] (ip)`.
#[must_use]
pub fn backends_without_checks(table: &ForwardingTableJson) -> Vec<String> {
    let mut found = Vec::new();
    for (t, tab) in table.tables.iter().enumerate() {
        for (b, backend) in tab.backends.iter().enumerate() {
            if backend.healthchecks.is_none() && backend.state != "inactive" {
                found.push(format!("tables[{t}].backends[{b}] ({})", backend.ip));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle_source() -> ForwardingTableJson {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/oracle/healthcheck/run1/forwarding_table.src.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("oracle source")).expect("parses")
    }

    fn t(kind: CheckKind, ip: &str, port: u16, uri: &str) -> Target {
        Target { kind, ip: ip.into(), port, uri: uri.into() }
    }

    #[test]
    fn derives_run1_targets_deduplicated_with_default_uri() {
        let table = oracle_source();
        let backends = &table.tables[0].backends;
        assert_eq!(
            backend_targets(&backends[0]),
            [t(CheckKind::Http, "127.0.0.1", 18765, "/"), t(CheckKind::Tcp, "127.0.0.1", 18765, "")]
        );
        assert!(backend_targets(&backends[3]).is_empty(), "inactive has no targets");
        assert!(backend_targets(&backends[4]).is_empty(), "empty healthchecks has no targets");
        // GLB's run1 registered 5 targets (TargetsAdded: 5): the http and tcp of backend 0, the
        // /missing http, the tcp on 127.0.0.2 and the gue.
        assert_eq!(all_targets(&table).len(), 5);
        assert!(backends_without_checks(&table).is_empty(), "the inactive one is not reported");
    }

    #[test]
    fn all_four_types_in_glb_order_and_cross_table_dedup() {
        let json = r#"{"tables": [
          {"hash_key": "", "seed": "", "binds": [], "backends": [
            {"ip": "192.0.2.1", "state": "active", "healthchecks": {"tcp": 4, "fou": 3, "gue": 2, "http": 1, "http_uri": "/x"}},
            {"ip": "192.0.2.2", "state": "active"}]},
          {"hash_key": "", "seed": "", "binds": [], "backends": [
            {"ip": "192.0.2.1", "state": "filling", "healthchecks": {"gue": 2}},
            {"ip": "192.0.2.1", "state": "filling", "healthchecks": {"gue": 5}}]}]}"#;
        let table: ForwardingTableJson = serde_json::from_str(json).expect("parses");
        let kinds: Vec<_> = backend_targets(&table.tables[0].backends[0]).iter().map(|t| t.kind).collect();
        assert_eq!(kinds, [CheckKind::Http, CheckKind::Gue, CheckKind::Fou, CheckKind::Tcp]);
        assert_eq!(all_targets(&table).len(), 5, "the shared gue:2 counts once, gue:5 is distinct");
        assert_eq!(backends_without_checks(&table), ["tables[0].backends[1] (192.0.2.2)"]);
    }
}
