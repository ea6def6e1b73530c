//! `lookup TABLE.bin --src IP …`: the director's answer for one flow, computed by the same
//! `forwarding_table::lookup` code the director runs per packet.

use super::outln;
use super::proto_name;
use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use forwarding_table::{Classifier, FlowKey, HashFields, TableFile, TableView};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `lookup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Binary table (GLBD v2).
    table: PathBuf,
    /// Client (source) address.
    #[arg(long)]
    src: IpAddr,
    /// VIP (destination) address; with --dport it selects the table by its binds.
    #[arg(long)]
    dst: Option<IpAddr>,
    /// Client (source) port.
    #[arg(long)]
    sport: Option<u16>,
    /// VIP (destination) port.
    #[arg(long)]
    dport: Option<u16>,
    /// Transport protocol, used to match binds.
    #[arg(long, value_enum, default_value_t = Proto::Tcp)]
    proto: Proto,
    /// Use this table instead of matching binds.
    #[arg(long)]
    table_index: Option<usize>,
    /// Fields hashed to pick the row (director.conf `hash_fields`), comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "src_addr")]
    hash_fields: Vec<HashField>,
    /// Fields of the migration hash (director.conf `alt_hash_fields`), comma-separated; adds
    /// the alternative primary and secondary as hops 3 and 4.
    #[arg(long, value_enum, value_delimiter = ',')]
    alt_hash_fields: Vec<HashField>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum HashField {
    SrcAddr,
    DstAddr,
    SrcPort,
    DstPort,
}

fn hash_fields(list: &[HashField]) -> Option<HashFields> {
    HashFields::new(
        list.contains(&HashField::SrcAddr),
        list.contains(&HashField::DstAddr),
        list.contains(&HashField::SrcPort),
        list.contains(&HashField::DstPort),
    )
}

#[derive(Serialize)]
struct Answer {
    table: usize,
    hash_fields: String,
    pkt_hash: String,
    row: u16,
    primary: BackendAnswer,
    secondary: BackendAnswer,
    hops: Vec<String>,
}

#[derive(Serialize)]
struct BackendAnswer {
    slot: usize,
    ip: String,
    state: &'static str,
    healthy: bool,
}

fn backend(table: &TableView<'_>, slot: usize) -> Result<BackendAnswer> {
    let b = table.backends().nth(slot).context("validated rows name used slots")?;
    Ok(BackendAnswer { slot, ip: b.address.to_string(), state: b.state.name(), healthy: b.healthy })
}

/// Resolves the flow and prints where it goes.
pub fn run(args: &Args, out: &mut String) -> Result<ExitCode> {
    let fields = hash_fields(&args.hash_fields).context("--hash-fields needs at least one field")?;
    let alt = hash_fields(&args.alt_hash_fields);
    for f in [fields].iter().chain(alt.iter()) {
        if f.dst_addr() && args.dst.is_none() {
            bail!("hashing dst_addr needs --dst");
        }
        if f.src_port() && args.sport.is_none() {
            bail!("hashing src_port needs --sport");
        }
        if f.dst_port() && args.dport.is_none() {
            bail!("hashing dst_port needs --dport");
        }
    }
    let unspecified = match args.src {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let dst = args.dst.unwrap_or(unspecified);
    if dst.is_ipv4() != args.src.is_ipv4() {
        bail!("--src and --dst must be of the same address family");
    }
    let bytes = super::read_table(&args.table)?;
    let file = super::parse_table(&args.table, &bytes)?;
    let table = choose_table(args, &file)?;
    let flow =
        FlowKey { src: args.src, dst, src_port: args.sport.unwrap_or(0), dst_port: args.dport.unwrap_or(0) };
    let selection = table.select(&flow, fields, alt);
    let answer = Answer {
        table: selection.table,
        hash_fields: fields.to_string(),
        pkt_hash: format!("{:016x}", selection.pkt_hash),
        row: selection.row,
        primary: backend(&table, selection.primary)?,
        secondary: backend(&table, selection.secondary)?,
        hops: selection.hops.as_slice().iter().map(ToString::to_string).collect(),
    };
    if args.json {
        outln!(out, "{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let show = |b: &BackendAnswer| {
            format!(
                "{} (slot {}, {}, {})",
                b.ip,
                b.slot,
                b.state,
                if b.healthy { "healthy" } else { "unhealthy" }
            )
        };
        outln!(out, "table      {}", answer.table);
        outln!(out, "hash       {} = {}", answer.hash_fields, answer.pkt_hash);
        outln!(out, "row        {}", answer.row);
        outln!(out, "primary    {}", show(&answer.primary));
        outln!(out, "secondary  {}", show(&answer.secondary));
        outln!(out, "hops       {}", answer.hops.join(" → "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--table-index`, else the table whose bind matches --dst/--dport/--proto (first in file
/// order, as the director), else the only table.
fn choose_table<'a>(args: &Args, file: &TableFile<'a>) -> Result<TableView<'a>> {
    if let Some(index) = args.table_index {
        return file
            .table(index)
            .with_context(|| format!("--table-index {index}: the file has {} table(s)", file.num_tables()));
    }
    match (args.dst, args.dport) {
        (Some(dst), Some(dport)) => {
            let proto = args.proto.number();
            let index = Classifier::new(file).transport(dst, proto, Some(dport)).with_context(|| {
                format!(
                    "no bind matches {} {dst} port {dport}: the director would hand this packet to the kernel",
                    proto_name(proto)
                )
            })?;
            file.table(index).context("classify returns an existing table")
        }
        _ if file.num_tables() == 1 => file.table(0).context("a valid file has a table"),
        _ => bail!(
            "the file has {} tables: give --dst and --dport to match binds, or --table-index",
            file.num_tables()
        ),
    }
}
