//! The GLB forwarding table, end to end: everything that gives a `forwarding_table.json` its meaning.
//!
//! Layers, each in its own module:
//! - [`model`]: serde structs for GLB's source and checked JSON, with GLB's field names and key order
//!   (the health checker reads and writes these).
//! - [`config`]: the raw JSON → validated domain types ([`config::Config`]) that cannot hold an invalid
//!   table. Every problem is reported with its JSON path, all at once.
//! - [`generate`]: rendezvous-hashed rows (GLB's candidate order, our row rule — see
//!   `../shared/spec/decisions.md` §2).
//! - [`binary`]: the "GLBD" v2 file: a writer, and a zero-copy reader that validates every field and
//!   every row index before handing out a view.
//! - [`lookup`]: flow fields → table, row, primary, secondary and hop list, without allocating; the
//!   director calls it per packet and `glb-director-cli lookup` calls the same code.
//!
//! - [`classify`]: binds → which table owns a packet, first match in file order.
//! - [`LoadedTable`]: an owned, validated table plus its classifier, what the director swaps in.
//!
//! [`hash`] holds the one SipHash-2-4 wrapper that both row generation and lookup use.
//!
//! This crate does no I/O beyond what the caller hands it (bytes and strings in, bytes out).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binary;
pub mod classify;
pub mod config;
pub mod generate;
pub mod hash;
mod loaded;
pub mod lookup;
pub mod model;

pub use binary::{BinaryError, TableFile, TableView, build_binary};
pub use classify::Classifier;
pub use config::{Config, ConfigError, Diagnostic};
pub use loaded::LoadedTable;
pub use lookup::{FlowKey, HashFields, Hops, Selection};

/// Rows in every table: GLB hashes a flow to `pkt_hash & 0xffff`.
pub const TABLE_ENTRIES: usize = 65_536;
/// Backend slots in every binary table block.
pub const MAX_BACKENDS: usize = 256;
/// Bind slots in every binary table block.
pub const MAX_BINDS: usize = 256;
