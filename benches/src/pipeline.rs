//! The per-packet pipeline workload (performance.md §6.2, Tier A), shared by the `pipeline`
//! Criterion bench and the line-rate harness's in-process ns/packet: an arena of 64-byte TCP SYNs
//! (IPv4, or a 75/25 IPv4/IPv6 mix) from 65 536 clients, delivered burst by burst into a
//! 4096-slot receive ring and run through `Pipeline::process_burst`, with the delivery floor and
//! SipHash baselines timed by the same loop. `benches/pipeline.rs` documents the cases.

use crate::{HASH_KEY, SEED, backend_address};
use forwarding_table::hash::{ShortInput, siphash_short};
use forwarding_table::{HashFields, LoadedTable, build_binary, config};
use glb_director::pipeline::{
    ClassifyOptions, Counters, Frame, MAX_HEADROOM, Pipeline, PipelineConfig, TunnelEndpoint, Verdict,
};
use siphasher::sip::SipHasher24;
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

/// Frames in the arena: every source of 198.19.0.0/16 once.
pub const FRAMES: usize = 65_536;
/// Frames per `process_burst` call: the director's receive burst.
pub const BURST: usize = glb_director::io::BURST_SIZE;
/// Bursts in one pass over the arena.
pub const BURSTS: usize = FRAMES / BURST;
/// Receive buffers the frames are delivered into, reused round-robin: a 4096-entry RX ring.
const RING: usize = 4096;
const RING_BURSTS: usize = RING / BURST;
/// Bytes per frame slot (two cache lines), and where the frame starts in it: right after the
/// headroom the largest tunnel needs, so a 78-byte IPv6 SYN still fits.
const STRIDE: usize = 128;
const START: usize = MAX_HEADROOM;

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const VIP_PORT: u16 = 80;
const BACKENDS: usize = 16;

/// What the arena's frames are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// IPv4 SYNs to one VIP.
    V4,
    /// IPv4 SYNs spread over the 256 VIPs of 203.0.113.0/24.
    V4ManyVips,
    /// Every fourth frame an IPv6 SYN.
    Mix,
}

/// One flow of the arena.
#[derive(Debug, Clone, Copy)]
struct Flow {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
}

/// xorshift64*: reproducible client ports without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u16(&mut self) -> u16 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let [.., hi, lo] = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes();
        u16::from_be_bytes([hi, lo])
    }
}

fn flows(traffic: Traffic) -> Vec<Flow> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..FRAMES)
        .map(|i| {
            let n = u32::try_from(i).expect("65 536 frames");
            let src_port = 1024 + rng.next_u16() % (u16::MAX - 1024);
            let v4_src = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + n));
            match traffic {
                Traffic::V4 => Flow { src: v4_src, dst: VIP4.into(), src_port },
                Traffic::V4ManyVips => {
                    let [.., vip] = n.to_be_bytes();
                    Flow { src: v4_src, dst: Ipv4Addr::new(203, 0, 113, vip).into(), src_port }
                }
                Traffic::Mix if i % 4 == 3 => {
                    let v6_src = Ipv6Addr::from(
                        u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0)) + u128::from(n),
                    );
                    Flow { src: v6_src.into(), dst: VIP6.into(), src_port }
                }
                Traffic::Mix => Flow { src: v4_src, dst: VIP4.into(), src_port },
            }
        })
        .collect()
}

/// A TCP SYN frame (Ethernet, IPv4 or IPv6, TCP with an MSS option), padded to the 60-byte
/// Ethernet minimum.
fn syn_frame(flow: &Flow) -> Vec<u8> {
    const TCP_LEN: u16 = 24;
    let mut frame = vec![0x02, 0, 0, 0, 0, 0xfe, 0x02, 0, 0, 0, 0, 0x01];
    match (flow.src, flow.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            frame.extend([0x08, 0x00, 0x45, 0x00]);
            frame.extend((20 + TCP_LEN).to_be_bytes());
            frame.extend([0x12, 0x34, 0x40, 0x00, 64, 6, 0, 0]);
            frame.extend(src.octets());
            frame.extend(dst.octets());
            let sum = ones_complement_sum(&frame[14..34]);
            frame[24..26].copy_from_slice(&(!sum).to_be_bytes());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            frame.extend([0x86, 0xdd, 0x60, 0x01, 0x23, 0x45]);
            frame.extend(TCP_LEN.to_be_bytes());
            frame.extend([6, 64]);
            frame.extend(src.octets());
            frame.extend(dst.octets());
        }
        _ => unreachable!("flows never mix families"),
    }
    frame.extend(flow.src_port.to_be_bytes());
    frame.extend(VIP_PORT.to_be_bytes());
    // seq, ack 0, data offset 6 words, SYN, window 64240, checksum (not checked), urgent 0, MSS 1460.
    frame.extend([0x1a, 0x2b, 0x3c, 0x4d, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2, 4, 0x05, 0xb4]);
    frame.resize(frame.len().max(60), 0);
    frame
}

fn ones_complement_sum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(c[1])).sum();
    while sum > 0xffff {
        sum = (sum >> 16) + (sum & 0xffff);
    }
    u16::try_from(sum).expect("folded")
}

/// The bytes GLB hashes for `flow` (src_addr ‖ dst_addr ‖ src_port ‖ dst_port, chosen fields
/// only), written independently of the pipeline's own code.
fn hash_input(flow: &Flow, fields: HashFields) -> ([u8; 36], usize) {
    let mut bytes = Vec::with_capacity(36);
    let mut addr = |a: IpAddr| match a {
        IpAddr::V4(a) => bytes.extend(a.octets()),
        IpAddr::V6(a) => bytes.extend(a.octets()),
    };
    if fields.src_addr() {
        addr(flow.src);
    }
    if fields.dst_addr() {
        addr(flow.dst);
    }
    if fields.src_port() {
        bytes.extend(flow.src_port.to_be_bytes());
    }
    if fields.dst_port() {
        bytes.extend(VIP_PORT.to_be_bytes());
    }
    let mut out = [0u8; 36];
    out[..bytes.len()].copy_from_slice(&bytes);
    (out, bytes.len())
}

/// Forwarding-table JSON: `tables` tables, each with `binds` of its own and [`BACKENDS`] active
/// backends (198.18.0.0/16), all with the bench [`HASH_KEY`].
fn table_json(binds_per_table: &[Vec<String>]) -> String {
    let backends: Vec<String> = (0..BACKENDS)
        .map(|i| format!(r#"{{"ip":"{}","state":"active","healthy":true}}"#, backend_address(i)))
        .collect();
    let mut tables = String::new();
    for (t, binds) in binds_per_table.iter().enumerate() {
        let sep = if t == 0 { "" } else { "," };
        let binds: Vec<String> =
            binds.iter().map(|ip| format!(r#"{{"ip":"{ip}","proto":"tcp","port":{VIP_PORT}}}"#)).collect();
        write!(
            tables,
            r#"{sep}{{"hash_key":"{HASH_KEY}","seed":"{SEED}","binds":[{}],"backends":[{}]}}"#,
            binds.join(","),
            backends.join(",")
        )
        .expect("writing to a String cannot fail");
    }
    format!(r#"{{"tables":[{tables}]}}"#)
}

fn table_for(traffic: Traffic) -> LoadedTable {
    let binds = match traffic {
        Traffic::V4 => vec![vec![VIP4.to_string()]],
        Traffic::Mix => vec![vec![VIP4.to_string(), VIP6.to_string()]],
        Traffic::V4ManyVips => (0..4u8)
            .map(|t| (0..64u8).map(|i| Ipv4Addr::new(203, 0, 113, t * 64 + i).to_string()).collect())
            .collect(),
    };
    let validated = config::parse(&table_json(&binds)).expect("bench table JSON is valid");
    LoadedTable::from_bytes(build_binary(&validated.config)).expect("bench table loads")
}

/// `slots` slots of [`STRIDE`] bytes starting on a cache-line boundary (a large `Vec<u8>`
/// from the system allocator starts 16 bytes into a page, which would split every slot over
/// three lines).
struct Arena {
    buf: Vec<u8>,
    base: usize,
    len: usize,
}

impl Arena {
    fn new(slots: usize) -> Self {
        let len = slots * STRIDE;
        let buf = vec![0u8; len + 64];
        let base = buf.as_ptr().align_offset(64);
        assert!(base < 64, "a u8 buffer can be aligned within 64 bytes");
        Self { buf, base, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.base..self.base + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.base..self.base + self.len]
    }
}

/// Frames in their slots, a pristine copy, and what the hash baseline hashes.
pub struct Workload {
    /// Case name, `pipeline/<name>` in Criterion.
    pub name: String,
    /// The frames.
    pub traffic: Traffic,
    table: LoadedTable,
    pipeline: Pipeline,
    pristine: Arena,
    lens: Vec<usize>,
    hash_inputs: Vec<([u8; 36], usize)>,
    short_inputs: Vec<ShortInput>,
    key: [u8; 16],
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("traffic", &self.traffic)
            .finish_non_exhaustive()
    }
}

/// The pipeline every in-process benchmark runs: GLB's director.conf defaults apart from the
/// hash fields, tunnelling from 192.0.2.254 to the gateway MAC 02:00:00:00:00:fe.
#[must_use]
pub fn bench_pipeline(fields: HashFields) -> Pipeline {
    Pipeline::new(PipelineConfig {
        endpoint: TunnelEndpoint {
            gateway_mac: [0x02, 0, 0, 0, 0, 0xfe],
            local_mac: [0x02, 0, 0, 0, 0, 0x01],
            src_ip: Ipv4Addr::new(192, 0, 2, 254),
        },
        hash_fields: fields,
        alt_hash_fields: None,
        classify: ClassifyOptions { forward_icmp_echo: true },
    })
}

impl Workload {
    /// Builds the arena and the table, and checks every frame is forwarded (panics otherwise).
    #[must_use]
    pub fn new(name: &str, traffic: Traffic, fields: HashFields) -> Self {
        const { assert!(START >= MAX_HEADROOM && START + 78 <= STRIDE, "slot layout") };
        let table = table_for(traffic);
        let pipeline = bench_pipeline(fields);
        let flows = flows(traffic);
        let mut slots = Arena::new(FRAMES);
        let mut lens = Vec::with_capacity(FRAMES);
        for (slot, flow) in slots.bytes_mut().chunks_exact_mut(STRIDE).zip(&flows) {
            let frame = syn_frame(flow);
            slot[START..START + frame.len()].copy_from_slice(&frame);
            lens.push(frame.len());
        }
        let key = *table.file().table(0).expect("one table at least").hash_key();
        let hash_inputs: Vec<([u8; 36], usize)> = flows.iter().map(|f| hash_input(f, fields)).collect();
        let short_inputs = hash_inputs
            .iter()
            .map(|(bytes, len)| {
                let mut input = ShortInput::new();
                assert!(input.push(&bytes[..*len]), "at most 36 bytes");
                input
            })
            .collect();
        let workload = Self {
            name: name.to_owned(),
            traffic,
            table,
            pipeline,
            pristine: slots,
            lens,
            hash_inputs,
            short_inputs,
            key,
        };
        workload.check();
        workload
    }

    /// Every frame is forwarded, and the hash baseline hashes exactly what the pipeline hashed.
    fn check(&self) {
        let mut buf = vec![0u8; STRIDE];
        for (i, (input, len)) in self.hash_inputs.iter().enumerate() {
            let at = i * STRIDE;
            buf.copy_from_slice(&self.pristine.bytes()[at..at + STRIDE]);
            let mut frame = Frame::new(&mut buf, START, self.lens[i]);
            let (verdict, routed) = self.pipeline.process(&self.table, &mut frame);
            assert_eq!(verdict, Verdict::Forward, "{}: frame {i} is forwarded", self.name);
            let routed = routed.expect("forwarded frames are routed");
            let table_key = self.table.file().table(routed.table).expect("table").hash_key();
            assert_eq!(table_key, &self.key, "every bench table has the same hash key");
            assert_eq!(
                SipHasher24::new_with_key(&self.key).hash(&input[..*len]),
                routed.pkt_hash,
                "{}: frame {i}: the baseline's hash input is the pipeline's",
                self.name
            );
        }
        let mut counters = Counters::default();
        let mut ring = Arena::new(RING);
        let mut verdicts = [Verdict::Kernel; BURST];
        for burst in 0..BURSTS {
            run_burst(self, ring.bytes_mut(), burst, &mut verdicts, &mut counters);
            assert!(verdicts.iter().all(|v| *v == Verdict::Forward), "{}: burst {burst}", self.name);
        }
        let frames = u64::try_from(FRAMES).expect("fits");
        assert_eq!((counters.received, counters.forwarded), (frames, frames), "{}", self.name);
    }
}

/// Delivers burst `burst`'s frames into their ring slots, as a NIC would: one copy of each
/// frame's own bytes from the pristine arena (the headroom is not restored: whatever the last
/// tunnel wrote there is overwritten by the next).
#[inline]
fn restore(w: &Workload, ring: &mut [u8], burst: usize) {
    let first = burst * BURST;
    let slot = (burst % RING_BURSTS) * BURST;
    for (i, &len) in w.lens[first..first + BURST].iter().enumerate() {
        let from = (first + i) * STRIDE + START;
        let to = (slot + i) * STRIDE + START;
        ring[to..to + len].copy_from_slice(&w.pristine.bytes()[from..from + len]);
    }
}

/// The frames of burst `burst` in their ring slots, lent as a `process_burst` caller lends them.
#[inline]
fn frames_of<'a>(w: &Workload, ring: &'a mut [u8], burst: usize) -> [Frame<'a>; BURST] {
    let first = burst * BURST;
    let slot = (burst % RING_BURSTS) * BURST;
    let mut chunks = ring[slot * STRIDE..(slot + BURST) * STRIDE].chunks_exact_mut(STRIDE);
    std::array::from_fn(|i| Frame::new(chunks.next().expect("32 slots"), START, w.lens[first + i]))
}

/// Harness floor: restore and lend the frames, nothing else.
#[inline]
fn restore_only(w: &Workload, ring: &mut [u8], burst: usize) {
    restore(w, ring, burst);
    let mut frames = frames_of(w, ring, burst);
    black_box(&mut frames);
}

/// Restore, lend, and run the pipeline over one burst.
#[inline]
fn run_burst(w: &Workload, ring: &mut [u8], burst: usize, verdicts: &mut [Verdict], counters: &mut Counters) {
    restore(w, ring, burst);
    let mut frames = frames_of(w, ring, burst);
    w.pipeline.process_burst(black_box(&w.table), &mut frames, verdicts, counters);
    black_box(&mut frames);
}

/// SipHash-2-4 alone, one `siphasher` call per packet, on the burst's hash inputs.
#[inline]
fn siphash_only(w: &Workload, burst: usize) -> u64 {
    let first = burst * BURST;
    let mut acc = 0;
    for (input, len) in &w.hash_inputs[first..first + BURST] {
        acc ^= SipHasher24::new_with_key(black_box(&w.key)).hash(black_box(&input[..*len]));
    }
    acc
}

/// SipHash-2-4 of the same inputs the way the pipeline hashes them: `siphash_short`, whose
/// inputs are whole zero-padded words (bit-identical to siphasher's, checked in `hash.rs`).
#[inline]
fn siphash_short_only(w: &Workload, burst: usize) -> u64 {
    let first = burst * BURST;
    let mut acc = 0;
    for input in &w.short_inputs[first..first + BURST] {
        acc ^= siphash_short(black_box(&w.key), black_box(input));
    }
    acc
}

/// What a timed loop runs per burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The harness floor: deliver the burst into the ring, lend it, nothing else.
    RestoreOnly,
    /// Deliver, then `process_burst`.
    Pipeline,
    /// `siphasher`'s SipHash-2-4 on each packet's hash input.
    SipHash,
    /// `siphash_short` on the same inputs, as the pipeline hashes.
    SipHashShort,
}

/// A reusable timed loop over consecutive bursts of one workload.
pub struct Runner<'w> {
    w: &'w Workload,
    ring: Arena,
    burst: usize,
    verdicts: [Verdict; BURST],
    counters: Counters,
}

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("workload", &self.w.name)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl<'w> Runner<'w> {
    /// A loop over `w` with its own receive ring.
    #[must_use]
    pub fn new(w: &'w Workload) -> Self {
        Self {
            w,
            ring: Arena::new(RING),
            burst: 0,
            verdicts: [Verdict::Kernel; BURST],
            counters: Counters::default(),
        }
    }

    /// Runs the next burst.
    #[inline]
    pub fn step(&mut self, kind: Kind) {
        let burst = self.burst;
        self.burst = if burst + 1 == BURSTS { 0 } else { burst + 1 };
        match kind {
            Kind::RestoreOnly => restore_only(self.w, self.ring.bytes_mut(), burst),
            Kind::Pipeline => {
                run_burst(self.w, self.ring.bytes_mut(), burst, &mut self.verdicts, &mut self.counters)
            }
            Kind::SipHash => {
                black_box(siphash_only(self.w, burst));
            }
            Kind::SipHashShort => {
                black_box(siphash_short_only(self.w, burst));
            }
        }
    }

    /// ns per packet over `trials` (at least 1) trials of one pass over the arena ([`BURSTS`]
    /// bursts, about 3 ms at 50 ns/packet: short enough that the best trials are ones no other
    /// process interrupted), after a warm-up trial.
    pub fn time(&mut self, kind: Kind, trials: usize) -> Timing {
        let trials = trials.max(1);
        let mut trial = || {
            let start = Instant::now();
            for _ in 0..BURSTS {
                self.step(kind);
            }
            start.elapsed().as_secs_f64() * 1e9 / (BURSTS * BURST) as f64
        };
        trial();
        let mut ns: Vec<f64> = (0..trials).map(|_| trial()).collect();
        ns.sort_by(f64::total_cmp);
        Timing { median: ns[trials / 2], best: ns[0] }
    }
}

/// Trial statistics, ns per packet.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The median trial.
    pub median: f64,
    /// The fastest trial: what the code costs when nothing else ran on the core.
    pub best: f64,
}

/// The bench's cases, in report order.
#[must_use]
pub fn workloads() -> Vec<Workload> {
    let all = HashFields::new(true, true, true, true).expect("four fields");
    vec![
        Workload::new("v4_syn/1bind/default", Traffic::V4, HashFields::default()),
        Workload::new("v4_syn/1bind/all_fields", Traffic::V4, all),
        Workload::new("v4_syn/256binds_4tables/default", Traffic::V4ManyVips, HashFields::default()),
        Workload::new("mix_v4_v6/default", Traffic::Mix, HashFields::default()),
        Workload::new("mix_v4_v6/all_fields", Traffic::Mix, all),
    ]
}
