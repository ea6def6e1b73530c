//! `validate SRC`: every error and warning, nothing written.

use super::outln;
use anyhow::Result;
use forwarding_table::config::BackendState;
use std::path::Path;
use std::process::ExitCode;

/// Validates `src`, prints a per-table summary when it would build.
pub fn run(src: &Path, out: &mut String) -> Result<ExitCode> {
    let Some(validated) = super::load_source(src)? else {
        return Ok(ExitCode::FAILURE);
    };
    let tables = validated.config.tables();
    outln!(out, "{}: OK, {} table(s), {} warning(s)", src.display(), tables.len(), validated.warnings.len());
    for (i, table) in tables.iter().enumerate() {
        let count = |state| table.backends().iter().filter(|b| b.state == state).count();
        let healthy = table.backends().iter().filter(|b| b.healthy).count();
        outln!(
            out,
            "  table {i}{}: {} bind(s), {} backend(s): {} active, {} filling, {} draining, {} inactive; {} healthy",
            table.name().map(|n| format!(" ({n})")).unwrap_or_default(),
            table.binds().len(),
            table.backends().len(),
            count(BackendState::Active),
            count(BackendState::Filling),
            count(BackendState::Draining),
            count(BackendState::Inactive),
            healthy,
        );
    }
    Ok(ExitCode::SUCCESS)
}
