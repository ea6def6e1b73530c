//! One module per subcommand. Shared here: loading sources and binaries, and printing
//! diagnostics.

pub mod build;
pub mod diff;
pub mod dump;
pub mod lookup;
pub mod validate;

use anyhow::{Context, Result};
use forwarding_table::TableFile;
use forwarding_table::config::{self, ConfigError, Diagnostic, Validated};
use std::path::Path;

/// Reads and validates a source JSON file, printing every warning and error to stderr.
/// `Ok(None)` means the file is invalid (already reported).
pub fn load_source(src: &Path) -> Result<Option<Validated>> {
    let text = std::fs::read_to_string(src).with_context(|| format!("cannot read {}", src.display()))?;
    match config::parse(&text) {
        Ok(validated) => {
            print_diagnostics(src, "warning", &validated.warnings);
            Ok(Some(validated))
        }
        Err(ConfigError::Invalid { errors, warnings }) => {
            print_diagnostics(src, "warning", &warnings);
            print_diagnostics(src, "error", &errors);
            Ok(None)
        }
        Err(e @ ConfigError::Syntax { .. }) => {
            eprintln!("error: {}: {e}", src.display());
            Ok(None)
        }
    }
}

fn print_diagnostics(src: &Path, level: &str, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{level}: {}: {d}", src.display());
    }
}

/// Reads a binary table file into memory; parse it with [`parse_table`].
pub fn read_table(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Validates a binary table read by [`read_table`].
pub fn parse_table<'a>(path: &Path, bytes: &'a [u8]) -> Result<TableFile<'a>> {
    TableFile::parse(bytes).with_context(|| format!("{} is not a valid forwarding table", path.display()))
}

/// How many rows each backend slot holds as primary and as secondary.
pub fn row_counts(table: &forwarding_table::TableView<'_>) -> Vec<(usize, usize)> {
    let mut counts = vec![(0, 0); table.backend_slots().len()];
    for (primary, secondary) in table.rows() {
        counts[primary].0 += 1;
        counts[secondary].1 += 1;
    }
    counts
}

/// `n` rows as a share of the table.
pub fn percent(n: usize) -> f64 {
    // Row counts are at most 65 536, exactly representable.
    #[expect(clippy::cast_precision_loss, reason = "row counts are at most 65536")]
    let share = n as f64 * 100.0 / forwarding_table::TABLE_ENTRIES as f64;
    share
}

/// Protocol number → name for display.
pub fn proto_name(proto: u8) -> String {
    match proto {
        1 => "icmp".to_owned(),
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        n => n.to_string(),
    }
}

/// Lower-case hex of a key.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `writeln!` into a `String` buffer (which cannot fail); commands print the buffer with [`emit`].
macro_rules! outln {
    ($out:expr) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out);
    }};
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}
pub(crate) use outln;

/// Writes a command's output to stdout; a closed pipe (`| head`) ends output quietly instead of
/// panicking like `println!`.
pub fn emit(out: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
