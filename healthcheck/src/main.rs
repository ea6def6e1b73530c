//! `glb-healthcheck --config=FILE`: GLB's health checker. See the crate README.
#![forbid(unsafe_code)]

use clap::Parser;
use glb_healthcheck::publish::DEFAULT_HOLD;
use glb_healthcheck::service::{Options, run};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Probe the backends of a GLB forwarding table and write the checked table.
///
/// Reads `forwarding_table.src` from the service config, checks every backend each interval
/// (http, tcp, gue, fou, as its `healthchecks` ask), writes `forwarding_table.dst` with
/// each backend's `healthy` flag when something changed, and runs `reload_command`.
/// SIGHUP re-reads the source table.
#[derive(Debug, Parser)]
#[command(name = "glb-healthcheck", version, about, long_about)]
struct Cli {
    /// Service config (JSON: forwarding_table.src, forwarding_table.dst, reload_command).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address of the /health and /metrics endpoint.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:19520")]
    listen: SocketAddr,
    /// Minimum time between two writes and reloads [default: 10000, GLB's fixed hold]. A SIGHUP
    /// always writes and reloads at once. Shorter holds suit labs and tests, not fleets.
    #[arg(long, value_name = "MS")]
    reload_hold_ms: Option<u64>,
}

fn main() -> ExitCode {
    let debug = std::env::var("GLB_HEALTHCHECK_LOG_DEBUG").is_ok_and(|v| v == "1");
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(if debug {
        "debug"
    } else {
        "info"
    }))
    .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version succeed; usage errors exit 1, like GLB's docopt.
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let options = Options {
        config: cli.config,
        listen: cli.listen,
        hold: cli.reload_hold_ms.map_or(DEFAULT_HOLD, Duration::from_millis),
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(options)).map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
