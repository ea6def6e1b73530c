//! `diff OLD.bin NEW.bin`: rows whose primary or secondary changes, per table and per backend.
//!
//! Backends are compared by address, not slot index: removing a backend from the middle of the
//! JSON list shifts every later slot, but moves no traffic by itself.

use super::outln;
use super::{percent, row_counts};
use anyhow::Result;
use forwarding_table::TableView;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The table deployed now.
    old: PathBuf,
    /// The candidate table.
    new: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct DiffJson {
    old_tables: usize,
    new_tables: usize,
    tables: Vec<TableDiff>,
}

#[derive(Serialize)]
struct TableDiff {
    index: usize,
    primary_changed: usize,
    secondary_changed: usize,
    either_changed: usize,
    backends: Vec<BackendDiff>,
}

/// One backend's row ownership before and after. `None` state: not in that table.
#[derive(Serialize, Default)]
struct BackendDiff {
    ip: String,
    old_state: Option<String>,
    new_state: Option<String>,
    old_primary_rows: usize,
    new_primary_rows: usize,
    primary_rows_gained: usize,
    primary_rows_lost: usize,
    old_secondary_rows: usize,
    new_secondary_rows: usize,
}

fn state(b: &forwarding_table::binary::BackendInfo) -> String {
    format!("{}/{}", b.state.name(), if b.healthy { "healthy" } else { "unhealthy" })
}

fn diff_table(old: &TableView<'_>, new: &TableView<'_>) -> TableDiff {
    let old_addr: Vec<IpAddr> = old.backends().map(|b| b.address).collect();
    let new_addr: Vec<IpAddr> = new.backends().map(|b| b.address).collect();
    let mut backends: BTreeMap<IpAddr, BackendDiff> = BTreeMap::new();
    for (b, (p, s)) in old.backends().zip(row_counts(old)) {
        let entry = backends.entry(b.address).or_default();
        entry.old_state = Some(state(&b));
        (entry.old_primary_rows, entry.old_secondary_rows) = (p, s);
    }
    for (b, (p, s)) in new.backends().zip(row_counts(new)) {
        let entry = backends.entry(b.address).or_default();
        entry.new_state = Some(state(&b));
        (entry.new_primary_rows, entry.new_secondary_rows) = (p, s);
    }
    let (mut primary_changed, mut secondary_changed, mut either_changed) = (0, 0, 0);
    for ((op, os), (np, ns)) in old.rows().zip(new.rows()) {
        let (op, os, np, ns) = (old_addr[op], old_addr[os], new_addr[np], new_addr[ns]);
        primary_changed += usize::from(op != np);
        secondary_changed += usize::from(os != ns);
        either_changed += usize::from(op != np || os != ns);
        if op != np {
            if let Some(b) = backends.get_mut(&op) {
                b.primary_rows_lost += 1;
            }
            if let Some(b) = backends.get_mut(&np) {
                b.primary_rows_gained += 1;
            }
        }
    }
    let backends = backends
        .into_iter()
        .map(|(ip, mut b)| {
            b.ip = ip.to_string();
            b
        })
        .collect();
    TableDiff { index: old.index(), primary_changed, secondary_changed, either_changed, backends }
}

/// Compares the two files table by table.
pub fn run(args: &Args, out: &mut String) -> Result<ExitCode> {
    let old_bytes = super::read_table(&args.old)?;
    let new_bytes = super::read_table(&args.new)?;
    let old = super::parse_table(&args.old, &old_bytes)?;
    let new = super::parse_table(&args.new, &new_bytes)?;
    let diff = DiffJson {
        old_tables: old.num_tables(),
        new_tables: new.num_tables(),
        tables: old.tables().zip(new.tables()).map(|(o, n)| diff_table(&o, &n)).collect(),
    };
    if args.json {
        outln!(out, "{}", serde_json::to_string_pretty(&diff)?);
        return Ok(ExitCode::SUCCESS);
    }
    if diff.old_tables != diff.new_tables {
        outln!(
            out,
            "table count changes from {} to {}: only the first {} are compared (the others hold all their rows anew)",
            diff.old_tables,
            diff.new_tables,
            diff.tables.len()
        );
    }
    for t in &diff.tables {
        outln!(
            out,
            "table {}: primary changes in {} rows ({:.2}%), secondary in {} rows ({:.2}%), either in {} rows ({:.2}%)",
            t.index,
            t.primary_changed,
            percent(t.primary_changed),
            t.secondary_changed,
            percent(t.secondary_changed),
            t.either_changed,
            percent(t.either_changed)
        );
        outln!(
            out,
            "  {:<39}  {:<27}  {:>23}  {:>8}  {:>8}  {:>17}",
            "backend",
            "state (old → new)",
            "primary rows old → new",
            "gained",
            "lost",
            "secondary old → new"
        );
        for b in &t.backends {
            let old_state = b.old_state.as_deref().unwrap_or("absent");
            let new_state = b.new_state.as_deref().unwrap_or("absent");
            let states = if old_state == new_state {
                old_state.to_owned()
            } else {
                format!("{old_state} → {new_state}")
            };
            outln!(
                out,
                "  {:<39}  {:<27}  {:>23}  {:>8}  {:>8}  {:>17}",
                b.ip,
                states,
                format!("{} → {}", b.old_primary_rows, b.new_primary_rows),
                format!("+{}", b.primary_rows_gained),
                format!("-{}", b.primary_rows_lost),
                format!("{} → {}", b.old_secondary_rows, b.new_secondary_rows)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
