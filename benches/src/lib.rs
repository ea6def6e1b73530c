//! The workspace's benchmarks: Criterion benches (`benches/*.rs`, `cargo bench -p glb-benches`)
//! and the line-rate harness (`src/bin/line-rate`, `cargo run --release -p glb-benches --bin
//! line-rate`).
//!
//! The library holds what they share: the input builders, so every bench measures the same,
//! reproducible forwarding tables, and the [`pipeline`] workload.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod pipeline;

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Per-packet SipHash key (32 hex digits) of every bench table.
pub const HASH_KEY: &str = "12345678901234561234567890123456";

/// Row-generation seed (32 hex digits) of every bench table.
pub const SEED: &str = "49a3d861d661ae5ab06ed9326871a2f5";

/// How the backends of a bench table are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Every backend `active` and healthy.
    AllActive,
    /// A fixed, production-like spread: mostly active and healthy, with some `filling`,
    /// `draining`, `inactive` and unhealthy backends.
    Realistic,
}

/// Address of backend `index`: host `index + 1` of 198.18.0.0/15 (RFC 2544 benchmarking range).
///
/// # Panics
/// If `index` is outside the /15 (never for the ≤ 256 backends a table holds).
#[must_use]
pub fn backend_address(index: usize) -> Ipv4Addr {
    let host = u32::try_from(index + 1).expect("index fits in u32");
    assert!(host < 1 << 17, "backend {index} is outside 198.18.0.0/15");
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + host)
}

/// Forwarding-table JSON text of one table with `backends` IPv4 backends, one bind
/// (192.0.2.1 tcp 80) and the fixed [`HASH_KEY`] and [`SEED`].
#[must_use]
pub fn table_json(backends: usize, mix: Mix) -> String {
    table_json_with_bind(backends, mix, "192.0.2.1", "tcp", 80)
}

/// [`table_json`] with the bind `ip` `proto` (`"tcp"` or `"udp"`) `port`.
#[must_use]
pub fn table_json_with_bind(backends: usize, mix: Mix, ip: &str, proto: &str, port: u16) -> String {
    let mut list = String::new();
    for i in 0..backends {
        let (state, healthy) = match mix {
            Mix::AllActive => ("active", true),
            Mix::Realistic => state_of(i),
        };
        if i > 0 {
            list.push(',');
        }
        write!(list, r#"{{"ip":"{}","state":"{state}","healthy":{healthy}}}"#, backend_address(i))
            .expect("writing to a String cannot fail");
    }
    format!(
        r#"{{"tables":[{{"name":"bench","hash_key":"{HASH_KEY}","seed":"{SEED}","binds":[{{"ip":"{ip}","proto":"{proto}","port":{port}}}],"backends":[{list}]}}]}}"#
    )
}

/// The [`Mix::Realistic`] state of backend `i` (of 256: 4 inactive, 8 draining, 16 filling,
/// 5 active but unhealthy, the rest active and healthy).
fn state_of(i: usize) -> (&'static str, bool) {
    match i {
        _ if i % 64 == 63 => ("inactive", false),
        _ if i % 32 == 5 => ("draining", true),
        _ if i % 16 == 9 => ("filling", true),
        _ if i % 50 == 20 => ("active", false),
        _ => ("active", true),
    }
}
