//! Opening the configured backend's devices for each worker, and the port's MAC address.

use anyhow::{Context, Result};
use glb_director::config::{Backend, DirectorConfig, WorkerSpec};
use glb_director::io::af_packet::{AfPacket, default_fanout_group};
use glb_director::io::af_xdp::AfXdp;
use glb_director::io::tap::Tap;
use glb_director::io::{PacketIo, netdev};
use glb_director::runtime::WorkerPorts;

/// A backend's per-worker ports and the port's MAC address.
type Opened = (Vec<Box<dyn PacketIo>>, [u8; 6]);

/// Each worker's devices and the port's MAC (`mac` overrides what the port reports).
pub fn open(config: &DirectorConfig, mac: Option<[u8; 6]>) -> Result<(Vec<WorkerPorts>, [u8; 6])> {
    let workers = &config.io.workers;
    let (ports, port_mac): Opened = match config.io.backend {
        Backend::AfPacket => {
            let name = interface(config)?;
            let group = default_fanout_group(name)?;
            let ports = workers
                .iter()
                .map(|_| AfPacket::open(name, Some(group)).map(|p| Box::new(p) as Box<dyn PacketIo>))
                .collect::<Result<_, _>>()
                .with_context(|| format!("cannot open AF_PACKET sockets on {name}"))?;
            (ports, netdev::mac_address(name)?)
        }
        Backend::AfXdp => {
            let name = interface(config)?;
            let ports = workers
                .iter()
                .map(|w| AfXdp::open(name, u32::from(w.queue)).map(|p| Box::new(p) as Box<dyn PacketIo>))
                .collect::<Result<_, _>>()
                .with_context(|| format!("cannot open AF_XDP sockets on {name}"))?;
            (ports, netdev::mac_address(name)?)
        }
        Backend::Dpdk => dpdk(config, workers)?,
    };
    let local_mac = mac.unwrap_or(port_mac);
    let mut out = Vec::with_capacity(ports.len());
    for (spec, port) in workers.iter().zip(ports) {
        let kernel = match &config.io.kernel_interface {
            Some(name) => Some(Box::new(
                Tap::open(name, Some(local_mac))
                    .with_context(|| format!("cannot open the kernel-path device {name}"))?,
            ) as Box<dyn PacketIo>),
            None => None,
        };
        out.push(WorkerPorts { spec: *spec, port, kernel });
    }
    Ok((out, local_mac))
}

/// The interface named by `io.interface` (required by the AF_PACKET and AF_XDP backends).
fn interface(config: &DirectorConfig) -> Result<&str> {
    config.io.interface.as_deref().context("io.interface must name the port's network interface")
}

#[cfg(feature = "dpdk")]
fn dpdk(config: &DirectorConfig, workers: &[WorkerSpec]) -> Result<Opened> {
    use glb_director::io::dpdk::Dpdk;
    let eal = Dpdk::init(&config.io.dpdk_eal_args).context("cannot initialise DPDK")?;
    let port_id = match &config.io.interface {
        Some(name) => eal.port_id(name)?,
        None => 0,
    };
    let queues = u16::try_from(workers.len()).context("too many workers")?;
    let ports = eal.port(port_id, queues)?.into_iter().map(|q| Box::new(q) as Box<dyn PacketIo>).collect();
    // Each queue holds the port and the EAL alive; dropping `eal` here releases nothing.
    Ok((ports, eal.mac(port_id)?))
}

#[cfg(not(feature = "dpdk"))]
fn dpdk(_: &DirectorConfig, _: &[WorkerSpec]) -> Result<Opened> {
    anyhow::bail!("this glb-director was built without DPDK support (cargo feature `dpdk`)")
}
