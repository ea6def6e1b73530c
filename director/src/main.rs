//! `glb-director`: GLB's command line (`--config-file`, `--forwarding-table`, `--debug`): the
//! daemon on a real interface, or the offline pcap mode. Logs are GLB-style JSON lines.
#![forbid(unsafe_code)]

use anyhow::{Context, Result, bail};
use clap::Parser;
use forwarding_table::LoadedTable;
use glb_director::config::{DirectorConfig, parse_mac};
use glb_director::pcap;
use glb_director::pipeline::{Counters, DropReason, ForcedTable, Pipeline};
use glb_director::runtime::launch::{self, Launch};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// GLB-compatible L4 load-balancer director: classifies client packets against the forwarding
/// table's binds, hashes each flow to a row, and GUE-encapsulates it to the row's primary proxy.
#[derive(Debug, Parser)]
#[command(name = "glb-director", version, about)]
struct Args {
    /// director.conf (GLB's JSON format).
    #[arg(short = 'c', long)]
    config_file: PathBuf,
    /// Binary forwarding table built by `glb-director-cli build-config`.
    #[arg(short = 't', long)]
    forwarding_table: PathBuf,
    /// Debug logging.
    #[arg(short = 'v', long)]
    debug: bool,
    /// Offline mode: read frames from this pcap instead of a NIC.
    #[arg(long, requires = "pcap_out")]
    pcap_in: Option<PathBuf>,
    /// Offline mode: write forwarded (encapsulated) frames here, in input order.
    #[arg(long, requires = "pcap_in")]
    pcap_out: Option<PathBuf>,
    /// Offline mode: write kernel-path (unmatched) frames here, unchanged, in input order.
    #[arg(long, requires = "pcap_in")]
    kernel_out: Option<PathBuf>,
    /// Outer Ethernet source address of encapsulated frames. Default: the port's own MAC
    /// (daemon), 02:00:00:00:00:01 (pcap mode, as GLB's reference data).
    #[arg(long, value_parser = mac)]
    local_mac: Option<[u8; 6]>,
    /// Do not watch the table's directory (reload only on SIGUSR1/SIGHUP, as GLB).
    #[arg(long)]
    no_watch: bool,
    /// Skip classification and send every frame to this table (GLB's pcap/stub tools use 0).
    #[arg(long)]
    force_table: Option<usize>,
}

fn mac(text: &str) -> Result<[u8; 6], String> {
    parse_mac(text).ok_or_else(|| format!("expected a MAC address like 02:00:00:00:00:01, found {text:?}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.debug);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let config_path = args.config_file.display().to_string();
    let text = std::fs::read_to_string(&args.config_file)
        .with_context(|| format!("Configuration filename must be provided: cannot read {config_path}"))?;
    let config = DirectorConfig::parse(&config_path, &text).context("Could not load configuration.")?;
    let bytes = std::fs::read(&args.forwarding_table).with_context(|| {
        format!("Forwarding table filename must be provided: cannot read {}", args.forwarding_table.display())
    })?;
    let table = LoadedTable::from_bytes(bytes).context("glb-config loading failed")?;
    let (Some(pcap_in), Some(pcap_out)) = (&args.pcap_in, &args.pcap_out) else {
        return run_daemon(args, &config, table);
    };
    let pipeline = Pipeline::new(config.pipeline(args.local_mac.unwrap_or([2, 0, 0, 0, 0, 1])));
    let input =
        BufReader::new(File::open(pcap_in).with_context(|| format!("cannot open {}", pcap_in.display()))?);
    let tx = BufWriter::new(
        File::create(pcap_out).with_context(|| format!("cannot create {}", pcap_out.display()))?,
    );
    let kernel = match &args.kernel_out {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let counters = match args.force_table {
        Some(index) => {
            if index >= table.file().num_tables() {
                bail!("--force-table {index}: the table file has {} table(s)", table.file().num_tables());
            }
            pcap::run(&pipeline, &table, &ForcedTable(index), input, tx, kernel)?
        }
        None => pcap::run(&pipeline, &table, table.classifier(), input, tx, kernel)?,
    };
    println!("{}", summary(&counters));
    Ok(())
}

fn run_daemon(args: &Args, config: &DirectorConfig, table: LoadedTable) -> Result<()> {
    let launch = Launch {
        table_path: args.forwarding_table.clone(),
        local_mac: args.local_mac,
        watch: !args.no_watch,
    };
    Ok(launch::run(config, table, &launch)?)
}

/// GLB's log format: one JSON object per line, `{"timestamp": secs, "level": …, "message": …}`.
fn init_logging(debug: bool) {
    let level = if debug { "debug" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format(|buf, record| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
            let message = serde_json::Value::String(record.args().to_string());
            let level = record.level().as_str().to_ascii_lowercase();
            writeln!(buf, r#"{{"timestamp": {now:.6}, "level": "{level}", "message": {message}}}"#)
        })
        .init();
}

fn summary(c: &Counters) -> String {
    let drops: Vec<String> =
        DropReason::ALL.iter().map(|r| format!("{} {}", r.name(), c.dropped[r.index()])).collect();
    format!(
        "frames {}: forwarded {}, kernel {}, dropped {} ({})",
        c.received,
        c.forwarded,
        c.kernel,
        c.dropped.iter().sum::<u64>(),
        drops.join(", ")
    )
}
