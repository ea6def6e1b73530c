//! `dump TABLE.bin [--json]`.

use super::outln;
use super::{hex, percent, proto_name, row_counts};
use anyhow::Result;
use forwarding_table::TableView;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dump`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Binary table (GLBD v2).
    table: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct DumpJson {
    version: u32,
    num_tables: usize,
    table_entries: usize,
    tables: Vec<TableJson>,
}

#[derive(Serialize)]
struct TableJson {
    index: usize,
    hash_key: String,
    binds: Vec<BindJson>,
    backends: Vec<BackendJson>,
}

#[derive(Serialize)]
struct BindJson {
    ip: String,
    prefix_len: u8,
    proto: String,
    port_start: u16,
    port_end: u16,
}

#[derive(Serialize)]
struct BackendJson {
    slot: usize,
    ip: String,
    state: &'static str,
    healthy: bool,
    primary_rows: usize,
    secondary_rows: usize,
}

fn table_json(table: &TableView<'_>) -> TableJson {
    let counts = row_counts(table);
    TableJson {
        index: table.index(),
        hash_key: hex(table.hash_key()),
        binds: table
            .binds()
            .map(|b| BindJson {
                ip: b.address.to_string(),
                prefix_len: b.prefix_len,
                proto: proto_name(b.proto),
                port_start: b.port_start,
                port_end: b.port_end,
            })
            .collect(),
        backends: table
            .backends()
            .zip(counts)
            .enumerate()
            .map(|(slot, (b, (primary_rows, secondary_rows)))| BackendJson {
                slot,
                ip: b.address.to_string(),
                state: b.state.name(),
                healthy: b.healthy,
                primary_rows,
                secondary_rows,
            })
            .collect(),
    }
}

/// Prints the table.
pub fn run(args: &Args, out: &mut String) -> Result<ExitCode> {
    let bytes = super::read_table(&args.table)?;
    let file = super::parse_table(&args.table, &bytes)?;
    let dump = DumpJson {
        version: forwarding_table::binary::layout::VERSION,
        num_tables: file.num_tables(),
        table_entries: forwarding_table::TABLE_ENTRIES,
        tables: file.tables().map(|t| table_json(&t)).collect(),
    };
    if args.json {
        outln!(out, "{}", serde_json::to_string_pretty(&dump)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        out,
        "{}: GLBD version {}, {} table(s) of {} rows",
        args.table.display(),
        dump.version,
        dump.num_tables,
        dump.table_entries
    );
    for table in &dump.tables {
        outln!(out);
        outln!(out, "table {}: hash_key {}", table.index, table.hash_key);
        outln!(out, "  binds ({}):", table.binds.len());
        for b in &table.binds {
            outln!(out, "    {} {}/{} ports {}-{}", b.proto, b.ip, b.prefix_len, b.port_start, b.port_end);
        }
        outln!(out, "  backends ({}):", table.backends.len());
        outln!(
            out,
            "    {:>4}  {:<39}  {:<17}  {:<9}  {:>15}  {:>15}",
            "slot",
            "ip",
            "state",
            "health",
            "primary rows",
            "secondary rows"
        );
        for b in &table.backends {
            outln!(
                out,
                "    {:>4}  {:<39}  {:<17}  {:<9}  {:>6} {:>7.2}%  {:>6} {:>7.2}%",
                b.slot,
                b.ip,
                b.state,
                if b.healthy { "healthy" } else { "unhealthy" },
                b.primary_rows,
                percent(b.primary_rows),
                b.secondary_rows,
                percent(b.secondary_rows)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
