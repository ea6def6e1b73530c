//! The harness's XDP programs, assembled as raw BPF instructions with
//! `glb_sys::bpf` (no clang): the generator, and counters that then drop, bounce,
//! pass, or pass a sample.

use crate::frames::{
    CLIENT_LOW_OFFSET, ETH_LEN, HEADERS_LEN, IP_CSUM_OFFSET, SRC_PORT_OFFSET, TOTAL_LEN_OFFSET, Template,
    UDP_LEN_OFFSET,
};
use anyhow::{Context, Result};
use glb_sys::bpf::{
    Alu, Insn, Jmp, Map, MapType, Program, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Size, XdpAction,
    helper, xdp_md,
};
use std::collections::HashMap;

/// Offsets and lengths as instruction fields (all far below `i16::MAX`).
fn off(offset: usize) -> i16 {
    i16::try_from(offset).expect("header offsets fit an i16")
}

fn imm(value: usize) -> i32 {
    i32::try_from(value).expect("frame lengths fit an i32")
}

/// Instructions with named jump targets, resolved by [`Asm::finish`].
#[derive(Debug, Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: HashMap<&'static str, usize>,
    jumps: Vec<(usize, &'static str)>,
}

impl Asm {
    fn push(&mut self, insns: impl IntoIterator<Item = Insn>) {
        self.insns.extend(insns);
    }

    /// A jump instruction (its offset is filled in) to `target`.
    fn jump(&mut self, insn: Insn, target: &'static str) {
        self.jumps.push((self.insns.len(), target));
        self.insns.push(insn);
    }

    fn label(&mut self, name: &'static str) {
        let previous = self.labels.insert(name, self.insns.len());
        assert!(previous.is_none(), "label {name} defined twice");
    }

    fn finish(mut self) -> Vec<Insn> {
        for (at, target) in self.jumps {
            let to = self.labels[target];
            let delta = i64::try_from(to).expect("small") - i64::try_from(at).expect("small") - 1;
            self.insns[at].off = i16::try_from(delta).expect("jumps within a short program");
        }
        self.insns
    }
}

/// Most spins of the pacing loop per frame (about 100 µs of `bpf_ktime_get_ns` calls: enough
/// for rates down to 10 kpps; the verifier walks every iteration, so it must stay bounded).
const PACE_SPINS: i32 = 4096;

/// The generator's rate: a one-entry array map of `{next_ns: u64, interval_ns: u64}` the
/// program reads and advances per frame.
#[derive(Debug)]
pub struct Pacer {
    map: Map,
}

impl Pacer {
    /// A pacer, unpaced until [`Self::set`].
    ///
    /// # Errors
    /// No CAP_BPF.
    pub fn new() -> Result<Self> {
        Ok(Self { map: Map::create(MapType::Array, 4, 16, 1, "lr_pacer").context("BPF_MAP_CREATE (pacer)")? })
    }

    /// Frames leave `interval_ns` apart from now on (0: as fast as possible).
    ///
    /// # Errors
    /// The map update failed.
    pub fn set(&self, interval_ns: u64) -> Result<()> {
        let mut value = [0u8; 16];
        value[8..].copy_from_slice(&interval_ns.to_ne_bytes());
        self.map.update(&0u32.to_ne_bytes(), &value).context("setting the generator's rate")
    }
}

/// The generator: per live frame, waits for its slot if paced ([`Pacer`]), trims the template
/// to a size drawn by the mix's weights (`bpf_xdp_adjust_tail`; fixing the IPv4 and UDP
/// lengths), gives it a random client (low 16 bits of the source address) and source port
/// (32768–65535), recomputes the IPv4 checksum from the template's base sum, then `XDP_TX` (out
/// of the interface the test run names).
#[must_use]
pub fn generator(template: &Template, pacer: &Pacer) -> Vec<Insn> {
    let base = template.csum_base;
    let multi = template.sizes.len() > 1;
    let mut a = Asm::default();
    a.push([Insn::mov64_reg(R6, R1)]);

    // Pacing: spin until `next`, then `next = max(next, now - 16 intervals) + interval`.
    a.push(pacer.map.lookup_insns(0));
    a.jump(Insn::jmp_imm(Jmp::Eq, R0, 0, 0), "build");
    a.push([Insn::mov64_reg(R9, R0), Insn::load(Size::Dw, R8, R9, 8)]);
    a.jump(Insn::jmp_imm(Jmp::Eq, R8, 0, 0), "build");
    a.push([
        Insn::load(Size::Dw, R7, R9, 0),
        // The context waits on the stack while r6 counts spins.
        Insn::store(Size::Dw, R10, -16, R6),
        Insn::mov64_imm(R6, 0),
    ]);
    a.label("spin");
    a.push([Insn::call(helper::KTIME_GET_NS)]);
    a.jump(Insn::jmp_reg(Jmp::Ge, R0, R7, 0), "due");
    a.push([Insn::alu64_imm(Alu::Add, R6, 1)]);
    a.jump(Insn::jmp_imm(Jmp::Ge, R6, PACE_SPINS, 0), "due");
    a.jump(Insn::ja(0), "spin");
    a.label("due");
    a.push([Insn::mov64_reg(R1, R8), Insn::alu64_imm(Alu::Lsh, R1, 4), Insn::alu64_reg(Alu::Add, R1, R7)]);
    a.jump(Insn::jmp_reg(Jmp::Ge, R1, R0, 0), "keep");
    // Fell behind by more than 16 intervals (the generator cannot keep up, or a new run): no
    // catch-up burst.
    a.push([Insn::mov64_reg(R7, R0)]);
    a.label("keep");
    a.push([
        Insn::alu64_reg(Alu::Add, R7, R8),
        Insn::store(Size::Dw, R9, 0, R7),
        Insn::load(Size::Dw, R6, R10, -16),
    ]);

    // Size: r7 = the frame's length.
    a.label("build");
    if !multi {
        a.push([Insn::mov64_imm(R7, imm(template.bytes.len()))]);
    } else {
        let total: u32 = template.sizes.iter().map(|&(_, w)| w).sum();
        a.push([
            Insn::call(helper::GET_PRANDOM_U32),
            Insn::alu64_imm(Alu::Mod, R0, i32::try_from(total).expect("small weights")),
        ]);
        let mut below = 0;
        for (i, &(len, weight)) in template.sizes.iter().enumerate() {
            a.push([Insn::mov64_imm(R7, imm(len))]);
            below += weight;
            if i + 1 < template.sizes.len() {
                a.jump(Insn::jmp_imm(Jmp::Lt, R0, i32::try_from(below).expect("small"), 0), "sized");
            }
        }
        a.label("sized");
        a.push([Insn::mov64_reg(R1, R6), Insn::call(helper::XDP_GET_BUFF_LEN)]);
        a.push([
            Insn::mov64_reg(R2, R7),
            Insn::alu64_reg(Alu::Sub, R2, R0),
            Insn::mov64_reg(R1, R6),
            Insn::call(helper::XDP_ADJUST_TAIL),
        ]);
        // Cannot happen for our sizes (all within the page); dropped, it would show as loss.
        a.jump(Insn::jmp_imm(Jmp::Ne, R0, 0, 0), "drop");
    }

    // Headers: r8 = random; r2/r3 = the frame (loaded after the last call).
    a.push([
        Insn::call(helper::GET_PRANDOM_U32),
        Insn::mov64_reg(R8, R0),
        Insn::load(Size::W, R2, R6, xdp_md::DATA),
        Insn::load(Size::W, R3, R6, xdp_md::DATA_END),
        Insn::mov64_reg(R4, R2),
        Insn::alu64_imm(Alu::Add, R4, i32::from(off(HEADERS_LEN))),
    ]);
    // Too short to rewrite (never for our templates): send as is.
    a.jump(Insn::jmp_reg(Jmp::Gt, R4, R3, 0), "send");
    a.push([
        // IPv4 total length and UDP length.
        Insn::mov64_reg(R4, R7),
        Insn::alu64_imm(Alu::Sub, R4, i32::from(off(ETH_LEN))),
        Insn::mov64_reg(R5, R4),
        Insn::to_be16(R4),
        Insn::store(Size::H, R2, off(TOTAL_LEN_OFFSET), R4),
        Insn::mov64_reg(R4, R7),
        Insn::alu64_imm(Alu::Sub, R4, i32::from(off(ETH_LEN + 20))),
        Insn::to_be16(R4),
        Insn::store(Size::H, R2, off(UDP_LEN_OFFSET), R4),
        // r9 = client low bits; checksum = ~fold(base + total length + r9).
        Insn::mov64_reg(R9, R8),
        Insn::alu64_imm(Alu::And, R9, 0xffff),
        Insn::alu64_imm(Alu::Add, R5, i32::try_from(base).expect("a 20-byte header's sum fits 20 bits")),
        Insn::alu64_reg(Alu::Add, R5, R9),
        Insn::mov64_reg(R4, R5),
        Insn::alu64_imm(Alu::Rsh, R4, 16),
        Insn::alu64_imm(Alu::And, R5, 0xffff),
        Insn::alu64_reg(Alu::Add, R5, R4),
        Insn::mov64_reg(R4, R5),
        Insn::alu64_imm(Alu::Rsh, R4, 16),
        Insn::alu64_imm(Alu::And, R5, 0xffff),
        Insn::alu64_reg(Alu::Add, R5, R4),
        Insn::alu64_imm(Alu::Xor, R5, 0xffff),
        Insn::to_be16(R5),
        Insn::store(Size::H, R2, off(IP_CSUM_OFFSET), R5),
        Insn::to_be16(R9),
        Insn::store(Size::H, R2, off(CLIENT_LOW_OFFSET), R9),
        // Source port: the random's high half, in the ephemeral range.
        Insn::mov64_reg(R4, R8),
        Insn::alu64_imm(Alu::Rsh, R4, 16),
        Insn::alu64_imm(Alu::Or, R4, 0x8000),
        Insn::to_be16(R4),
        Insn::store(Size::H, R2, off(SRC_PORT_OFFSET), R4),
    ]);
    a.label("send");
    a.push([Insn::mov64_imm(R0, XdpAction::Tx as i32), Insn::exit()]);
    if multi {
        // (The verifier refuses unreachable instructions: only with the size draw.)
        a.label("drop");
        a.push([Insn::mov64_imm(R0, XdpAction::Drop as i32), Insn::exit()]);
    }
    a.finish()
}

/// What a counting program does after counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Return this verdict.
    Always(XdpAction),
    /// `XDP_PASS` one frame in `2^bits` at random (for the capture that checks them), drop the rest.
    SampleOneIn { bits: u32 },
}

/// A one-slot packet counter in an array map, read from user space.
#[derive(Debug)]
pub struct Counter {
    map: Map,
}

impl Counter {
    /// A new counter at zero.
    ///
    /// # Errors
    /// No CAP_BPF.
    pub fn new(name: &str) -> Result<Self> {
        Ok(Self { map: Map::create(MapType::Array, 4, 8, 1, name).context("BPF_MAP_CREATE (array)")? })
    }

    /// Frames counted so far.
    ///
    /// # Errors
    /// The lookup failed (never for a live array map).
    pub fn read(&self) -> Result<u64> {
        let mut value = [0u8; 8];
        self.map.lookup(&0u32.to_ne_bytes(), &mut value).context("reading a BPF counter")?;
        Ok(u64::from_ne_bytes(value))
    }

    /// `counter += 1` (atomically; clobbers r0–r5).
    fn increment(&self) -> Vec<Insn> {
        let mut insns = self.map.lookup_insns(0).to_vec();
        insns.extend([
            Insn::jmp_imm(Jmp::Eq, R0, 0, 2),
            Insn::mov64_imm(R1, 1),
            Insn::atomic_add64(R0, 0, R1),
        ]);
        insns
    }
}

/// Counts every frame in `counter`, then does `then`.
#[must_use]
pub fn counting(counter: &Counter, then: Then) -> Vec<Insn> {
    let mut insns = counter.increment();
    match then {
        Then::Always(action) => insns.extend([Insn::mov64_imm(R0, action as i32), Insn::exit()]),
        Then::SampleOneIn { bits } => {
            let mask = i32::try_from((1u64 << bits) - 1).expect("a sample rate of at most 1 in 2^31");
            insns.extend([
                Insn::call(helper::GET_PRANDOM_U32),
                Insn::alu64_imm(Alu::And, R0, mask),
                Insn::jmp_imm(Jmp::Ne, R0, 0, 2),
                Insn::mov64_imm(R0, XdpAction::Pass as i32),
                Insn::exit(),
                Insn::mov64_imm(R0, XdpAction::Drop as i32),
                Insn::exit(),
            ]);
        }
    }
    insns
}

/// Loads `insns` as an XDP program called `name`.
///
/// # Errors
/// No CAP_BPF, or the verifier refused (its log is in the error).
pub fn load(insns: &[Insn], name: &str) -> Result<Program> {
    Program::load_xdp(insns, name).with_context(|| format!("loading XDP program {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{CLIENT_BASE, Mix, mix_template};
    use glb_wire::{ipv4, udp};
    use std::collections::HashSet;

    fn root() -> bool {
        let privileged = rustix::process::geteuid().is_root();
        if !privileged {
            eprintln!("skipped: loading BPF programs needs root");
        }
        privileged
    }

    /// The generator keeps every header valid while spreading clients, ports and (IMIX) sizes;
    /// run on copies of each mix's template through BPF_PROG_TEST_RUN.
    #[test]
    fn generator_rewrites_clients_and_sizes_with_valid_headers() {
        if !root() {
            return;
        }
        let pacer = Pacer::new().expect("pacer map");
        for mix in Mix::ALL {
            let t = mix_template(mix, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            let program =
                load(&generator(&t, &pacer), "lr_test_gen").expect("verifier accepts the generator");
            let (mut clients, mut ports, mut sizes) = (HashSet::new(), HashSet::new(), HashMap::new());
            for _ in 0..600 {
                let run = program.test_run(&t.bytes).expect("test run");
                assert_eq!(run.retval, XdpAction::Tx as u32);
                let len = run.data.len();
                *sizes.entry(len).or_insert(0u32) += 1;
                let ip = ipv4::Packet::new_checked(&run.data[14..]).expect("IPv4");
                assert_eq!(usize::from(ip.total_len()), len - 14);
                assert!(ip.verify_checksum(), "IPv4 checksum of a rewritten frame");
                let client = u32::from(ip.src_addr());
                assert_eq!(client >> 16, u32::from(CLIENT_BASE) >> 16, "client stays in 198.18.0.0/16");
                let datagram = udp::Packet::new_checked(ip.payload()).expect("UDP");
                assert_eq!(usize::from(datagram.len()), len - 34);
                assert!(datagram.src_port() >= 0x8000);
                clients.insert(client);
                ports.insert(datagram.src_port());
                // Everything else is the template's.
                assert_eq!(run.data[..14], t.bytes[..14]);
                assert_eq!(run.data[42..], t.bytes[42..len]);
            }
            assert!(clients.len() > 500 && ports.len() > 500, "random clients and ports");
            let expected: Vec<usize> = t.sizes.iter().map(|&(len, _)| len).collect();
            let mut seen: Vec<usize> = sizes.keys().copied().collect();
            seen.sort_unstable();
            assert_eq!(seen, expected, "{mix:?}: every size of the mix, nothing else");
            for &(len, weight) in &t.sizes {
                let share = f64::from(sizes[&len]) / 600.0;
                let want = f64::from(weight) / f64::from(t.sizes.iter().map(|&(_, w)| w).sum::<u32>());
                assert!((share - want).abs() < 0.08, "{mix:?}: {len}-byte share {share:.2}, want {want:.2}");
            }
        }
    }

    /// Paced, frames leave at least an interval apart.
    #[test]
    fn pacer_spaces_frames() {
        if !root() {
            return;
        }
        let pacer = Pacer::new().expect("pacer map");
        let t = mix_template(Mix::Small, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let program = load(&generator(&t, &pacer), "lr_test_gen").expect("verifier");
        pacer.set(50_000).expect("set");
        let start = std::time::Instant::now();
        for _ in 0..21 {
            assert_eq!(program.test_run(&t.bytes).expect("run").retval, XdpAction::Tx as u32);
        }
        assert!(start.elapsed() >= std::time::Duration::from_micros(20 * 50), "{:?}", start.elapsed());
    }

    #[test]
    fn counting_programs_count_and_decide() {
        if !root() {
            return;
        }
        let counter = Counter::new("lr_test_count").expect("map");
        for (then, verdict) in [
            (Then::Always(XdpAction::Drop), XdpAction::Drop),
            (Then::Always(XdpAction::Tx), XdpAction::Tx),
            (Then::Always(XdpAction::Pass), XdpAction::Pass),
        ] {
            let program = load(&counting(&counter, then), "lr_test_count").expect("verifier");
            assert_eq!(program.test_run(&[0u8; 60]).expect("run").retval, verdict as u32);
        }
        assert_eq!(counter.read().expect("read"), 3);
        let program =
            load(&counting(&counter, Then::SampleOneIn { bits: 2 }), "lr_test_sample").expect("verifier");
        let passed = (0..4000)
            .filter(|_| program.test_run(&[0u8; 60]).expect("run").retval == XdpAction::Pass as u32)
            .count();
        assert!((700..1300).contains(&passed), "about one in 4 passed: {passed}");
        assert_eq!(counter.read().expect("read"), 4003);
    }
}
