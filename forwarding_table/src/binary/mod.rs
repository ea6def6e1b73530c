//! The "GLBD" version 2 binary forwarding table (glb-director.md §3), byte-compatible with GLB.
//!
//! ```text
//! header (24 B): "GLBD" | version=2 | num_tables | 65536 | 256 | 256        (u32 LE each)
//! per table (537 624 B):
//!   num_backends u32 | 256 × backend slot (24 B) | num_binds u32 | 256 × bind slot (28 B)
//!   | hash_key (16 B) | 65 536 × row (primary u32, secondary u32)
//! ```
//!
//! [`layout`] spells the structs with explicit little-endian field types (zerocopy), so reading is
//! a checked cast with no unsafe code and no copying; [`TableFile::parse`] then validates every
//! field and every row index once, so code holding a [`TableView`] can index without checks.

pub mod layout;
mod read;
mod write;

pub use read::{BackendInfo, BinaryError, BindInfo, SlotState, TableFile, TableView};
pub use write::build_binary;
