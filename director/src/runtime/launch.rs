//! The daemon as `director.conf` describes it: each worker's devices opened with the configured
//! backend, then workers, control loop and endpoints until SIGINT/SIGTERM. This is the
//! `glb-director` binary's daemon mode; the line-rate harness runs the same function in a child
//! process, so it measures exactly what operators run.

use super::daemon::{Daemon, DaemonError, DaemonOptions, WorkerPorts, register_signals};
use super::export;
use super::table::TableHandle;
use super::worker::Idle;
use crate::config::{Backend, DirectorConfig, WorkerSpec};
use crate::io::af_packet::{AfPacket, default_fanout_group};
use crate::io::af_xdp::AfXdp;
use crate::io::tap::Tap;
use crate::io::{IoError, PacketIo, netdev};
use crate::pipeline::Pipeline;
use forwarding_table::LoadedTable;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// What the command line adds to `director.conf`.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The binary table file (watched and reloaded in place).
    pub table_path: PathBuf,
    /// Outer Ethernet source address; `None`: the port's own MAC.
    pub local_mac: Option<[u8; 6]>,
    /// Watch the table's directory for changes (else reload on signals only).
    pub watch: bool,
}

/// Runs the daemon with `table` until a stop signal; returns once every thread has stopped.
///
/// # Errors
/// A device cannot be opened, a thread or endpoint cannot start, or a worker failed.
pub fn run(config: &DirectorConfig, table: LoadedTable, launch: &Launch) -> Result<(), DaemonError> {
    let (workers, local_mac) = open_ports(config, launch.local_mac)?;
    let pipeline = Pipeline::new(config.pipeline(local_mac));
    let (stop, reload) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    register_signals(&stop, &reload).map_err(DaemonError::Signals)?;
    let tables = Arc::new(TableHandle::new(table));
    log::info!("forwarding table loaded: generation 1, digest {}", tables.current().digest);
    let options = DaemonOptions {
        table_path: launch.table_path.clone(),
        idle: match config.io.idle_sleep_us {
            0 => Idle::BusyPoll,
            us => Idle::Sleep(Duration::from_micros(us)),
        },
        statsd_port: Some(config.statsd_port),
        metrics_listen: config.io.metrics_listen,
        watch: launch.watch,
    };
    let daemon = Daemon::start(tables, pipeline, workers, &options, stop, reload)?;
    export::sd_notify_ready();
    log::info!("glb-director ready: {} worker(s)", config.io.workers.len());
    daemon.run(options.statsd_port)?;
    log::info!("glb-director stopped");
    Ok(())
}

/// A backend's per-worker ports and the port's MAC address.
type Opened = (Vec<Box<dyn PacketIo>>, [u8; 6]);

fn port_error(what: String) -> impl FnOnce(IoError) -> DaemonError {
    move |source| DaemonError::Port { what, source }
}

/// Each worker's devices and the port's MAC (`mac` overrides what the port reports).
///
/// # Errors
/// A device cannot be opened (no such interface, no privileges, a backend not built in).
pub fn open_ports(
    config: &DirectorConfig,
    mac: Option<[u8; 6]>,
) -> Result<(Vec<WorkerPorts>, [u8; 6]), DaemonError> {
    let workers = &config.io.workers;
    let mac_of = |name: &str| {
        netdev::mac_address(name)
            .map_err(IoError::from)
            .map_err(port_error(format!("no MAC address on {name}")))
    };
    let (ports, port_mac): Opened = match config.io.backend {
        Backend::AfPacket => {
            let name = interface(config)?;
            let group = default_fanout_group(name).map_err(port_error(format!("no interface {name}")))?;
            let ports = workers
                .iter()
                .map(|_| AfPacket::open(name, Some(group)).map(|p| Box::new(p) as Box<dyn PacketIo>))
                .collect::<Result<_, _>>()
                .map_err(port_error(format!("cannot open AF_PACKET sockets on {name}")))?;
            (ports, mac_of(name)?)
        }
        Backend::AfXdp => {
            let name = interface(config)?;
            let ports = workers
                .iter()
                .map(|w| AfXdp::open(name, u32::from(w.queue)).map(|p| Box::new(p) as Box<dyn PacketIo>))
                .collect::<Result<_, _>>()
                .map_err(port_error(format!("cannot open AF_XDP sockets on {name}")))?;
            (ports, mac_of(name)?)
        }
        Backend::Dpdk => dpdk(config, workers)?,
    };
    let local_mac = mac.unwrap_or(port_mac);
    let mut out = Vec::with_capacity(ports.len());
    for (spec, port) in workers.iter().zip(ports) {
        let kernel = match &config.io.kernel_interface {
            Some(name) => Some(Box::new(
                Tap::open(name, Some(local_mac))
                    .map_err(port_error(format!("cannot open the kernel-path device {name}")))?,
            ) as Box<dyn PacketIo>),
            None => None,
        };
        out.push(WorkerPorts { spec: *spec, port, kernel });
    }
    Ok((out, local_mac))
}

/// The interface named by `io.interface` (required by the AF_PACKET and AF_XDP backends).
fn interface(config: &DirectorConfig) -> Result<&str, DaemonError> {
    config.io.interface.as_deref().ok_or_else(|| DaemonError::Port {
        what: "io.interface must name the port's network interface".into(),
        source: IoError::Setup(format!("no interface for the {:?} backend", config.io.backend)),
    })
}

#[cfg(feature = "dpdk")]
fn dpdk(config: &DirectorConfig, workers: &[WorkerSpec]) -> Result<Opened, DaemonError> {
    use crate::io::dpdk::Dpdk;
    let eal = Dpdk::init(&config.io.dpdk_eal_args).map_err(port_error("cannot initialise DPDK".into()))?;
    let port_id = match &config.io.interface {
        Some(name) => eal.port_id(name).map_err(port_error(format!("no DPDK port {name}")))?,
        None => 0,
    };
    let queues = u16::try_from(workers.len())
        .map_err(|_| DaemonError::Thread(format!("too many workers: {}", workers.len())))?;
    let ports = eal
        .port(port_id, queues)
        .map_err(port_error(format!("cannot set up DPDK port {port_id}")))?
        .into_iter()
        .map(|q| Box::new(q) as Box<dyn PacketIo>)
        .collect();
    // Each queue holds the port and the EAL alive; dropping `eal` here releases nothing.
    Ok((ports, eal.mac(port_id).map_err(port_error(format!("no MAC address on DPDK port {port_id}")))?))
}

#[cfg(not(feature = "dpdk"))]
fn dpdk(_: &DirectorConfig, _: &[WorkerSpec]) -> Result<Opened, DaemonError> {
    Err(DaemonError::Port {
        what: "io.backend \"dpdk\"".into(),
        source: IoError::Setup(
            "this glb-director was built without DPDK support (cargo feature `dpdk`)".into(),
        ),
    })
}
