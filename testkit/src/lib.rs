//! Support for the workspace's privileged tests: network namespaces the test creates and removes
//! itself (also on panic), running code inside one, `ip` (iproute2) commands, and a raw
//! AF_PACKET socket as the independent observer of what went over an interface.
//!
//! Tests that need these run as root in CI; elsewhere [`require_root!`] returns early, saying why.
#![deny(unsafe_code)]

mod packet;

pub use packet::PacketSocket;

use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether the effective user is root.
#[must_use]
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid:\treal\teffective\tsaved\tfs"
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Returns from the test, saying why, when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root (network namespaces, veth, packet sockets, TUN, BPF)");
            return;
        }
    };
}

/// Runs `ip ARGS…` and returns its standard output; panics with its standard error on failure.
///
/// # Panics
/// `ip` is missing or fails.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("running ip (iproute2)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A unique name from `tag`, the process id and a per-process counter (namespaces of parallel
/// tests and test binaries never collide).
#[must_use]
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{tag}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A named network namespace (`ip netns add`), with `lo` up; deleted on drop, which also
/// destroys the interfaces inside it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name`.
    ///
    /// # Panics
    /// `ip netns add` fails (not root, name taken).
    #[must_use]
    pub fn new(name: &str) -> Self {
        ip(&["netns", "add", name]);
        let ns = Self { name: name.to_owned() };
        ns.ip(&["link", "set", "dev", "lo", "up"]);
        ns
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS…`.
    ///
    /// # Panics
    /// The command fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Writes `value` to the sysctl `key` (dotted, e.g. `net.ipv4.tcp_syncookies`) inside the
    /// namespace.
    ///
    /// # Panics
    /// The sysctl does not exist or cannot be written.
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(|| std::fs::write(&path, value)).unwrap_or_else(|e| panic!("sysctl {key}={value}: {e}"));
    }

    /// Runs `f` on a thread inside the namespace (sockets it creates stay in it).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.name, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Runs `f` on a thread inside network namespace `ns` (sockets it creates stay in `ns`).
///
/// # Panics
/// The namespace does not exist or `setns` fails.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns file");
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .expect("setns");
                f()
            })
            .join()
            .expect("netns thread")
    })
}
