//! `glb-redirect`: GLB's proxy-side second-chance agent in userspace. See the crate README.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::Parser;
use glb_redirect::cookie::CookieCheck;
use glb_redirect::stats::{Registry, WorkerCounters};
use glb_redirect::worker::{Resources, Worker};
use glb_redirect::{device, diag, http, sys};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// GLB's proxy-side agent: GUE decapsulation and second-chance forwarding, without kernel
/// modules.
///
/// Receives GLB's GUE datagrams on UDP (--listen). The inner packet of a SYN, of a flow a local
/// socket knows, of an ACK with a valid SYN cookie, or of anything that is not TCP is written to
/// the TUN device (--tun), where the kernel handles it as if it had arrived for the VIP and
/// answers the client directly. Other TCP packets are sent on to the next proxy of the GUE hop
/// list, or taken locally when none is left. Counters: GET /stats (GLB's
/// /proc/glb_redirect_stats format) and GET /metrics (Prometheus) on --stats-listen.
///
/// Needs CAP_NET_ADMIN (TUN device, addresses), CAP_NET_RAW (forwarding) and, to recognise
/// SYN-cookie ACKs, CAP_BPF. SIGTERM or SIGINT stop it.
#[derive(Debug, Parser)]
#[command(name = "glb-redirect", version, about, long_about)]
struct Cli {
    /// UDP address GUE arrives on (IPv4: GLB's outer headers are always IPv4).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:19523")]
    listen: SocketAddrV4,
    /// Worker threads, each with its own socket (SO_REUSEPORT) and TUN queue.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// TUN device to deliver to: attached to if it exists, created otherwise.
    #[arg(long, value_name = "NAME", default_value = "glbtun0")]
    tun: String,
    /// A VIP (IPv4 or IPv6; repeat for several): added to the TUN device (IPv4 /32, IPv6 /128
    /// nodad), which is then brought up with loose rp_filter. Without --vip the device's
    /// addresses and state are left to the operator.
    #[arg(long = "vip", value_name = "ADDR")]
    vips: Vec<IpAddr>,
    /// Address of the /stats and /metrics endpoint.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:19521")]
    stats_listen: SocketAddr,
    /// Debug logging.
    #[arg(long)]
    debug: bool,
}

/// How often a worker blocked in receive looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);
/// Receive buffer of each GUE socket.
const RECEIVE_BUFFER: usize = 4 << 20;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let level = if cli.debug { "debug" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let workers = usize::from(cli.workers);
    let queues = device::open_queues(&cli.tun, workers)
        .with_context(|| format!("cannot open TUN device {} (needs CAP_NET_ADMIN)", cli.tun))?;
    if cli.vips.is_empty() {
        log::info!("{}: attached; no --vip, so its addresses and state are left as they are", cli.tun);
    } else {
        device::configure(&cli.tun, &cli.vips).with_context(|| format!("cannot configure {}", cli.tun))?;
    }
    let cookie = match CookieCheck::load() {
        Ok(check) => Some(Arc::new(check)),
        Err(e) => {
            log::warn!(
                "SYN-cookie ACKs will not be recognised (treated as carrying no cookie): loading the BPF \
                 check failed (needs CAP_BPF and CAP_NET_ADMIN): {e}"
            );
            None
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let mut registry = Registry { workers: Vec::new(), syn_cookie_check: cookie.is_some() };
    let mut prepared = Vec::with_capacity(workers);
    for tun in queues {
        let io = Resources {
            gue: sys::gue_socket(cli.listen, STOP_POLL, RECEIVE_BUFFER)
                .with_context(|| format!("cannot listen for GUE on UDP {}", cli.listen))?,
            raw: sys::raw_socket().context("cannot open the raw forwarding socket (needs CAP_NET_RAW)")?,
            diag: sys::netlink_socket(diag::NETLINK_SOCK_DIAG, Duration::from_secs(1))
                .context("cannot open a sock_diag netlink socket")?,
            tun,
            cookie: cookie.clone(),
            port: cli.listen.port(),
        };
        let counters = Arc::new(WorkerCounters::default());
        registry.workers.push(Arc::clone(&counters));
        prepared.push(Worker::new(io, counters, Arc::clone(&stop)));
    }
    let stats_listener = std::net::TcpListener::bind(cli.stats_listen)
        .with_context(|| format!("cannot listen on {} for /stats", cli.stats_listen))?;
    stats_listener.set_nonblocking(true)?;

    let mut threads = Vec::with_capacity(workers);
    for (id, worker) in prepared.into_iter().enumerate() {
        let thread = std::thread::Builder::new()
            .name(format!("glb-redirect-{id}"))
            .spawn(move || worker.run(id))
            .context("cannot start a worker thread")?;
        threads.push(thread);
    }
    log::info!(
        "GUE on udp {} ({workers} worker(s)), delivering to {}, forwarding via raw socket; SYN-cookie check {}; \
         stats on http://{}/stats",
        cli.listen,
        cli.tun,
        if registry.syn_cookie_check { "on" } else { "off" },
        cli.stats_listen
    );

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(stats_listener)?;
        let server = tokio::spawn(http::serve(listener, Arc::new(registry)));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let signal = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        };
        log::info!("{signal}: stopping");
        server.abort();
        anyhow::Ok(())
    });
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        if thread.join().is_err() {
            log::error!("a worker thread panicked");
        }
    }
    result
}
