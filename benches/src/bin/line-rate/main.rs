//! `line-rate`: our director against its ceilings and a DPDK peer, on veth, in one run.
//!
//! Builds two network namespaces joined by a veth pair, pushes 64-byte frames and an IMIX of
//! 65 536 clients into the contestant's end with a live-frames XDP generator on one core, and
//! for each contestant on another core (XDP_DROP and XDP_TX ceilings, `dpdk-testpmd` io-forward
//! over `net_af_packet` and `net_af_xdp`, our director with each backend), interleaved over
//! rounds, finds the highest rate forwarded with at most 0.1 % loss. Checks a sample of our
//! director's tunnels, measures the pipeline in process, and writes `results.md`,
//! `results.json` and `results.svg`. Needs root. README.md "Line rate" shows how to run it.
#![forbid(unsafe_code)]

mod contestants;
mod frames;
mod generator;
mod machine;
mod report;
mod search;
mod topology;
mod verify;
mod xdp;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use contestants::{Contestant, Env, Role, TESTPMD, TUNNEL_SRC};
use forwarding_table::HashFields;
use forwarding_table::LoadedTable;
use frames::{Mix, VIP, VIP_PORT};
use generator::Generator;
use glb_benches::Mix as TableMix;
use glb_benches::pipeline::{Kind, Runner, Traffic, Workload};
use glb_sys::bpf::XdpMode;
use report::{BUDGETS, ContestantReport, PipelineCost, Report, Rounds, Settings, Status};
use search::Trial;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use verify::{Capture, Checked, GueCheck};
use xdp::{Counter, Then};

/// Our director against its ceilings (XDP_DROP, XDP_TX) and dpdk-testpmd, on a veth pair.
///
/// Needs root (namespaces, veth, BPF). Takes about 6 minutes (`--quick`: under a minute); the
/// machine should be otherwise idle. Writes results.md, results.json and results.svg to --out.
#[derive(Debug, Parser)]
#[command(name = "line-rate", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// One round of short trials: under a minute (a smoke test of the whole harness).
    #[arg(long)]
    quick: bool,
    /// Rounds: every contestant once per round, order rotated [default: 5; --quick: 1]. Rates on a
    /// shared machine move between rounds; the median of five is steadier than of three.
    #[arg(long)]
    rounds: Option<usize>,
    /// Length of one trial in milliseconds [default: 500; --quick: 150].
    #[arg(long, value_name = "MS")]
    trial_ms: Option<u64>,
    /// Most paced trials per rate search [default: 7; --quick: 4].
    #[arg(long)]
    steps: Option<usize>,
    /// Results folder.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// Core of the frame generator.
    #[arg(long, default_value_t = 0)]
    generator_core: usize,
    /// Core of the contestant (and of the in-process pipeline measurement).
    #[arg(long, default_value_t = 1)]
    contestant_core: usize,
    /// Run only these contestants, comma-separated: xdp_drop, xdp_tx, testpmd_af_packet,
    /// testpmd_af_xdp, director_af_packet, director_af_xdp, director_dpdk_af_xdp.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    only: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// (Internal) the director daemon, as `glb-director --config-file … --forwarding-table …`
    /// runs it: the harness starts it in the contestant's namespace.
    #[command(hide = true)]
    Director {
        #[arg(long)]
        config_file: PathBuf,
        #[arg(long)]
        forwarding_table: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The harness's own capture socket is a director AF_PACKET port: its info lines are noise
    // here, but not in the director child's log.
    let filter = if cli.command.is_some() { "info" } else { "info,glb_director=warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter)).init();
    let result = match &cli.command {
        Some(Sub::Director { config_file, forwarding_table }) => director(config_file, forwarding_table),
        None => run(&cli),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The director child: the daemon exactly as `glb-director` runs it.
fn director(config_file: &Path, table_file: &Path) -> Result<ExitCode> {
    use glb_director::config::DirectorConfig;
    use glb_director::runtime::launch::{self, Launch};
    let text =
        std::fs::read_to_string(config_file).with_context(|| format!("reading {}", config_file.display()))?;
    let config = DirectorConfig::parse(&config_file.display().to_string(), &text)?;
    let table = LoadedTable::from_bytes(std::fs::read(table_file)?)
        .with_context(|| format!("loading {}", table_file.display()))?;
    let launch = Launch { table_path: table_file.to_owned(), local_mac: None, watch: false };
    launch::run(&config, table, &launch)?;
    Ok(ExitCode::SUCCESS)
}

/// How long the contestant gets to settle before its searches, and after each trial for frames
/// in flight to arrive.
fn warm_up(quick: bool) -> Duration {
    Duration::from_millis(if quick { 200 } else { 1000 })
}
const DRAIN: Duration = Duration::from_millis(50);
/// Pause between one contestant's end and the next one's start.
const SETTLE: Duration = Duration::from_millis(200);

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `name` on `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(name)).find(|p| p.is_file())
}

/// The director's table: one bind (UDP [`VIP`]:[`VIP_PORT`]), 64 backends in the bench's
/// realistic mix of states.
fn table_bytes() -> Result<Vec<u8>> {
    let json = glb_benches::table_json_with_bind(64, TableMix::Realistic, &format!("{VIP}"), "udp", VIP_PORT);
    let validated =
        forwarding_table::config::parse(&json).map_err(|e| anyhow::anyhow!("bench table: {e:?}"))?;
    Ok(forwarding_table::build_binary(&validated.config))
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if !is_root() {
        bail!("line-rate needs root: it creates network namespaces and veth pairs and loads XDP programs");
    }
    let settings = Settings {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        quick: cli.quick,
        rounds: cli.rounds.unwrap_or(if cli.quick { 1 } else { 5 }).max(1),
        trial_seconds: cli.trial_ms.unwrap_or(if cli.quick { 150 } else { 500 }) as f64 / 1e3,
        search_steps: cli.steps.unwrap_or(if cli.quick { 4 } else { 7 }),
        max_loss: search::MAX_LOSS,
        generator_core: cli.generator_core,
        contestant_core: cli.contestant_core,
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if settings.generator_core == settings.contestant_core
        || settings.generator_core >= cores
        || settings.contestant_core >= cores
    {
        bail!(
            "the generator and the contestant need two different cores of the {cores} available (got {} and {})",
            settings.generator_core,
            settings.contestant_core
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing signal handlers")?;
    }
    std::fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    let probe = machine::Probe::start();

    let mut contestants = Contestant::all();
    if !cli.only.is_empty() {
        contestants.retain(|c| cli.only.iter().any(|id| id == c.id()));
        if contestants.is_empty() {
            bail!(
                "--only matches no contestant (ids: {})",
                Contestant::all().iter().map(|c| c.id()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let testpmd = find_on_path(TESTPMD);
    let mut notes = Vec::new();
    if testpmd.is_none() {
        notes.push(format!("{TESTPMD} is absent: install Debian's dpdk-dev to run the DPDK peer."));
        log::warn!("{TESTPMD} is absent (apt-get install dpdk-dev): the testpmd contestants are skipped");
    }
    if !cfg!(feature = "dpdk") {
        notes.push(
            "Our director's DPDK backend was not built: run with `--features dpdk` (needs libdpdk-dev) to include it."
                .into(),
        );
    }

    // What ran, for a look afterwards: configs, the table, every process's log.
    let scratch = cli.out.join("run");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let table_path = scratch.join("forwarding_table.bin");
    let table = table_bytes()?;
    std::fs::write(&table_path, &table)?;
    let check = GueCheck::new(LoadedTable::from_bytes(table)?, TUNNEL_SRC);

    let topo = topology::Topology::create()?;
    let sink = Counter::new("lr_sink")?;
    let sink_program = xdp::load(&xdp::counting(&sink, Then::SampleOneIn { bits: 10 }), "lr_sink")?;
    let gen_ifindex = topo.gen_ifindex;
    let _sink_link =
        topology::in_netns(&topo.gen_ns, || sink_program.attach_xdp(gen_ifindex, XdpMode::Native))?
            .context("attaching the sink to the generator's interface")?;
    let capture = Capture::start(&topo, check)?;
    let generator = Generator::start(&topo, settings.generator_core)?;
    let env = Env {
        topo: &topo,
        core: settings.contestant_core,
        idle_core: settings.generator_core,
        dir: &scratch,
        table: &table_path,
        testpmd: testpmd.as_deref(),
    };

    let trial = Duration::from_secs_f64(settings.trial_seconds);
    let mut results: HashMap<(Contestant, Mix), Rounds> = HashMap::new();
    let mut errors: HashMap<Contestant, Vec<String>> = HashMap::new();
    let mut checks: HashMap<Contestant, Checked> = HashMap::new();
    let runnable: Vec<Contestant> = contestants
        .iter()
        .copied()
        .filter(|c| !matches!(c, Contestant::Testpmd(_)) || testpmd.is_some())
        .collect();
    for round in 0..settings.rounds {
        let mut order = runnable.clone();
        let shift = round % order.len().max(1);
        order.rotate_left(shift);
        for contestant in order {
            if stop.load(Ordering::Relaxed) {
                bail!("interrupted");
            }
            log::info!("round {}/{}: {}", round + 1, settings.rounds, contestant.label());
            let outcome = measure(contestant, &env, &generator, &sink, &capture, &settings, trial, &stop);
            let (found, checked) = match outcome {
                Ok(x) => x,
                Err(e) => {
                    log::error!("{}: {e:#}", contestant.label());
                    errors.entry(contestant).or_default().push(format!("round {}: {e:#}", round + 1));
                    (HashMap::new(), Checked::default())
                }
            };
            for mix in Mix::ALL {
                results.entry((contestant, mix)).or_default().push(found.get(&mix).cloned());
            }
            if contestant.role() == Role::Ours {
                let total = checks.entry(contestant).or_default();
                total.sampled += checked.sampled;
                total.valid += checked.valid;
                total
                    .problems
                    .extend(checked.problems.into_iter().take(5usize.saturating_sub(total.problems.len())));
            }
        }
    }
    drop(generator);

    let pipeline = pipeline_cost(settings.contestant_core, cli.quick, probe.tsc_ghz())?;
    let machine = probe.finish();
    let lookup = |c: Contestant, m: Mix| results.get(&(c, m)).cloned();
    let reports: Vec<ContestantReport> = contestants
        .iter()
        .map(|&c| {
            let errs = errors.remove(&c).unwrap_or_default();
            ContestantReport {
                id: c.id(),
                label: c.label(),
                role: c.role(),
                backend: c.backend(),
                status: if matches!(c, Contestant::Testpmd(_)) && testpmd.is_none() {
                    Status::Absent
                } else if errs.is_empty() {
                    Status::Ok
                } else {
                    Status::Failed
                },
                errors: errs,
                limited_by: c.limit(),
                mixes: Mix::ALL.iter().map(|&m| report::mix_result(c, m, &lookup)).collect(),
                gue_check: checks.remove(&c),
            }
        })
        .collect();
    let report = Report {
        schema: report::SCHEMA,
        machine,
        settings,
        targets: report::targets(&reports),
        contestants: reports,
        pipeline: Some(pipeline),
        notes,
    };
    let markdown = report::markdown(&report);
    report::write_atomic(&cli.out.join("results.json"), &serde_json::to_vec_pretty(&report)?)?;
    report::write_atomic(&cli.out.join("results.md"), markdown.as_bytes())?;
    report::write_atomic(&cli.out.join("results.svg"), report::svg(&report).as_bytes())?;
    println!("{markdown}");
    println!("(written to {})", cli.out.display());
    let wrong_tunnels =
        report.contestants.iter().filter_map(|c| c.gue_check.as_ref()).any(|g| g.valid != g.sampled);
    let failed = report.contestants.iter().any(|c| c.status == Status::Failed);
    if wrong_tunnels {
        log::error!(
            "some of our director's sampled output frames are not correct GUE tunnels (see the report)"
        );
    }
    Ok(if wrong_tunnels || failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Starts `contestant`, warms it up, searches each mix, stops it. Our director's sampled
/// tunnels are checked along the way.
#[allow(clippy::too_many_arguments, reason = "the run's fixed parts, passed down once")]
fn measure(
    contestant: Contestant,
    env: &Env<'_>,
    generator: &Generator,
    sink: &Counter,
    capture: &Capture,
    settings: &Settings,
    trial: Duration,
    stop: &AtomicBool,
) -> Result<(HashMap<Mix, search::Found>, Checked)> {
    let started = contestants::start(contestant, env);
    if started.is_err() {
        contestants::detach_leftovers(env.topo);
    }
    let mut running = started?;
    let ours = contestant.role() == Role::Ours;
    let mut found = HashMap::new();
    let outcome = (|| -> Result<()> {
        generator.run(None, warm_up(settings.quick), Mix::Small)?;
        std::thread::sleep(DRAIN);
        if ours {
            capture.begin();
        }
        for mix in Mix::ALL {
            let measure = |rate: Option<f64>| -> Result<Trial> {
                if stop.load(Ordering::Relaxed) {
                    bail!("interrupted");
                }
                let arrived = || running.dut_counter.as_ref().map(Counter::read).transpose();
                let (before, arrived_before, cpu_before) =
                    (running.delivered(sink)?, arrived()?, running.cpu_ns());
                let sent = generator.run(rate, trial, mix)?;
                std::thread::sleep(DRAIN);
                let (after, arrived_after, cpu_after) =
                    (running.delivered(sink)?, arrived()?, running.cpu_ns());
                Ok(Trial {
                    offered_pps: sent.pps,
                    sent: sent.frames,
                    delivered: after.saturating_sub(before),
                    arrived: arrived_before.zip(arrived_after).map(|(a, b)| b.saturating_sub(a)),
                    cpu_ns: cpu_before.zip(cpu_after).map(|(a, b)| b.saturating_sub(a)),
                })
            };
            let result = search::find(measure, settings.search_steps)?;
            running.check_alive()?;
            log::info!(
                "  {}: {:.3} Mpps{} ({} trials)",
                mix.name(),
                result.pps / 1e6,
                if result.generator_bound { " (generator-bound)" } else { "" },
                result.trials.len()
            );
            found.insert(mix, result);
        }
        Ok(())
    })();
    let checked = capture.end();
    let stopped = running.stop();
    contestants::detach_leftovers(env.topo);
    // The kernel releases a closed AF_XDP socket's queue asynchronously.
    std::thread::sleep(SETTLE);
    outcome?;
    stopped?;
    Ok((found, checked))
}

/// The pipeline bench's target case, timed in process on `core`.
fn pipeline_cost(core: usize, quick: bool, tsc_ghz: Option<f64>) -> Result<PipelineCost> {
    let trials = if quick { 11 } else { 51 };
    let (raw, floor, case) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    log::warn!("could not pin the pipeline measurement to core {core}");
                }
                let workload = Workload::new("v4_syn/1bind/default", Traffic::V4, HashFields::default());
                let floor = Runner::new(&workload).time(Kind::RestoreOnly, trials);
                let raw = Runner::new(&workload).time(Kind::Pipeline, trials);
                (raw, floor, workload.name.clone())
            })
            .join()
    })
    .map_err(|_| anyhow::anyhow!("the pipeline measurement panicked"))?;
    let ns = (raw.median - floor.median).max(0.01);
    let best = (raw.best - floor.best).max(0.01);
    Ok(PipelineCost {
        case,
        ns_per_packet: ns,
        ns_per_packet_best: best,
        cycles_per_packet: tsc_ghz.map(|g| ns * g),
        mpps_per_core: 1e3 / ns,
        budget_share: BUDGETS.iter().map(|&(name, budget)| (name.to_owned(), budget, ns / budget)).collect(),
    })
}
