//! The results: one JSON document, the Markdown tables made from it, and a bar chart (SVG),
//! written atomically into the results folder.

use crate::contestants::{Backend, Contestant, Role};
use crate::frames::Mix;
use crate::machine::Machine;
use crate::search::{Found, MAX_LOSS};
use crate::verify::Checked;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Version of the JSON layout (bump on incompatible changes).
pub const SCHEMA: &str = "glb-line-rate/1";

/// Link budgets for 64-byte frames: (name, ns per frame) — (64 + 20) × 8 bits at the line rate.
pub const BUDGETS: [(&str, f64); 4] = [("10GbE", 67.2), ("25GbE", 26.88), ("40GbE", 16.8), ("100GbE", 6.72)];

/// How the run was made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// The command line.
    pub command: String,
    /// `--quick`.
    pub quick: bool,
    /// Rounds (every contestant once per round, order rotated).
    pub rounds: usize,
    /// Length of one trial, seconds.
    pub trial_seconds: f64,
    /// Most paced trials per search.
    pub search_steps: usize,
    /// Largest loss of a passing trial.
    pub max_loss: f64,
    /// Core of the generator.
    pub generator_core: usize,
    /// Core of the contestant.
    pub contestant_core: usize,
}

/// min, median, max.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median (of an even count: the mean of the middle two).
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of `values`; `None` when empty.
    #[must_use]
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { f64::midpoint(v[n / 2 - 1], v[n / 2]) };
        Some(Self { min: v[0], median, max: v[n - 1] })
    }
}

/// One contestant's results for one mix.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MixResult {
    /// The mix.
    pub mix: Mix,
    /// Per round: the highest rate with at most 0.1 % loss, Mpps (rounds that failed left out).
    pub mpps_per_round: Vec<f64>,
    /// Spread of `mpps_per_round`.
    pub mpps: Option<Spread>,
    /// Rounds where the contestant kept up with the generator's top rate (a lower bound).
    pub generator_bound_rounds: usize,
    /// Median rate in Gbit/s of frames (on the wire, with FCS).
    pub gbps: Option<f64>,
    /// Per-round ratio to the receive ceiling, spread.
    pub vs_receive_ceiling: Option<Spread>,
    /// Per-round ratio to the bounce ceiling, spread.
    pub vs_bounce_ceiling: Option<Spread>,
    /// Per-round ratio to testpmd on the same backend (ours only), spread.
    pub vs_testpmd: Option<Spread>,
    /// Contestant CPU ns per frame when saturated (unpaced trial), spread over rounds.
    pub cpu_ns_per_frame: Option<Spread>,
    /// Per-round ratio of testpmd's CPU ns per frame to ours (above 1: we spend less per frame).
    pub cpu_vs_testpmd: Option<Spread>,
    /// Every search, per round.
    pub searches: Vec<Option<Found>>,
}

/// Whether a contestant ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Measured in every round.
    Ok,
    /// Its program is not installed (testpmd without `dpdk-dev`).
    Absent,
    /// It failed in at least one round (see `errors`).
    Failed,
}

/// One contestant's report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContestantReport {
    /// Stable id.
    pub id: &'static str,
    /// Display name.
    pub label: &'static str,
    /// Ceiling, peer or ours.
    pub role: Role,
    /// Packet-I/O path.
    pub backend: Backend,
    /// Whether it ran.
    pub status: Status,
    /// What failed, per failed round.
    pub errors: Vec<String>,
    /// What bounds its rate here.
    pub limited_by: &'static str,
    /// Results per mix.
    pub mixes: Vec<MixResult>,
    /// Our director's sampled output frames and their check.
    pub gue_check: Option<Checked>,
}

/// The pipeline's in-process cost (`benches/pipeline.rs`'s measurement, run here).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipelineCost {
    /// The pipeline bench case.
    pub case: String,
    /// Median ns/packet net of the delivery floor.
    pub ns_per_packet: f64,
    /// The same from the fastest trials.
    pub ns_per_packet_best: f64,
    /// `ns_per_packet` × the TSC rate.
    pub cycles_per_packet: Option<f64>,
    /// Packets per second per core at `ns_per_packet`, millions.
    pub mpps_per_core: f64,
    /// `ns_per_packet` as a share of each link's 64-byte budget: (link, budget ns, share).
    pub budget_share: Vec<(String, f64, f64)>,
}

/// A target of the issue, evaluated on this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    /// What is required.
    pub name: String,
    /// The median per-round ratio (`None`: not measured).
    pub ratio: Option<f64>,
    /// Whether the ratio is at least 1.0.
    pub met: bool,
}

/// The whole report (the JSON file).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The machine.
    pub machine: Machine,
    /// How it was run.
    pub settings: Settings,
    /// Every contestant.
    pub contestants: Vec<ContestantReport>,
    /// The in-process pipeline cost.
    pub pipeline: Option<PipelineCost>,
    /// The issue's targets.
    pub targets: Vec<Target>,
    /// Remarks (contestants left out and why).
    pub notes: Vec<String>,
}

/// Per-round searches of one contestant for one mix, `None` where the round failed.
pub type Rounds = Vec<Option<Found>>;

fn mpps(round: &Option<Found>) -> Option<f64> {
    round.as_ref().map(|f| f.pps / 1e6)
}

fn cpu(round: &Option<Found>) -> Option<f64> {
    round.as_ref()?.cpu_ns_per_frame
}

/// Per-round ratios `value(ours) / value(theirs)` (rounds where both have a value, `theirs`
/// non-zero).
fn ratios_by(
    ours: &Rounds,
    theirs: Option<&Rounds>,
    value: fn(&Option<Found>) -> Option<f64>,
) -> Option<Spread> {
    let values: Vec<f64> = ours
        .iter()
        .zip(theirs?)
        .filter_map(|(a, b)| Some((value(a)?, value(b)?)))
        .filter(|&(_, b)| b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    Spread::of(&values)
}

/// Per-round rate ratios of `ours` to `theirs`.
fn ratios(ours: &Rounds, theirs: Option<&Rounds>) -> Option<Spread> {
    ratios_by(ours, theirs, mpps)
}

/// One mix's results of `contestant`, with ratios to the others' `results`.
#[must_use]
pub fn mix_result(
    contestant: Contestant,
    mix: Mix,
    results: &dyn Fn(Contestant, Mix) -> Option<Rounds>,
) -> MixResult {
    let rounds = results(contestant, mix).unwrap_or_default();
    let mpps_per_round: Vec<f64> = rounds.iter().filter_map(mpps).collect();
    let spread = Spread::of(&mpps_per_round);
    let theirs = |c: Contestant| results(c, mix);
    let (receive, bounce) = (theirs(Contestant::XdpDrop), theirs(Contestant::XdpTx));
    let testpmd = contestant.peer().and_then(theirs);
    let is_ceiling = contestant.role() == Role::Ceiling;
    MixResult {
        mix,
        generator_bound_rounds: rounds.iter().flatten().filter(|f| f.generator_bound).count(),
        gbps: spread.map(|s| s.median * 1e6 * mix.mean_wire_size() * 8.0 / 1e9),
        vs_receive_ceiling: if contestant == Contestant::XdpDrop {
            None
        } else {
            ratios(&rounds, receive.as_ref())
        },
        vs_bounce_ceiling: if is_ceiling { None } else { ratios(&rounds, bounce.as_ref()) },
        vs_testpmd: ratios(&rounds, testpmd.as_ref()),
        cpu_ns_per_frame: Spread::of(&rounds.iter().filter_map(cpu).collect::<Vec<_>>()),
        cpu_vs_testpmd: testpmd.as_ref().and_then(|theirs| ratios_by(theirs, Some(&rounds), cpu)),
        mpps: spread,
        mpps_per_round,
        searches: rounds,
    }
}

/// The issue's targets: our AF_XDP and AF_PACKET directors at least as fast as testpmd on the
/// same backend, for each mix.
#[must_use]
pub fn targets(contestants: &[ContestantReport]) -> Vec<Target> {
    let mut out = Vec::new();
    for (id, peer) in [("director_af_xdp", "net_af_xdp"), ("director_af_packet", "net_af_packet")] {
        let Some(c) = contestants.iter().find(|c| c.id == id) else { continue };
        for m in &c.mixes {
            let ratio = m.vs_testpmd.map(|s| s.median);
            out.push(Target {
                name: format!("{} >= 1.0x testpmd {peer} ({})", c.label, m.mix.name()),
                ratio,
                met: ratio.is_some_and(|r| r >= 1.0),
            });
        }
    }
    out
}

fn spread_text(s: Option<Spread>, digits: usize) -> String {
    s.map_or_else(
        || "–".to_owned(),
        |s| format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits),
    )
}

/// The Markdown report.
#[must_use]
pub fn markdown(r: &Report) -> String {
    let m = &r.machine;
    let s = &r.settings;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Line rate: glb-director against its ceilings and dpdk-testpmd, on veth\n");
    let _ = writeln!(
        w,
        "Machine: {} ({} CPUs), kernel {}, TSC {}, steal {:.1} % during the run, load {:.2} at the start; \
         source `{}`; {}.\n",
        m.cpu_model,
        m.cpus,
        m.kernel,
        m.tsc_ghz.map_or_else(|| "n/a".to_owned(), |g| format!("{g:.3} GHz")),
        m.steal_percent,
        m.load_average_start,
        m.git,
        m.started_utc
    );
    let _ = writeln!(
        w,
        "Method: generator (live-frames XDP) on core {}, contestant on core {}; {} round(s), contestants \
         interleaved (order rotated each round); {:.2} s trials; each value is the highest rate with at \
         most {} % loss. Values are median (min–max) over rounds; ratios are medians of per-round \
         ratios (same round, same machine state). `>=`: the contestant kept up with the generator in \
         some round (a lower bound). Core ns/frame: CPU time of the contestant's process per frame it \
         delivered while overloaded (the unpaced trial), its cost per frame whatever else took turns \
         on its core. Command: `{}`\n",
        s.generator_core,
        s.contestant_core,
        s.rounds,
        s.trial_seconds,
        s.max_loss * 100.0,
        s.command
    );
    for mix in Mix::ALL {
        let title = match mix {
            Mix::Small => "64-byte frames".to_owned(),
            Mix::Imix => format!("IMIX (64/594/1518 bytes 7:4:1, mean {:.1} bytes)", mix.mean_wire_size()),
        };
        let _ = writeln!(w, "## {title}\n");
        let _ = writeln!(
            w,
            "| contestant | Mpps | Gbit/s | x receive ceiling | x bounce ceiling | x testpmd (same backend) \
             | core ns/frame, saturated | testpmd's ns/frame / ours |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for c in &r.contestants {
            let Some(res) = c.mixes.iter().find(|x| x.mix == mix) else { continue };
            let rate = match c.status {
                Status::Absent => "absent".to_owned(),
                _ if res.mpps.is_none() => "failed".to_owned(),
                _ => {
                    let bound = if res.generator_bound_rounds > 0 { ">= " } else { "" };
                    format!("{bound}{}", spread_text(res.mpps, 3))
                }
            };
            let _ = writeln!(
                w,
                "| {} | {rate} | {} | {} | {} | {} | {} | {} |",
                c.label,
                res.gbps.map_or_else(|| "–".to_owned(), |g| format!("{g:.2}")),
                spread_text(res.vs_receive_ceiling, 2),
                spread_text(res.vs_bounce_ceiling, 2),
                spread_text(res.vs_testpmd, 2),
                spread_text(res.cpu_ns_per_frame, 0),
                spread_text(res.cpu_vs_testpmd, 2),
            );
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "## Targets\n");
    for t in &r.targets {
        let ratio = t.ratio.map_or_else(|| "not measured".to_owned(), |x| format!("{x:.2}x"));
        let _ = writeln!(w, "- {}: {ratio} — {}", t.name, if t.met { "met" } else { "NOT met" });
    }
    let _ = writeln!(w, "\n## GUE check of our director's output\n");
    for c in r.contestants.iter().filter(|c| c.role == Role::Ours) {
        match &c.gue_check {
            Some(g) if g.problems.is_empty() => {
                let _ = writeln!(w, "- {}: {} sampled frames, all correct GUE tunnels", c.label, g.sampled);
            }
            Some(g) => {
                let _ = writeln!(
                    w,
                    "- {}: {} of {} sampled frames WRONG: {}",
                    c.label,
                    g.sampled - g.valid,
                    g.sampled,
                    g.problems.join("; ")
                );
            }
            None => {
                let _ = writeln!(w, "- {}: not run", c.label);
            }
        }
    }
    if let Some(p) = &r.pipeline {
        let _ = writeln!(w, "\n## Pipeline, in process (`benches/pipeline.rs` case `{}`)\n", p.case);
        let _ = writeln!(
            w,
            "| ns/packet | cycles/packet | Mpps/core | {} |",
            BUDGETS.map(|(n, b)| format!("of {n} ({b} ns)")).join(" | ")
        );
        let _ = writeln!(w, "|---:|---:|---:|{}", "---:|".repeat(BUDGETS.len()));
        let _ = writeln!(
            w,
            "| {:.1} (fastest {:.1}) | {} | {:.1} | {} |\n",
            p.ns_per_packet,
            p.ns_per_packet_best,
            p.cycles_per_packet.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.0}")),
            p.mpps_per_core,
            p.budget_share
                .iter()
                .map(|(_, _, s)| format!("{:.0} %", s * 100.0))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(
            w,
            "Net of the frame-delivery floor (median of the trials; fastest: the least disturbed ones); \
             one core, bursts of 32 64-byte IPv4 SYNs from 65 536 clients."
        );
    }
    let _ = writeln!(w, "\n## What limits each contestant here\n");
    for c in &r.contestants {
        let _ = writeln!(w, "- {}: {}.", c.label, c.limited_by);
    }
    for note in &r.notes {
        let _ = writeln!(w, "- {note}");
    }
    let failures: Vec<String> = r
        .contestants
        .iter()
        .flat_map(|c| c.errors.iter().map(move |e| format!("- {}: {e}", c.label)))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(w, "\n## Failures\n\n```\n{}\n```", failures.join("\n"));
    }
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A horizontal bar chart: per contestant, one bar per mix (median Mpps) with a min–max whisker,
/// on a log scale (the ceilings run an order of magnitude above the others).
#[must_use]
pub fn svg(r: &Report) -> String {
    const LEFT: f64 = 260.0;
    const WIDTH: f64 = 900.0;
    const PLOT: f64 = WIDTH - LEFT - 70.0;
    const ROW: f64 = 44.0;
    const TOP: f64 = 50.0;
    let colours = [(Mix::Small, "#3b6fb6"), (Mix::Imix, "#e08a2c")];
    let rows: Vec<&ContestantReport> = r.contestants.iter().collect();
    let rates: Vec<Spread> = rows.iter().flat_map(|c| c.mixes.iter().filter_map(|m| m.mpps)).collect();
    // Decades from below the smallest positive value to above the largest.
    let low = rates.iter().map(|s| s.min).filter(|&v| v > 0.0).fold(1.0_f64, f64::min).log10().floor();
    let high = rates.iter().map(|s| s.max).fold(1.0_f64, f64::max).log10().ceil().max(low + 1.0);
    let x = |mpps: f64| LEFT + PLOT * ((mpps.max(10f64.powf(low)).log10() - low) / (high - low));
    let height = TOP + ROW * rows.len() as f64 + 50.0;
    let axis_y = TOP + ROW * rows.len() as f64 + 10.0;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(w, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        w,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">Forwarding rate at &lt;= {} % loss, Mpps, log scale (median, min–max whiskers) — {}</text>"#,
        MAX_LOSS * 100.0,
        xml(&r.machine.cpu_model)
    );
    for (i, (mix, colour)) in colours.iter().enumerate() {
        let x = LEFT + 160.0 * i as f64;
        let _ = writeln!(w, r#"<rect x="{x}" y="30" width="12" height="12" fill="{colour}"/>"#);
        let _ = writeln!(w, r#"<text x="{}" y="40">{}</text>"#, x + 16.0, mix.name());
    }
    // Gridlines and labels at each power of ten.
    let mut decade = low;
    while decade <= high {
        let value = 10f64.powf(decade);
        let digits = usize::try_from(crate::search::count(-decade, 9)).unwrap_or(0);
        let gx = x(value);
        let _ = writeln!(w, r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{axis_y}" stroke="#ddd"/>"##);
        let _ = writeln!(
            w,
            r#"<text x="{gx:.1}" y="{}" text-anchor="middle">{value:.digits$}</text>"#,
            axis_y + 16.0
        );
        decade += 1.0;
    }
    let _ = writeln!(
        w,
        r#"<line x1="{LEFT}" y1="{axis_y}" x2="{:.1}" y2="{axis_y}" stroke="black"/>"#,
        LEFT + PLOT
    );
    let _ = writeln!(w, r#"<text x="{:.1}" y="{}">Mpps</text>"#, LEFT + PLOT + 10.0, axis_y + 16.0);
    for (row, c) in rows.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let _ = writeln!(
            w,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + 24.0,
            xml(c.label)
        );
        for (i, (mix, colour)) in colours.iter().enumerate() {
            let by = y + 4.0 + 18.0 * i as f64;
            let Some(s) = c.mixes.iter().find(|m| m.mix == *mix).and_then(|m| m.mpps) else {
                let label = if c.status == Status::Absent { "absent" } else { "no result" };
                let _ =
                    writeln!(w, r##"<text x="{}" y="{}" fill="#888">{label}</text>"##, LEFT + 4.0, by + 12.0);
                continue;
            };
            let _ = writeln!(
                w,
                r#"<rect x="{LEFT}" y="{by}" width="{:.1}" height="16" fill="{colour}"/>"#,
                x(s.median) - LEFT
            );
            let (x0, x1) = (x(s.min), x(s.max));
            let _ = writeln!(
                w,
                r#"<line x1="{x0:.1}" y1="{:.1}" x2="{x1:.1}" y2="{:.1}" stroke="black"/>"#,
                by + 8.0,
                by + 8.0
            );
            let _ = writeln!(
                w,
                r#"<text x="{:.1}" y="{}">{:.3}</text>"#,
                x1.max(x(s.median)) + 6.0,
                by + 12.0,
                s.median
            );
        }
    }
    let _ = writeln!(w, "</svg>");
    out
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, then a rename).
///
/// # Errors
/// The directory cannot be written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Some(Spread { min: 1.0, median: 2.0, max: 3.0 }));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]), Some(Spread { min: 1.0, median: 2.5, max: 4.0 }));
    }

    #[test]
    fn ratios_pair_rounds() {
        let found = |pps: f64| {
            Some(Found { pps, generator_bound: false, cpu_ns_per_frame: None, trials: Vec::new() })
        };
        let ours = vec![found(2e6), None, found(3e6)];
        let theirs = vec![found(1e6), found(5e6), found(2e6)];
        let r = ratios(&ours, Some(&theirs)).expect("two paired rounds");
        assert_eq!((r.min, r.max), (1.5, 2.0));
        assert_eq!(ratios(&ours, None), None);
    }
}
