//! Any bytes (read as UTF-8, lossily) → `forwarding_table::config::parse`, the CLI's and the
//! health checker's reader of forwarding-table JSON.
//!
//! Must hold: parse plus validation never panics and every message renders; an accepted config
//! builds (`build_binary`) into a file that `TableFile::parse` accepts with the same tables,
//! counts and keys. Building is 65 536 rows × backends of SipHash per table, so it runs only for
//! small configs (≤ 8 backends in all) to keep the executions per second useful.
#![no_main]

use forwarding_table::config::{self, ConfigError};
use forwarding_table::{LoadedTable, TableFile};
use libfuzzer_sys::fuzz_target;

/// Larger inputs are skipped: the oracle's biggest table (300 backends) is about 32 KB.
const MAX_INPUT: usize = 64 * 1024;
/// Most backends, over all tables, for which an accepted config is also built.
const MAX_BUILD_BACKENDS: usize = 8;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let validated = match config::parse(&text) {
        Ok(validated) => validated,
        Err(error) => {
            let rendered = error.to_string();
            assert!(!rendered.is_empty());
            if let ConfigError::Invalid { errors, warnings } = &error {
                assert!(!errors.is_empty(), "rejected without an error");
                for diagnostic in errors.iter().chain(warnings) {
                    assert!(!diagnostic.to_string().is_empty());
                }
            }
            return;
        }
    };
    for warning in &validated.warnings {
        assert!(!warning.to_string().is_empty());
    }
    let tables = validated.config.tables();
    assert!(!tables.is_empty(), "accepted a config with no tables");
    for table in tables {
        assert!((1..=forwarding_table::MAX_BACKENDS).contains(&table.backends().len()));
        assert!((1..=forwarding_table::MAX_BINDS).contains(&table.binds().len()));
        for bind in table.binds() {
            assert!(!bind.to_string().is_empty());
        }
    }
    let backends: usize = tables.iter().map(|t| t.backends().len()).sum();
    if backends > MAX_BUILD_BACKENDS {
        return;
    }

    let bytes = forwarding_table::build_binary(&validated.config);
    let file = match TableFile::parse(&bytes) {
        Ok(file) => file,
        Err(error) => panic!("build_binary wrote a file its own reader rejects: {error}"),
    };
    assert_eq!(file.num_tables(), tables.len());
    for (view, table) in file.tables().zip(tables) {
        assert_eq!(view.backend_slots().len(), table.backends().len());
        assert_eq!(view.bind_slots().len(), table.binds().len());
        assert_eq!(view.hash_key(), table.hash_key());
    }
    LoadedTable::from_bytes(bytes).expect("a built table loads");
});
