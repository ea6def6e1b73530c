//! One worker: its own GUE socket (`SO_REUSEPORT`), TUN queue, raw socket and sock_diag socket,
//! all opened before the loop starts, buffers allocated once.
//!
//! Per burst of up to [`BATCH`] datagrams:
//! 1. `recvmmsg`; validate and classify each datagram (GLB §2.2–2.3); SYN segments are decided
//!    at once;
//! 2. one `sendmsg` carries a sock_diag request for every other TCP segment, one `recvmmsg`
//!    takes the answers;
//! 3. decide (§2.4) — an ACK-only segment that found only a listener gets a SYN-cookie check
//!    (one `BPF_PROG_TEST_RUN`) — and rewrite datagrams to forward in place;
//! 4. write each accepted inner packet to the TUN queue, in arrival order;
//! 5. one `sendmmsg` forwards the rest.
//!
//! No allocation, no lock, no log on this path; counters are added once per burst.

use crate::cookie::CookieCheck;
use crate::decision::{Decision, Lookup, decide};
use crate::diag::{self, Answer, REQUEST_LEN};
use crate::forward::{self, OUTER_LEN, Outer};
use crate::netlink;
use crate::packet::{self, DropReason, Flow, Gue, Inner};
use crate::stats::{BurstCounts, Counter, WorkerCounters};
use crate::sys::{self, BATCH, OutMsg, RecvBatch};
use std::fs::File;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Largest datagram received whole: the largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// Room for one sock_diag answer (an `inet_diag_msg` with a few attributes, or an error).
const ANSWER_SIZE: usize = 1024;
/// Sequence numbers used per burst (one per datagram, so answers map back by index).
const SEQ_STRIDE: u32 = 64;
const _: () = assert!(BATCH <= SEQ_STRIDE as usize);

/// What a datagram needs after the first pass.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Counted and done (dropped, or could not be forwarded).
    Done,
    /// Write the inner packet, at this offset in the datagram, to the TUN device.
    Deliver(usize),
    /// A socket lookup decides.
    Lookup(Flow),
    /// Forward with outer header `headers[i]` to this hop.
    Forward(usize, Ipv4Addr),
}

/// The resources a worker owns.
#[derive(Debug)]
pub struct Resources {
    /// The GUE socket.
    pub gue: OwnedFd,
    /// The raw socket forwarded datagrams leave by.
    pub raw: OwnedFd,
    /// The sock_diag socket.
    pub diag: OwnedFd,
    /// The TUN queue accepted packets are written to (shared when the device is single-queue).
    pub tun: Arc<File>,
    /// The SYN-cookie check, if it could be loaded.
    pub cookie: Option<Arc<CookieCheck>>,
    /// The UDP port the GUE socket listens on: forwarded datagrams go to the same port.
    pub port: u16,
}

/// A worker and its buffers.
#[derive(Debug)]
pub struct Worker {
    io: Resources,
    counters: Arc<WorkerCounters>,
    stop: Arc<AtomicBool>,
    batch: RecvBatch,
    answers: RecvBatch,
    requests: Box<[[u8; REQUEST_LEN]; BATCH]>,
    headers: Box<[[u8; OUTER_LEN]; BATCH]>,
    seq: u32,
}

impl Worker {
    /// A worker over `io`, counting into `counters`, until `stop`.
    #[must_use]
    pub fn new(io: Resources, counters: Arc<WorkerCounters>, stop: Arc<AtomicBool>) -> Self {
        Self {
            io,
            counters,
            stop,
            batch: RecvBatch::new(MAX_DATAGRAM),
            answers: RecvBatch::new(ANSWER_SIZE),
            requests: Box::new([[0; REQUEST_LEN]; BATCH]),
            headers: Box::new([[0; OUTER_LEN]; BATCH]),
            seq: 0,
        }
    }

    /// Runs until the stop flag is set (seen within the GUE socket's receive timeout).
    pub fn run(mut self, id: usize) {
        while !self.stop.load(Ordering::Relaxed) {
            match self.batch.recv(&self.io.gue, true, false) {
                Ok(_) => self.process(),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) => {
                    // Not a per-packet condition (the socket itself failed): say so, back off.
                    log::error!("worker {id}: receiving GUE datagrams failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Handles the received burst.
    fn process(&mut self) {
        let mut counts: BurstCounts = [0; Counter::ALL.len()];
        let mut stages = [Stage::Done; BATCH];
        let n = self.batch.len();
        let base = self.seq;
        self.seq = self.seq.wrapping_add(SEQ_STRIDE);

        let mut lookups = 0;
        for (i, stage) in stages.iter_mut().enumerate().take(n) {
            counts[Counter::Total.index()] += 1;
            let (meta, datagram) = self.batch.get(i);
            *stage = match first_pass(meta.truncated, datagram) {
                Err(reason) => {
                    counts[Counter::Dropped(reason).index()] += 1;
                    Stage::Done
                }
                Ok(FirstPass::Deliver(at, counter)) => {
                    counts[counter.index()] += 1;
                    Stage::Deliver(at)
                }
                Ok(FirstPass::Lookup(flow)) => {
                    let seq = base.wrapping_add(u32::try_from(i).unwrap_or(0));
                    diag::encode_request(&mut self.requests[lookups], seq, &flow);
                    lookups += 1;
                    Stage::Lookup(flow)
                }
            };
        }

        let mut answers = [None; BATCH];
        if lookups > 0 {
            self.lookup(lookups, base, &mut answers);
        }

        let mut forwards = 0;
        for (i, stage) in stages.iter_mut().enumerate().take(n) {
            let Stage::Lookup(flow) = *stage else { continue };
            let found = match answers[i] {
                Some(Answer::Lookup(found)) => found,
                Some(Answer::Error(_)) | None => {
                    counts[Counter::LookupErrors.index()] += 1;
                    Lookup::NotFound
                }
            };
            let (meta, datagram) = self.batch.get(i);
            let Ok(gue) = Gue::parse(datagram) else { continue };
            let cookie = self.io.cookie.as_deref();
            let decision = decide(
                &flow,
                &gue,
                meta.dst,
                || found,
                || {
                    cookie.is_some_and(|check| {
                        check.check(gue.family(), gue.inner(), &flow).unwrap_or_else(|_| {
                            counts[Counter::SynCookieCheckErrors.index()] += 1;
                            false
                        })
                    })
                },
            );
            *stage = match decision {
                Decision::Accept(accept) => {
                    counts[Counter::accepted(accept).index()] += 1;
                    Stage::Deliver(gue.inner_offset())
                }
                Decision::Forward(alt) => {
                    let outer = Outer {
                        local: meta.dst,
                        next_hop: alt,
                        src_port: meta.src.port(),
                        dst_port: self.io.port,
                        ttl: meta.ttl,
                        tos: meta.tos,
                    };
                    let (_, datagram) = self.batch.get_mut(i);
                    match forward::rewrite(datagram, &outer, &mut self.headers[forwards]) {
                        Ok(()) => {
                            counts[Counter::ForwardedToAlternate.index()] += 1;
                            forwards += 1;
                            Stage::Forward(forwards - 1, alt)
                        }
                        Err(_) => {
                            counts[Counter::ForwardErrors.index()] += 1;
                            Stage::Done
                        }
                    }
                }
            };
        }

        for (i, stage) in stages[..n].iter().enumerate() {
            if let Stage::Deliver(at) = *stage {
                let (_, datagram) = self.batch.get(i);
                let inner = datagram.get(at..).unwrap_or(&[]);
                if !matches!((&*self.io.tun).write(inner), Ok(len) if len == inner.len()) {
                    counts[Counter::TunWriteErrors.index()] += 1;
                }
            }
        }

        if forwards > 0 {
            let mut out = [OutMsg { header: &[], payload: &[], dst: Ipv4Addr::UNSPECIFIED }; BATCH];
            for (i, stage) in stages[..n].iter().enumerate() {
                if let Stage::Forward(k, alt) = *stage {
                    out[k] = OutMsg { header: &self.headers[k], payload: self.batch.get(i).1, dst: alt };
                }
            }
            let refused = sys::send_batch(&self.io.raw, &out[..forwards]);
            counts[Counter::ForwardErrors.index()] += u64::try_from(refused).unwrap_or(u64::MAX);
        }
        self.counters.add(&counts);
    }

    /// Sends `count` prepared sock_diag requests and fills `answers` by datagram index.
    fn lookup(&mut self, count: usize, base: u32, answers: &mut [Option<Answer>; BATCH]) {
        let requests = self.requests[..count].as_flattened();
        if sys::send(&self.io.diag, requests).is_err() {
            return; // every answer missing: counted as lookup errors
        }
        let mut received = 0;
        // The kernel answered every request before `send` returned; take what is queued.
        while received < count {
            let Ok(k) = self.answers.recv(&self.io.diag, false, true) else { break };
            for j in 0..k {
                for msg in netlink::messages(self.answers.get(j).1) {
                    let Some((seq, answer)) = diag::decode_answer(msg) else { continue };
                    let index = usize::try_from(seq.wrapping_sub(base)).unwrap_or(usize::MAX);
                    if let Some(slot) = answers.get_mut(index)
                        && slot.is_none()
                    {
                        *slot = Some(answer);
                        received += 1;
                    }
                }
            }
        }
    }
}

/// What the first pass found for a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstPass {
    /// Deliver the inner packet at this offset and count it here (SYN, or no lookup needed).
    Deliver(usize, Counter),
    /// A TCP segment the socket lookup decides.
    Lookup(Flow),
}

/// Validation, classification and the SYN rule (§2.2–2.4 step 1) for one datagram.
fn first_pass(truncated: bool, datagram: &[u8]) -> Result<FirstPass, DropReason> {
    if truncated {
        return Err(DropReason::Truncated);
    }
    let gue = Gue::parse(datagram)?;
    Ok(match packet::classify(gue.family(), gue.inner())? {
        Inner::Stateless => FirstPass::Deliver(gue.inner_offset(), Counter::AcceptedStateless),
        Inner::Tcp(flow) if flow.is_syn() => FirstPass::Deliver(gue.inner_offset(), Counter::AcceptedSyn),
        Inner::Tcp(flow) => FirstPass::Lookup(flow),
    })
}
