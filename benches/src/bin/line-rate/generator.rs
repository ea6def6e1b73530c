//! The frame generator: a thread pinned to its own core, inside the generator's namespace,
//! running the generator XDP program on live frames (`BPF_PROG_RUN` with
//! `BPF_F_TEST_XDP_LIVE_FRAMES`): one run turns the mix's template into `repeat` real frames
//! whose `XDP_TX` sends them out of the generator's interface to the contestant. No copy to user
//! space, no socket: the fastest way the kernel has to push frames into a veth (about 3.8 Mpps on
//! one core of the measurement VM, performance.md §6.0).
//!
//! A run costs tens of milliseconds of set-up and tear-down (the kernel creates and destroys a
//! page pool, and waits for an RCU grace period), so a trial is one run: the program itself
//! paces the frames ([`xdp::Pacer`]: a per-frame deadline it spins on) and draws the IMIX sizes.
//! The kernel reports the loop's mean time per frame, which gives the rate actually offered.

use crate::frames::{Mix, Template, mix_template};
use crate::search::count;
use crate::topology::{DUT_MAC, GEN_MAC, Topology, enter};
use crate::xdp::{self, Pacer};
use anyhow::{Context, Result, anyhow, bail};
use glb_sys::bpf::Program;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames per live-frames batch (the kernel's NAPI budget).
const BATCH: u32 = 64;
/// First guess of the unpaced rate, frames per second (refined by every unpaced run).
const FIRST_GUESS_PPS: f64 = 5e6;

/// What one generator run sent.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// Frames handed to `XDP_TX` (some may be dropped by a full veth ring: counted as loss).
    pub frames: u64,
    /// The rate they were sent at, frames per second (the kernel's timing of the loop).
    pub pps: f64,
}

struct Job {
    rate: Option<f64>,
    duration: Duration,
    mix: Mix,
}

/// The generator thread.
#[derive(Debug)]
pub struct Generator {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Result<Sent>>,
    thread: Option<JoinHandle<()>>,
}

/// One loaded program per mix, sharing one pacer.
struct Sender {
    mixes: Vec<(Mix, Template, Program)>,
    pacer: Pacer,
    ifindex: u32,
    /// The last unpaced rate per mix: sizes the next unpaced run.
    unpaced_pps: Vec<(Mix, f64)>,
}

impl Sender {
    fn load(ifindex: u32) -> Result<Self> {
        let pacer = Pacer::new()?;
        let mixes = Mix::ALL
            .into_iter()
            .map(|mix| {
                let t = mix_template(mix, GEN_MAC, DUT_MAC);
                let program = xdp::load(&xdp::generator(&t, &pacer), "lr_gen")?;
                Ok((mix, t, program))
            })
            .collect::<Result<_>>()?;
        Ok(Self { mixes, pacer, ifindex, unpaced_pps: Vec::new() })
    }

    fn run(&mut self, job: &Job) -> Result<Sent> {
        let (_, t, program) = self
            .mixes
            .iter()
            .find(|(m, ..)| *m == job.mix)
            .ok_or_else(|| anyhow!("no generator for {:?}", job.mix))?;
        let unpaced = self.unpaced_pps.iter().find(|(m, _)| *m == job.mix).map_or(FIRST_GUESS_PPS, |e| e.1);
        let (interval_ns, planned) = match job.rate {
            Some(rate) => (count(1e9 / rate.max(1.0), u64::MAX), rate),
            None => (0, unpaced),
        };
        self.pacer.set(interval_ns)?;
        let frames = u32::try_from(count(planned * job.duration.as_secs_f64(), u64::from(u32::MAX)).max(1))
            .unwrap_or(u32::MAX);
        let started = Instant::now();
        let ns_per_frame = program
            .run_live_frames(&t.bytes, self.ifindex, frames, BATCH)
            .context("BPF_PROG_RUN with live frames (needs Linux 5.18 or later)")?;
        let pps = if ns_per_frame > 0 {
            1e9 / f64::from(ns_per_frame)
        } else {
            f64::from(frames) / started.elapsed().as_secs_f64().max(1e-9)
        };
        let pps = job.rate.map_or(pps, |rate| pps.min(rate));
        if job.rate.is_none() {
            self.unpaced_pps.retain(|(m, _)| *m != job.mix);
            self.unpaced_pps.push((job.mix, pps));
        }
        Ok(Sent { frames: u64::from(frames), pps })
    }
}

impl Generator {
    /// Starts the thread on `core` in the topology's generator namespace and loads its programs.
    ///
    /// # Errors
    /// The namespace, the core or the programs are unavailable.
    pub fn start(topo: &Topology, core: usize) -> Result<Self> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let (ns, ifindex) = (topo.gen_ns.clone(), topo.gen_ifindex);
        let thread = std::thread::Builder::new()
            .name("lr-generator".into())
            .spawn(move || {
                let setup = (|| -> Result<Sender> {
                    enter(&ns)?;
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        bail!("cannot pin the generator to core {core}");
                    }
                    Sender::load(ifindex)
                })();
                let mut sender = match setup {
                    Ok(sender) => {
                        let _ = done_tx.send(Ok(Sent { frames: 0, pps: 0.0 }));
                        sender
                    }
                    Err(e) => {
                        let _ = done_tx.send(Err(e));
                        return;
                    }
                };
                for job in job_rx {
                    if done_tx.send(sender.run(&job)).is_err() {
                        return;
                    }
                }
            })
            .context("cannot start the generator thread")?;
        let generator = Self { jobs: Some(jobs), done, thread: Some(thread) };
        generator.done.recv().map_err(|_| anyhow!("the generator thread stopped"))??;
        Ok(generator)
    }

    /// Sends `mix` for `duration`, at `rate` frames per second or as fast as possible (`None`).
    ///
    /// # Errors
    /// A live-frames run failed.
    pub fn run(&self, rate: Option<f64>, duration: Duration, mix: Mix) -> Result<Sent> {
        let jobs = self.jobs.as_ref().ok_or_else(|| anyhow!("the generator is stopped"))?;
        jobs.send(Job { rate, duration, mix }).map_err(|_| anyhow!("the generator thread stopped"))?;
        self.done.recv().map_err(|_| anyhow!("the generator thread stopped"))?
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
