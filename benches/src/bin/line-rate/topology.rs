//! The harness's network, built at start and removed on drop (also on error and Ctrl-C):
//!
//! ```text
//!  netns <gen> [gen_if] ⇄ veth ⇄ [dut_if] netns <dut>
//!   generator: live-frames XDP_TX out of gen_if      contestant: receives on dut_if and sends
//!   sink: XDP program on gen_if counting arrivals    back out of it (a director "on a stick")
//! ```
//!
//! Neither end has an IP address, IPv6 or ARP: nothing but the generator's frames and the
//! contestant's output crosses the link. The contestant's end drops the kernel's copy of every
//! frame as director/README.md asks of a director's port (`rp_filter`, no forwarding).

use anyhow::{Context, Result, bail};
use std::os::fd::AsFd;
use std::process::Command;

/// MAC of the generator's end (the director's gateway: its tunnels come back here).
pub const GEN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];
/// MAC of the contestant's end.
pub const DUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x01];
/// MTU of both ends: a 1518-byte IMIX frame plus the director's 44 bytes of tunnel headers.
pub const MTU: u32 = 1600;
/// Prefix of our namespace names, for removing leftovers of a killed run.
const NS_PREFIX: &str = "glblr-";

/// The two namespaces and the veth pair.
#[derive(Debug)]
pub struct Topology {
    /// The generator's namespace.
    pub gen_ns: String,
    /// The contestant's namespace.
    pub dut_ns: String,
    /// The generator's interface.
    pub gen_if: String,
    /// The contestant's interface.
    pub dut_if: String,
    /// `gen_if`'s index (in `gen_ns`).
    pub gen_ifindex: u32,
    /// `dut_if`'s index (in `dut_ns`).
    pub dut_ifindex: u32,
}

fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (iproute2; apt-get install iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl Topology {
    /// Creates the namespaces and the pair, named after this process.
    ///
    /// # Errors
    /// Not root, `ip` missing, or a setting refused.
    pub fn create() -> Result<Self> {
        remove_leftovers();
        let pid = std::process::id();
        let mut topo = Self {
            gen_ns: format!("{NS_PREFIX}{pid}-gen"),
            dut_ns: format!("{NS_PREFIX}{pid}-dut"),
            gen_if: format!("lrg{pid}"),
            dut_if: format!("lrd{pid}"),
            gen_ifindex: 0,
            dut_ifindex: 0,
        };
        // From here on, Drop removes whatever was made.
        ip(&["netns", "add", &topo.gen_ns])?;
        ip(&["netns", "add", &topo.dut_ns])?;
        #[rustfmt::skip]
        ip(&[
            "link", "add", &topo.gen_if, "netns", &topo.gen_ns, "type", "veth",
            "peer", "name", &topo.dut_if, "netns", &topo.dut_ns,
        ])?;
        let mtu = MTU.to_string();
        for (ns, dev, mac) in [(&topo.gen_ns, &topo.gen_if, GEN_MAC), (&topo.dut_ns, &topo.dut_if, DUT_MAC)] {
            #[rustfmt::skip]
            ip(&[
                "-n", ns, "link", "set", "dev", dev, "address", &mac_text(mac), "mtu", &mtu,
                "addrgenmode", "none", "arp", "off",
            ])?;
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
        }
        let dut_if = topo.dut_if.clone();
        in_netns(&topo.dut_ns, move || -> Result<()> {
            for (key, value) in [("forwarding", "0"), ("rp_filter", "1")] {
                let path = format!("/proc/sys/net/ipv4/conf/{dut_if}/{key}");
                std::fs::write(&path, value).with_context(|| format!("cannot write {path}"))?;
            }
            Ok(())
        })??;
        for (ns, dev) in [(&topo.gen_ns, &topo.gen_if), (&topo.dut_ns, &topo.dut_if)] {
            ip(&["-n", ns, "link", "set", "dev", dev, "up"])?;
        }
        topo.gen_ifindex = ifindex(&topo.gen_ns, &topo.gen_if)?;
        topo.dut_ifindex = ifindex(&topo.dut_ns, &topo.dut_if)?;
        Ok(topo)
    }
}

fn ifindex(ns: &str, dev: &str) -> Result<u32> {
    let name = dev.to_owned();
    in_netns(ns, move || glb_director::io::netdev::interface_index(&name))?
        .with_context(|| format!("no interface {dev} in {ns}"))
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.gen_ns, &self.dut_ns] {
            // Deleting a namespace destroys its end of the pair, and so the pair.
            if let Err(e) = ip(&["netns", "del", ns]) {
                log::warn!("cannot remove network namespace {ns}: {e:#}");
            }
        }
    }
}

/// Removes namespaces of earlier runs whose process is gone (killed before it could clean up).
fn remove_leftovers() {
    let Ok(list) = ip(&["netns", "list"]) else { return };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name.strip_prefix(NS_PREFIX).and_then(|rest| rest.split('-').next()) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        log::info!("removing network namespace {name} left by a run that was killed");
        let _ = ip(&["netns", "del", name]);
    }
}

/// Moves the calling thread into network namespace `ns` (threads it then starts inherit it).
///
/// # Errors
/// No such namespace, or not permitted.
pub fn enter(ns: &str) -> Result<()> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
    rustix::thread::move_into_link_name_space(file.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
        .with_context(|| format!("cannot enter network namespace {ns}"))
}

/// Runs `f` on a thread inside `ns` (sockets, BPF links and ifindex lookups it makes belong there).
///
/// # Errors
/// The namespace cannot be entered, or `f` panicked.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<T> {
                enter(ns)?;
                Ok(f())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("a thread in network namespace {ns} panicked"))?
    })
}
