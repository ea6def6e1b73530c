//! The Linux system interfaces more than one GLB binary needs, each behind a safe function:
//! [`bpf`] (raw `bpf(2)`: hand-assembled programs, maps, links, test runs — no clang, libbpf or
//! ELF), [`netdev`] (interface ioctls) and [`tun`] (TUN/TAP queues).
//!
//! This crate is one of the workspace's `sys` places: its modules opt into `unsafe`, each block
//! with a `// SAFETY:` comment, so the binaries built on it need none for these calls.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bpf;
pub mod netdev;
pub mod tun;

/// A system call failed, or an argument cannot be passed to it.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// An OS call failed.
    #[error("{what}")]
    Os {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An argument the kernel would reject (an interface name too long, ...).
    #[error("{0}")]
    Invalid(String),
}

impl SysError {
    /// Wraps an OS error with what was being done.
    pub fn os(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Os { what: what.into(), source }
    }

    /// The OS error number, if this is an OS error.
    #[must_use]
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Os { source, .. } => source.raw_os_error(),
            Self::Invalid(_) => None,
        }
    }
}
