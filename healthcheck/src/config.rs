//! The service config (`healthcheck.conf`), the source table, and the timing settings the source
//! table carries.

use forwarding_table::model::{ForwardingTableJson, GlobalHealthchecks};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Why a config or source table could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("cannot parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde_json found, with line and column.
        source: serde_json::Error,
    },
    /// A required key is missing or empty.
    #[error("{path}: `{key}` is missing or empty")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: &'static str,
    },
}

/// `healthcheck.conf`: GLB's keys, plus one optional key of ours that GLB ignores.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceConfig {
    /// Where the tables are read from and written to.
    pub forwarding_table: TablePaths,
    /// Run through `/bin/sh -c` after each write of the checked table; `None` only logs.
    #[serde(default)]
    pub reload_command: Option<String>,
    /// How long the reload command may run before it is killed (ours; default 60 s).
    #[serde(default)]
    pub reload_timeout_ms: Option<u64>,
}

/// `forwarding_table.src` / `.dst`.
#[derive(Debug, Clone, Deserialize)]
pub struct TablePaths {
    /// The operator's source table.
    #[serde(default)]
    pub src: PathBuf,
    /// The checked table this service writes.
    #[serde(default)]
    pub dst: PathBuf,
}

/// Default for [`ServiceConfig::reload_timeout_ms`].
pub const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

impl ServiceConfig {
    /// Reads and checks the service config. Relative table paths are taken as they are (relative
    /// to the working directory), as GLB does.
    ///
    /// # Errors
    /// Unreadable file, invalid JSON, or an empty `src`/`dst` (GLB would fail every write
    /// silently with an empty `dst`; we refuse to start).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let config: Self = read_json(path)?;
        if config.forwarding_table.src.as_os_str().is_empty() {
            return Err(LoadError::Missing { path: path.to_owned(), key: "forwarding_table.src" });
        }
        if config.forwarding_table.dst.as_os_str().is_empty() {
            return Err(LoadError::Missing { path: path.to_owned(), key: "forwarding_table.dst" });
        }
        Ok(config)
    }

    /// The reload command's time limit.
    #[must_use]
    pub fn reload_timeout(&self) -> Duration {
        self.reload_timeout_ms.map_or(DEFAULT_RELOAD_TIMEOUT, Duration::from_millis)
    }
}

/// Reads a source (or checked) table with the shared model: unknown keys are dropped, as GLB does.
/// It is not validated the way `build-config` validates: GLB's health checker accepts tables the
/// CLI rejects (duplicate backend IPs, for one), and so do we.
///
/// # Errors
/// Unreadable file or JSON that does not fit the model.
pub fn load_table(path: &Path) -> Result<ForwardingTableJson, LoadError> {
    read_json(path)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
    serde_json::from_str(&text).map_err(|source| LoadError::Parse { path: path.to_owned(), source })
}

/// Round timing, from the source table's global `healthchecks` (0 or absent → GLB's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Time between the starts of two rounds.
    pub interval: Duration,
    /// Per-check limit.
    pub timeout: Duration,
    /// Consecutive identical results needed to flip a target's reported state.
    pub trigger: u64,
}

impl Timing {
    /// GLB's defaults: 2000 ms, 1000 ms, 3.
    pub const DEFAULT: Self =
        Self { interval: Duration::from_secs(2), timeout: Duration::from_secs(1), trigger: 3 };

    /// The timing a source table asks for.
    #[must_use]
    pub fn from_table(table: &ForwardingTableJson) -> Self {
        let global = table.healthchecks.clone().unwrap_or_default();
        let GlobalHealthchecks { interval_ms, timeout_ms, trigger } = global;
        let ms = |v: u64, default: Duration| if v == 0 { default } else { Duration::from_millis(v) };
        Self {
            interval: ms(interval_ms, Self::DEFAULT.interval),
            timeout: ms(timeout_ms, Self::DEFAULT.timeout),
            trigger: if trigger == 0 { Self::DEFAULT.trigger } else { trigger },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(json: &str) -> ForwardingTableJson {
        serde_json::from_str(json).expect("test table parses")
    }

    #[test]
    fn timing_defaults_apply_to_absent_and_zero_values() {
        assert_eq!(Timing::from_table(&table(r#"{"tables": []}"#)), Timing::DEFAULT);
        let t =
            Timing::from_table(&table(r#"{"healthchecks": {"interval_ms": 0, "trigger": 5}, "tables": []}"#));
        assert_eq!(t, Timing { trigger: 5, ..Timing::DEFAULT });
        let t = Timing::from_table(&table(
            r#"{"healthchecks": {"interval_ms": 500, "timeout_ms": 200, "trigger": 2}, "tables": []}"#,
        ));
        assert_eq!(
            t,
            Timing { interval: Duration::from_millis(500), timeout: Duration::from_millis(200), trigger: 2 }
        );
    }

    #[test]
    fn a_fractional_timing_value_is_a_parse_error_as_in_glb() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("src.json");
        std::fs::write(&path, r#"{"healthchecks": {"interval_ms": 1.5}, "tables": []}"#).expect("write");
        let err = load_table(&path).expect_err("fractional interval rejected");
        assert!(err.to_string().contains("src.json"), "{err}");
    }

    #[test]
    fn service_config_reads_glb_run1_config_and_requires_both_paths() {
        let run1 =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/oracle/healthcheck/run1/healthcheck.conf");
        let config = ServiceConfig::load(Path::new(run1)).expect("GLB's config loads");
        assert_eq!(config.forwarding_table.src, Path::new("forwarding_table.src.json"));
        assert_eq!(config.reload_command.as_deref(), Some("echo reload >> reload.log"));
        assert_eq!(config.reload_timeout(), DEFAULT_RELOAD_TIMEOUT);

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hc.conf");
        std::fs::write(&path, r#"{"forwarding_table": {"src": "a.json"}, "unknown": 1}"#).expect("write");
        let err = ServiceConfig::load(&path).expect_err("missing dst rejected");
        assert!(err.to_string().contains("forwarding_table.dst"), "{err}");
    }
}
