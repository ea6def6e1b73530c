//! `build-config SRC DST`: JSON → binary, written atomically.

use anyhow::{Context, Result};
use forwarding_table::build_binary;
use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Builds `src` into `dst`; on any error `dst` is untouched and no temporary file remains.
pub fn run(src: &Path, dst: &Path) -> Result<ExitCode> {
    let started = Instant::now();
    let Some(validated) = super::load_source(src)? else {
        eprintln!("error: {} was not written", dst.display());
        return Ok(ExitCode::FAILURE);
    };
    let bytes = build_binary(&validated.config);
    write_atomic(dst, &bytes)?;
    log::info!(
        "built {} table(s) from {} into {} ({} bytes) in {:.1} ms",
        validated.config.tables().len(),
        src.display(),
        dst.display(),
        bytes.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a temporary file beside `dst`, fsyncs it, renames it over `dst`, then fsyncs the
/// directory so the rename survives a crash. The temporary file is removed on every error path
/// (dropping an unpersisted `NamedTempFile` unlinks it).
fn write_atomic(dst: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Mode 0666 filtered by the umask, like GLB's CLI (a plain mkstemp file would be 0600).
    let mut tmp = tempfile::Builder::new()
        .prefix(".glb-table-")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes).context("cannot write the temporary table file")?;
    tmp.as_file().sync_all().context("cannot fsync the temporary table file")?;
    tmp.persist(dst)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename the temporary file to {}", dst.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync directory {}", dir.display()))?;
    Ok(())
}
