//! The director daemon around the pipeline: workers pinned to cores, the table in force and its
//! hot reload, and the counters operators read.

pub mod control;
pub mod daemon;
pub mod export;
pub mod launch;
pub mod stats;
pub mod table;
pub mod worker;

pub use control::{Control, ControlStats, WorkerLink};
pub use daemon::{Daemon, DaemonError, DaemonOptions, WorkerPorts, register_signals};
pub use stats::{StatsSnapshot, WorkerStats};
pub use table::{Generation, SeenGeneration, TableHandle};
pub use worker::{FLUSH_BURSTS, Idle, Worker};
