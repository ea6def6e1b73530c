//! The CPU instructions the director and its benchmark harness use that safe Rust does not
//! expose (kernel interfaces shared with other binaries live in `glb-sys`). Like the I/O
//! backends, this module opts into `unsafe`, each block with a `// SAFETY:` comment.
#![allow(unsafe_code, reason = "RDTSC and a cache prefetch hint")]

mod prefetch;
pub mod tsc;

pub use prefetch::prefetch;
