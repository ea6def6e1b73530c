//! The contestants: whatever receives the generator's frames on the contestant's interface and
//! sends them (or, for the director, their tunnels) back out of it, on the contestant's core.
//!
//! - ceilings: XDP programs on the contestant's interface, `XDP_DROP` (what the generator can
//!   deliver into the interface) and `XDP_TX` (what can come back, with no work per frame);
//! - the DPDK peer: `dpdk-testpmd` io-forwarding (frames back unchanged) with `net_af_packet` or
//!   `net_af_xdp` on the interface (Debian's `dpdk-dev`);
//! - our director, `glb_director::runtime::launch::run` (what `glb-director` runs) in a child
//!   process started from this binary, with each backend.

use crate::topology::{GEN_MAC, Topology, in_netns};
use crate::xdp::{self, Counter, Then};
use anyhow::{Context, Result, anyhow, bail};
use glb_sys::bpf::{Program, XdpAction, XdpLink, XdpMode};
use rustix::process::{Pid, Signal};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The testpmd binary's name in Debian's `dpdk-dev`.
pub const TESTPMD: &str = "dpdk-testpmd";
/// Outer source address of the director's tunnels.
pub const TUNNEL_SRC: std::net::Ipv4Addr = std::net::Ipv4Addr::new(203, 0, 113, 1);
/// How long a process may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to stop after its signal, before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The packet-I/O path a peer or director uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// An XDP program in the driver.
    Xdp,
    /// AF_PACKET sockets (DPDK's `net_af_packet`).
    AfPacket,
    /// AF_XDP sockets in copy mode (DPDK's `net_af_xdp`).
    AfXdp,
    /// Our director's DPDK backend, over DPDK's `net_af_xdp`.
    DpdkAfXdp,
}

/// Why a contestant is in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An upper bound of the path.
    Ceiling,
    /// The peer we compare with.
    Peer,
    /// Our director.
    Ours,
}

/// One contestant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contestant {
    /// `XDP_DROP` (counting): the receive ceiling.
    XdpDrop,
    /// `XDP_TX` (counting): the bounce ceiling.
    XdpTx,
    /// `dpdk-testpmd --forward-mode=io` on a vdev.
    Testpmd(Backend),
    /// Our director with a backend.
    Director(Backend),
}

impl Contestant {
    /// Every contestant, in report order (our DPDK backend only when built in).
    #[must_use]
    pub fn all() -> Vec<Self> {
        let mut all = vec![
            Self::XdpDrop,
            Self::XdpTx,
            Self::Testpmd(Backend::AfPacket),
            Self::Testpmd(Backend::AfXdp),
            Self::Director(Backend::AfPacket),
            Self::Director(Backend::AfXdp),
        ];
        if cfg!(feature = "dpdk") {
            all.push(Self::Director(Backend::DpdkAfXdp));
        }
        all
    }

    /// Stable id (JSON, `--only`).
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Self::XdpDrop => "xdp_drop",
            Self::XdpTx => "xdp_tx",
            Self::Testpmd(Backend::AfPacket) => "testpmd_af_packet",
            Self::Testpmd(_) => "testpmd_af_xdp",
            Self::Director(Backend::AfPacket) => "director_af_packet",
            Self::Director(Backend::AfXdp | Backend::Xdp) => "director_af_xdp",
            Self::Director(Backend::DpdkAfXdp) => "director_dpdk_af_xdp",
        }
    }

    /// What the table calls it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::XdpDrop => "receive ceiling (XDP_DROP)",
            Self::XdpTx => "bounce ceiling (XDP_TX)",
            Self::Testpmd(Backend::AfPacket) => "testpmd io, net_af_packet",
            Self::Testpmd(_) => "testpmd io, net_af_xdp",
            Self::Director(Backend::AfPacket) => "glb-director, AF_PACKET",
            Self::Director(Backend::AfXdp | Backend::Xdp) => "glb-director, AF_XDP",
            Self::Director(Backend::DpdkAfXdp) => "glb-director, DPDK net_af_xdp",
        }
    }

    /// Its role.
    #[must_use]
    pub fn role(self) -> Role {
        match self {
            Self::XdpDrop | Self::XdpTx => Role::Ceiling,
            Self::Testpmd(_) => Role::Peer,
            Self::Director(_) => Role::Ours,
        }
    }

    /// Its packet-I/O path.
    #[must_use]
    pub fn backend(self) -> Backend {
        match self {
            Self::XdpDrop | Self::XdpTx => Backend::Xdp,
            Self::Testpmd(b) | Self::Director(b) => b,
        }
    }

    /// The testpmd contestant on the same kernel path, for ours.
    #[must_use]
    pub fn peer(self) -> Option<Self> {
        match self {
            Self::Director(Backend::AfPacket) => Some(Self::Testpmd(Backend::AfPacket)),
            Self::Director(_) => Some(Self::Testpmd(Backend::AfXdp)),
            _ => None,
        }
    }

    /// What bounds its rate on veth (the report's explanation, from profiles of this harness).
    #[must_use]
    pub fn limit(self) -> &'static str {
        match self {
            Self::XdpDrop => {
                "the generator core, which builds each live frame, transmits it into veth and runs the \
                 XDP_DROP program (veth has no interrupt: the receiving NAPI runs on the sending core)"
            }
            Self::XdpTx => {
                "the generator core again: on top of the receive ceiling's work, the bounce back \
                 through veth and the sink's XDP program"
            }
            Self::Testpmd(Backend::AfPacket) | Self::Director(Backend::AfPacket) => {
                "the contestant core's transmit path: per frame an skb, a copy and a veth transmit in the \
                 sendto, plus the sink's receive (veth copies the skb into a page for its XDP program), \
                 about three quarters of the core; the generator core builds the receive skb, copies it \
                 into the ring and drops the kernel's own copy"
            }
            Self::Testpmd(_) | Self::Director(Backend::DpdkAfXdp) => {
                "the contestant core's copy-mode transmit (an skb per frame, built in the sendto kick), \
                 the sink's receive on the same core, and the receive copy into the UMEM, which DPDK's \
                 af_xdp driver pulls onto its own core with a busy-polling recvfrom whenever its ring \
                 runs empty"
            }
            Self::Director(_) => {
                "the contestant core's copy-mode transmit (an skb per frame, built in the sendto kick) \
                 and the sink's receive on the same core, about three quarters of the core; the \
                 pipeline about a tenth; the receive copy into the UMEM stays on the generator core"
            }
        }
    }
}

/// Where a contestant runs.
#[derive(Debug)]
pub struct Env<'a> {
    /// The network.
    pub topo: &'a Topology,
    /// The contestant's core.
    pub core: usize,
    /// A core for threads that only wait (testpmd's main lcore): the generator's.
    pub idle_core: usize,
    /// Scratch directory (configs, logs, notify sockets).
    pub dir: &'a Path,
    /// The forwarding table file for the director.
    pub table: &'a Path,
    /// `dpdk-testpmd`, if installed.
    pub testpmd: Option<&'a Path>,
}

/// A started contestant.
#[derive(Debug)]
pub struct Running {
    /// Counts what the contestant's interface received (XDP contestants and AF_PACKET ones).
    pub dut_counter: Option<Counter>,
    /// Whether delivery is what `dut_counter` saw (the receive ceiling) rather than the sink.
    pub delivered_at_dut: bool,
    /// Held for its drop (detaches the program).
    _xdp: Option<(Program, XdpLink)>,
    process: Option<Process>,
}

impl Running {
    /// Frames delivered so far: at the sink, or (receive ceiling) at the contestant.
    ///
    /// # Errors
    /// A counter cannot be read.
    pub fn delivered(&self, sink: &Counter) -> Result<u64> {
        match (&self.dut_counter, self.delivered_at_dut) {
            (Some(counter), true) => counter.read(),
            _ => sink.read(),
        }
    }

    /// CPU time its process has used so far, ns (the sum over its threads' schedstat); `None`
    /// for XDP contestants.
    #[must_use]
    pub fn cpu_ns(&self) -> Option<u64> {
        let pid = self.process.as_ref()?.child.id();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        Some(
            tasks
                .flatten()
                .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
                .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
                .sum(),
        )
    }

    /// Fails if the contestant's process has exited.
    ///
    /// # Errors
    /// It has.
    pub fn check_alive(&mut self) -> Result<()> {
        match &mut self.process {
            Some(p) => p.check_alive(),
            None => Ok(()),
        }
    }

    /// Stops it (signal, then wait; killed after a timeout).
    ///
    /// # Errors
    /// The process exited with an error.
    pub fn stop(mut self) -> Result<()> {
        match self.process.take() {
            Some(p) => p.stop(),
            None => Ok(()),
        }
    }
}

/// Removes XDP programs attached to the contestant's interface through netlink rather than a
/// BPF link (libxdp's, which a killed testpmd leaves behind), so the next contestant can attach.
pub fn detach_leftovers(topo: &Topology) {
    let out = Command::new("ip")
        .args(["-n", &topo.dut_ns, "link", "set", "dev", &topo.dut_if, "xdp", "off"])
        .output();
    if let Err(e) = out {
        log::warn!("cannot run ip to detach XDP programs from {}: {e}", topo.dut_if);
    }
}

/// Attaches a counting program on the contestant's interface.
fn attach_counting(env: &Env<'_>, then: Then, name: &str) -> Result<(Counter, (Program, XdpLink))> {
    let counter = Counter::new(name)?;
    let program = xdp::load(&xdp::counting(&counter, then), name)?;
    let ifindex = env.topo.dut_ifindex;
    let link = in_netns(&env.topo.dut_ns, || program.attach_xdp(ifindex, XdpMode::Native))?
        .with_context(|| format!("attaching {name} to {}", env.topo.dut_if))?;
    Ok((counter, (program, link)))
}

/// Starts `contestant`.
///
/// # Errors
/// It cannot be started (testpmd missing, a process that fails or never becomes ready).
pub fn start(contestant: Contestant, env: &Env<'_>) -> Result<Running> {
    let counting = |then, delivered_at_dut| -> Result<Running> {
        let (counter, xdp) = attach_counting(env, then, "lr_dut")?;
        Ok(Running { dut_counter: Some(counter), delivered_at_dut, _xdp: Some(xdp), process: None })
    };
    match contestant {
        Contestant::XdpDrop => counting(Then::Always(XdpAction::Drop), true),
        Contestant::XdpTx => counting(Then::Always(XdpAction::Tx), false),
        Contestant::Testpmd(backend) | Contestant::Director(backend) => {
            // Frames the generator transmits with XDP reach a veth only if it has an XDP program
            // (which turns on its NAPI); AF_XDP contestants bring theirs, the others get a
            // counting XDP_PASS one.
            let mut running = if backend == Backend::AfPacket {
                counting(Then::Always(XdpAction::Pass), false)?
            } else {
                Running { dut_counter: None, delivered_at_dut: false, _xdp: None, process: None }
            };
            running.process = Some(match contestant {
                Contestant::Testpmd(_) => start_testpmd(env, backend)?,
                _ => start_director(env, backend)?,
            });
            Ok(running)
        }
    }
}

/// A child process with its log; stopped by a signal.
#[derive(Debug)]
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
    stop_signal: Signal,
    /// testpmd exits at EOF on stdin: keep it open.
    _stdin: Option<ChildStdin>,
}

impl Process {
    fn pid(&self) -> Result<Pid> {
        i32::try_from(self.child.id())
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| anyhow!("{}: bad process id {}", self.name, self.child.id()))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                bail!(
                    "{} exited ({status}); the end of its log ({}):\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                )
            }
            Err(e) => bail!("{}: {e}", self.name),
        }
    }

    fn stop(mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            let _ = rustix::process::kill_process(self.pid()?, self.stop_signal);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if status.success() || status.code() == Some(130) {
                    return Ok(());
                }
                bail!(
                    "{} stopped with {status}; the end of its log ({}):\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("{} did not stop within {STOP_TIMEOUT:?} of {:?}; killed", self.name, self.stop_signal);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Only reached without `stop` on an error path: do not leave it running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The EAL options every DPDK process here uses: no hugepages or PCI, a private runtime dir.
fn eal_common(prefix: &str) -> Vec<String> {
    ["--no-huge", "-m", "512", "--no-pci", "--no-telemetry", "--no-shconf"]
        .into_iter()
        .map(String::from)
        .chain([format!("--file-prefix={prefix}{}", std::process::id())])
        .collect()
}

/// The `--vdev` for `backend` on the contestant's interface. `net_af_packet` gets 4096 frames of
/// ring (8 MiB, what our AF_PACKET backend maps) instead of its default 512.
fn vdev(backend: Backend, interface: &str) -> String {
    match backend {
        Backend::AfPacket => {
            format!("net_af_packet0,iface={interface},qpairs=1,blocksz=4096,framesz=2048,framecnt=4096")
        }
        _ => format!("net_af_xdp0,iface={interface},start_queue=0,queue_count=1"),
    }
}

fn start_testpmd(env: &Env<'_>, backend: Backend) -> Result<Process> {
    let testpmd =
        env.testpmd.ok_or_else(|| anyhow!("{TESTPMD} is not installed (apt-get install dpdk-dev)"))?;
    let log = env.dir.join(format!("testpmd-{backend:?}.log"));
    // The main lcore only waits on stdin once forwarding has started: it goes on the generator's
    // core, so the forwarding lcore has its core to itself.
    let mut args: Vec<String> = vec!["--lcores".into(), format!("0@{},1@{}", env.idle_core, env.core)];
    args.extend(eal_common("lrpmd"));
    args.push(format!("--vdev={}", vdev(backend, &env.topo.dut_if)));
    args.extend(
        [
            "--",
            "--total-num-mbufs=16384",
            "--forward-mode=io",
            "--auto-start",
            "--nb-cores=1",
            "--rxq=1",
            "--txq=1",
        ]
        .map(String::from),
    );
    let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    // testpmd says it is forwarding on stdout: line-buffer it (coreutils' stdbuf).
    let mut child = Command::new("ip")
        .args(["netns", "exec", &env.topo.dut_ns, "stdbuf", "-oL"])
        .arg(testpmd)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {}", testpmd.display()))?;
    let stdin = child.stdin.take();
    let mut process = Process { name: "dpdk-testpmd", child, log, stop_signal: Signal::INT, _stdin: stdin };
    // Forwarding has started once it waits for Enter.
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        process.check_alive()?;
        if std::fs::read_to_string(&process.log).unwrap_or_default().contains("Press enter to exit") {
            return Ok(process);
        }
        if Instant::now() > deadline {
            bail!("dpdk-testpmd did not start forwarding within {START_TIMEOUT:?}:\n{}", process.log_tail());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_director(env: &Env<'_>, backend: Backend) -> Result<Process> {
    let name = format!("{backend:?}");
    let mac = GEN_MAC.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let mut io = serde_json::json!({
        "backend": match backend { Backend::AfPacket => "af_packet", Backend::DpdkAfXdp => "dpdk", _ => "af_xdp" },
        "interface": env.topo.dut_if,
        "workers": [{"core": env.core, "queue": 0}],
        "kernel_interface": false,
        "idle_sleep_us": 0,
    });
    if backend == Backend::DpdkAfXdp {
        let mut eal = vec!["-l".to_owned(), env.core.to_string()];
        eal.extend(eal_common("lrdir"));
        eal.push(format!("--vdev={}", vdev(backend, &env.topo.dut_if)));
        io["interface"] = "net_af_xdp0".into();
        io["dpdk_eal_args"] = eal.into();
    }
    let config = serde_json::json!({
        "outbound_gateway_mac": mac,
        "outbound_src_ip": TUNNEL_SRC.to_string(),
        "forward_icmp_ping_responses": false,
        "flow_paths": [{"rx_port": 0, "rx_queue": 0, "tx_port": 0, "tx_queue": 0}],
        "lcores": {format!("lcore-{}", env.core): {"rx": true, "tx": true, "flow_paths": [0]}},
        "io": io,
    });
    let config_path = env.dir.join(format!("director-{name}.json"));
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let notify = env.dir.join(format!("notify-{name}"));
    let _ = std::fs::remove_file(&notify);
    let socket = UnixDatagram::bind(&notify).with_context(|| format!("binding {}", notify.display()))?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let log = env.dir.join(format!("director-{name}.log"));
    let exe = std::env::current_exe().context("locating this executable")?;
    let child = Command::new("ip")
        .args(["netns", "exec", &env.topo.dut_ns])
        .arg(exe)
        .arg("director")
        .arg("--config-file")
        .arg(&config_path)
        .arg("--forwarding-table")
        .arg(env.table)
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?)
        .spawn()
        .context("starting the director")?;
    let mut process = Process { name: "glb-director", child, log, stop_signal: Signal::TERM, _stdin: None };
    let deadline = Instant::now() + START_TIMEOUT;
    let mut buf = [0u8; 64];
    loop {
        process.check_alive()?;
        if let Ok(n) = socket.recv(&mut buf)
            && buf[..n].starts_with(b"READY=1")
        {
            return Ok(process);
        }
        if Instant::now() > deadline {
            bail!("the director did not become ready within {START_TIMEOUT:?}:\n{}", process.log_tail());
        }
    }
}
