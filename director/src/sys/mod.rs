//! Thin, safe wrappers over kernel and CPU interfaces that have no maintained safe crate, shared
//! by the I/O backends and the benchmark harness. Like the backends, this is a module of the crate
//! that opts into `unsafe`, each block with a `// SAFETY:` comment.
#![allow(unsafe_code, reason = "raw bpf(2) system calls with kernel-defined attribute layouts; RDTSC")]

pub mod bpf;
pub mod tsc;
