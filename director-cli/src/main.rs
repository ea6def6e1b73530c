//! `glb-director-cli`: compiles GLB forwarding tables and answers operators' questions about them.
//!
//! `build-config SRC DST` keeps GLB's exact interface and exit codes (0 success, 1 any error,
//! usage errors included) so it drops into existing reload commands; the other commands are ours.
#![forbid(unsafe_code)]

mod cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Compile and inspect GLB forwarding tables.
///
/// Tables are written in GLB's "GLBD" v2 binary format, byte-compatible with GLB's own
/// glb-director-cli, so either director can load them.
#[derive(Debug, Parser)]
#[command(name = "glb-director-cli", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile forwarding-table JSON into the binary table the director loads.
    ///
    /// Validates everything first: on any error nothing is written, the destination is left as it
    /// was, and every problem is listed with its JSON path. The destination is replaced
    /// atomically (temporary file in the same directory, fsync, rename), so a director reloading
    /// concurrently never sees a partial file.
    BuildConfig {
        /// Source forwarding table (JSON, GLB's format).
        src: PathBuf,
        /// Destination binary table.
        dst: PathBuf,
    },
    /// Check forwarding-table JSON and list every error and warning, without writing anything.
    ///
    /// Exits 0 when the file would build (warnings allowed), 1 otherwise.
    Validate {
        /// Source forwarding table (JSON).
        src: PathBuf,
    },
    /// Show a binary table: header, binds, backends with state and health, and how many rows
    /// each backend holds as primary and as secondary.
    Dump(cmd::dump::Args),
    /// Where does this client go? Hash a flow the way the director does and show its table,
    /// row, primary, secondary and tunnel hops.
    Lookup(cmd::lookup::Args),
    /// Compare two binary tables: how many rows change primary or secondary, per table and per
    /// backend — the blast radius of a change, before it is deployed.
    Diff(cmd::diff::Args),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are successes; every usage error exits 1, as GLB's CLI does.
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let mut out = String::new();
    let result = match cli.command {
        Command::BuildConfig { src, dst } => cmd::build::run(&src, &dst),
        Command::Validate { src } => cmd::validate::run(&src, &mut out),
        Command::Dump(args) => cmd::dump::run(&args, &mut out),
        Command::Lookup(args) => cmd::lookup::run(&args, &mut out),
        Command::Diff(args) => cmd::diff::run(&args, &mut out),
    }
    .and_then(|code| cmd::emit(&out).map(|()| code));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
