//! Opening the configured backend's devices for each worker.

use anyhow::{Context, Result, bail};
use glb_director::config::{Backend, DirectorConfig};
use glb_director::runtime::WorkerPorts;

/// The interface named by `io.interface` (required by the AF_PACKET and AF_XDP backends).
fn interface(config: &DirectorConfig) -> Result<&str> {
    config.io.interface.as_deref().context("io.interface must name the port's network interface")
}

/// The port's own MAC address, read from sysfs.
pub fn port_mac(config: &DirectorConfig) -> Result<[u8; 6]> {
    if config.io.backend == Backend::Dpdk {
        bail!("with the DPDK backend, give the port's MAC address with --local-mac");
    }
    let name = interface(config)?;
    let path = format!("/sys/class/net/{name}/address");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the MAC address of {name} ({path})"))?;
    glb_director::config::parse_mac(text.trim()).with_context(|| format!("{path} holds no MAC address"))
}

/// One `WorkerPorts` per configured worker.
pub fn open(config: &DirectorConfig, _local_mac: [u8; 6]) -> Result<Vec<WorkerPorts>> {
    let backend = config.io.backend;
    bail!("the {backend:?} backend is not available in this build")
}
