//! `glb-director`: the data path of a GLB-style L4 load-balancer director.
//!
//! [`pipeline`] is the sans-I/O per-packet path (classify, hash, GUE-encapsulate) with GLB's
//! exact output bytes; [`config`] reads GLB's `director.conf`; [`pcap`] runs the pipeline over a
//! capture file, the test path that needs no NIC; [`io`] is the batch packet-I/O interface and
//! its backends; [`runtime`] runs workers on cores and swaps tables without stopping them;
//! [`sys`] wraps kernel interfaces (raw `bpf(2)`) for the backends and the benchmark harness.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod io;
pub mod pcap;
pub mod pipeline;
pub mod runtime;
pub mod sys;
