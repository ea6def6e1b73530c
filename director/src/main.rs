//! `glb-director`: GLB's command line (`--config-file`, `--forwarding-table`, `--debug`) plus the
//! offline pcap mode. Live packet I/O arrives with the director-runtime work.
#![forbid(unsafe_code)]

use anyhow::{Context, Result, bail};
use clap::Parser;
use forwarding_table::LoadedTable;
use glb_director::config::{DirectorConfig, parse_mac};
use glb_director::pcap;
use glb_director::pipeline::{Counters, DropReason, ForcedTable, Pipeline};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Outer Ethernet source address of encapsulated frames (the port's MAC).
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = mac)]
    local_mac: [u8; 6],
    /// Skip classification and send every frame to this table (GLB's pcap/stub tools use 0).
    #[arg(long)]
    force_table: Option<usize>,
}

fn mac(text: &str) -> Result<[u8; 6], String> {
    parse_mac(text).ok_or_else(|| format!("expected a MAC address like 02:00:00:00:00:01, found {text:?}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = if args.debug { "debug" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
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
    let pipeline = Pipeline::new(config.pipeline(args.local_mac));
    let (Some(pcap_in), Some(pcap_out)) = (&args.pcap_in, &args.pcap_out) else {
        bail!("live packet I/O is not available yet; run offline with --pcap-in and --pcap-out");
    };
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
