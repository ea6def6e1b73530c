//! Raw `bpf(2)`: hand-assembled instructions, maps, program loading, XDP links and test runs,
//! without clang, libbpf or ELF.
//!
//! [`Insn`] encodes `struct bpf_insn`; its constructors cover the instructions our programs use
//! (the AF_XDP redirect program in `io::af_xdp::prog`, the line-rate harness's generator, sinks
//! and reflectors). [`Map`], [`Program`] and [`XdpLink`] own their file descriptors: dropping a
//! link detaches its program, also when the process dies (the kernel closes the fd).
//! [`Program::test_run`] and [`Program::run_live_frames`] wrap `BPF_PROG_TEST_RUN`.
//!
//! Each command passes the prefix of `union bpf_attr` it reads, as a `repr(C)` struct without
//! implicit padding (sizes asserted below); the kernel treats the rest of the union as zero.
#![allow(unsafe_code, reason = "the bpf(2) system call and wrapping the fds it returns")]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// bpf(2) commands (include/uapi/linux/bpf.h, enum bpf_cmd).
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_TEST_RUN: u32 = 10;
const BPF_LINK_CREATE: u32 = 28;
/// `enum bpf_prog_type`.
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`.
const BPF_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE`: generic XDP, run on the skb after the driver.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, run by the driver before any skb exists.
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `BPF_F_TEST_XDP_LIVE_FRAMES`: run the program on real frames and act on its verdicts.
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// `BPF_PSEUDO_MAP_FD`: the `src` of a 64-bit immediate load whose imm is a map fd.
const BPF_PSEUDO_MAP_FD: u8 = 1;
/// Most frames one live-frames batch may hold (`TEST_XDP_MAX_BATCH`).
pub const LIVE_FRAMES_MAX_BATCH: u32 = 256;

/// XDP verdicts (`enum xdp_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum XdpAction {
    /// `XDP_ABORTED`: drop, with a trace event.
    Aborted = 0,
    /// `XDP_DROP`.
    Drop = 1,
    /// `XDP_PASS`: on to the kernel stack.
    Pass = 2,
    /// `XDP_TX`: back out of the receiving interface.
    Tx = 3,
    /// `XDP_REDIRECT`: to a map's target (another device, an AF_XDP socket, a CPU).
    Redirect = 4,
}

/// Helper function ids (`enum bpf_func_id`).
pub mod helper {
    /// `void *bpf_map_lookup_elem(map, key)`.
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    /// `u32 bpf_get_prandom_u32(void)`.
    pub const GET_PRANDOM_U32: i32 = 7;
    /// `u64 bpf_ktime_get_ns(void)`: CLOCK_MONOTONIC.
    pub const KTIME_GET_NS: i32 = 5;
    /// `long bpf_redirect_map(map, key, flags)`.
    pub const REDIRECT_MAP: i32 = 51;
    /// `long bpf_xdp_adjust_tail(ctx, delta)`: grows or shrinks the frame at its end.
    pub const XDP_ADJUST_TAIL: i32 = 65;
    /// `u64 bpf_xdp_get_buff_len(ctx)`: the frame's length.
    pub const XDP_GET_BUFF_LEN: i32 = 188;
    /// `long bpf_tcp_raw_check_syncookie_ipv4(iph, th)`: 0 when the ACK carries a valid cookie.
    pub const TCP_RAW_CHECK_SYNCOOKIE_IPV4: i32 = 206;
    /// `long bpf_tcp_raw_check_syncookie_ipv6(iph, th)`: 0 when the ACK carries a valid cookie.
    pub const TCP_RAW_CHECK_SYNCOOKIE_IPV6: i32 = 207;
}

/// `offsetof(struct xdp_md, …)`, for loads from the context (r1 at entry).
pub mod xdp_md {
    /// `data`: the frame's first byte (a packet pointer once loaded).
    pub const DATA: i16 = 0;
    /// `data_end`: one past the frame's last byte.
    pub const DATA_END: i16 = 4;
    /// `rx_queue_index`.
    pub const RX_QUEUE_INDEX: i16 = 16;
}

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class | size/operation | mode/source.
    pub code: u8,
    /// `dst_reg:4, src_reg:4` (bitfields in declaration order, low nibble first on
    /// little-endian).
    pub regs: u8,
    /// Offset (memory access, jump distance in instructions after this one).
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

/// A register, `r0`..`r10` (`r10`: the read-only frame pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(u8);

/// Return value and helper result.
pub const R0: Reg = Reg(0);
/// First argument (the context at entry).
pub const R1: Reg = Reg(1);
/// Second argument.
pub const R2: Reg = Reg(2);
/// Third argument.
pub const R3: Reg = Reg(3);
/// Fourth argument.
pub const R4: Reg = Reg(4);
/// Fifth argument.
pub const R5: Reg = Reg(5);
/// Callee-saved.
pub const R6: Reg = Reg(6);
/// Callee-saved.
pub const R7: Reg = Reg(7);
/// Callee-saved.
pub const R8: Reg = Reg(8);
/// Callee-saved.
pub const R9: Reg = Reg(9);
/// Frame pointer (read-only; the stack is the 512 bytes below it).
pub const R10: Reg = Reg(10);

/// Access size of loads and stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 8 bits (`BPF_B`).
    B = 0x10,
    /// 16 bits (`BPF_H`).
    H = 0x08,
    /// 32 bits (`BPF_W`).
    W = 0x00,
    /// 64 bits (`BPF_DW`).
    Dw = 0x18,
}

/// Arithmetic operations (`BPF_ADD`…), for [`Insn::alu64_imm`] and [`Insn::alu64_reg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    /// `+=`
    Add = 0x00,
    /// `-=`
    Sub = 0x10,
    /// `|=`
    Or = 0x40,
    /// `&=`
    And = 0x50,
    /// `<<=`
    Lsh = 0x60,
    /// `>>=` (logical)
    Rsh = 0x70,
    /// `%=` (unsigned)
    Mod = 0x90,
    /// `^=`
    Xor = 0xa0,
    /// `=`
    Mov = 0xb0,
}

/// Jump conditions, for [`Insn::jmp_imm`] and [`Insn::jmp_reg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jmp {
    /// `==`
    Eq = 0x10,
    /// `>` (unsigned)
    Gt = 0x20,
    /// `>=` (unsigned)
    Ge = 0x30,
    /// `!=`
    Ne = 0x50,
    /// `<` (unsigned)
    Lt = 0xa0,
}

// Instruction classes and modes.
const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_ALU64: u8 = 0x07;
const MODE_IMM: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const MODE_ATOMIC: u8 = 0xc0;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const OP_END: u8 = 0xd0;
const OP_JA: u8 = 0x00;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;

impl Insn {
    /// The raw encoding.
    #[must_use]
    pub const fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Self {
        #[cfg(target_endian = "little")]
        let regs = (src.0 << 4) | dst.0;
        #[cfg(target_endian = "big")]
        let regs = (dst.0 << 4) | src.0;
        Self { code, regs, off, imm }
    }

    /// `dst op= imm` (64-bit).
    #[must_use]
    pub const fn alu64_imm(op: Alu, dst: Reg, imm: i32) -> Self {
        Self::new(CLASS_ALU64 | op as u8 | SRC_K, dst, R0, 0, imm)
    }

    /// `dst op= src` (64-bit).
    #[must_use]
    pub const fn alu64_reg(op: Alu, dst: Reg, src: Reg) -> Self {
        Self::new(CLASS_ALU64 | op as u8 | SRC_X, dst, src, 0, 0)
    }

    /// `dst = imm` (64-bit, sign-extended).
    #[must_use]
    pub const fn mov64_imm(dst: Reg, imm: i32) -> Self {
        Self::alu64_imm(Alu::Mov, dst, imm)
    }

    /// `dst = src` (64-bit).
    #[must_use]
    pub const fn mov64_reg(dst: Reg, src: Reg) -> Self {
        Self::alu64_reg(Alu::Mov, dst, src)
    }

    /// `dst = htobe16(dst)`: the low 16 bits in network byte order, the rest cleared.
    #[must_use]
    pub const fn to_be16(dst: Reg) -> Self {
        // BPF_ALU | BPF_END | BPF_TO_BE (the source bit), width in imm.
        Self::new(CLASS_ALU | OP_END | SRC_X, dst, R0, 0, 16)
    }

    /// `dst = *(size *)(src + off)`.
    #[must_use]
    pub const fn load(size: Size, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(CLASS_LDX | MODE_MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`.
    #[must_use]
    pub const fn store(size: Size, dst: Reg, off: i16, src: Reg) -> Self {
        Self::new(CLASS_STX | MODE_MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`.
    #[must_use]
    pub const fn store_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Self {
        Self::new(CLASS_ST | MODE_MEM | size as u8, dst, R0, off, imm)
    }

    /// `lock *(u64 *)(dst + off) += src` (`BPF_ATOMIC | BPF_ADD`).
    #[must_use]
    pub const fn atomic_add64(dst: Reg, off: i16, src: Reg) -> Self {
        Self::new(CLASS_STX | MODE_ATOMIC | Size::Dw as u8, dst, src, off, Alu::Add as i32)
    }

    /// `dst = map` (`BPF_PSEUDO_MAP_FD`): two slots, the verifier turns the fd into the map's
    /// address.
    #[must_use]
    pub const fn load_map_fd(dst: Reg, map_fd: i32) -> [Self; 2] {
        [
            Self::new(CLASS_LD | MODE_IMM | Size::Dw as u8, dst, Reg(BPF_PSEUDO_MAP_FD), 0, map_fd),
            Self::new(0, R0, R0, 0, 0),
        ]
    }

    /// `if dst cond imm goto +off`.
    #[must_use]
    pub const fn jmp_imm(cond: Jmp, dst: Reg, imm: i32, off: i16) -> Self {
        Self::new(CLASS_JMP | cond as u8 | SRC_K, dst, R0, off, imm)
    }

    /// `if dst cond src goto +off`.
    #[must_use]
    pub const fn jmp_reg(cond: Jmp, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(CLASS_JMP | cond as u8 | SRC_X, dst, src, off, 0)
    }

    /// `goto +off`.
    #[must_use]
    pub const fn ja(off: i16) -> Self {
        Self::new(CLASS_JMP | OP_JA, R0, R0, off, 0)
    }

    /// `r0 = helper(r1, …, r5)`; clobbers r1–r5.
    #[must_use]
    pub const fn call(helper: i32) -> Self {
        Self::new(CLASS_JMP | OP_CALL, R0, R0, 0, helper)
    }

    /// `return r0`.
    #[must_use]
    pub const fn exit() -> Self {
        Self::new(CLASS_JMP | OP_EXIT, R0, R0, 0, 0)
    }

    /// The destination register number.
    #[must_use]
    pub const fn dst(&self) -> u8 {
        #[cfg(target_endian = "little")]
        return self.regs & 0x0f;
        #[cfg(target_endian = "big")]
        return self.regs >> 4;
    }

    /// The source register number.
    #[must_use]
    pub const fn src(&self) -> u8 {
        #[cfg(target_endian = "little")]
        return self.regs >> 4;
        #[cfg(target_endian = "big")]
        return self.regs & 0x0f;
    }
}

/// The prefix of `union bpf_attr` that `BPF_MAP_CREATE` reads.
#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `BPF_MAP_LOOKUP_ELEM` / `BPF_MAP_UPDATE_ELEM` / `BPF_MAP_DELETE_ELEM`.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `BPF_PROG_LOAD`.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `BPF_LINK_CREATE` for XDP.
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// `BPF_PROG_TEST_RUN`.
#[repr(C)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `struct xdp_md` as a test run's context.
#[repr(C)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

const _: () = {
    assert!(size_of::<MapCreateAttr>() == 44);
    assert!(size_of::<MapElemAttr>() == 32);
    assert!(size_of::<ProgLoadAttr>() == 72);
    assert!(size_of::<LinkCreateAttr>() == 16);
    assert!(size_of::<TestRunAttr>() == 80);
    assert!(size_of::<XdpMd>() == 24);
    assert!(size_of::<Insn>() == 8);
};

/// Marker for the `bpf_attr` prefixes above.
///
/// # Safety
/// Implementors are `repr(C)` structs without implicit padding whose layout is the prefix of
/// `union bpf_attr` the command reads, with any pointers in them valid for the call.
unsafe trait BpfAttr {}
// SAFETY: each is a repr(C) prefix of `union bpf_attr`, padding explicit (sizes asserted above);
// the functions below fill their pointer fields from live borrows that outlive the call.
unsafe impl BpfAttr for MapCreateAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for MapElemAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for ProgLoadAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for LinkCreateAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for TestRunAttr {}

/// `bpf(cmd, attr, sizeof attr)`; the non-negative result.
fn bpf<A: BpfAttr>(cmd: u32, attr: &mut A) -> io::Result<i64> {
    // SAFETY: `attr` is a live, exclusively borrowed `bpf_attr` prefix of exactly
    // `size_of::<A>()` bytes (`BpfAttr`); the kernel reads at most that many bytes (treating the
    // rest of the union as zero) and may write back into them. Pointers inside it are valid for
    // the call (`BpfAttr`, upheld by the callers below).
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<A>()) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// Wraps a new fd returned by `bpf(2)`.
fn owned_fd(ret: i64) -> io::Result<OwnedFd> {
    let fd = i32::try_from(ret).map_err(|_| io::Error::other("bpf returned an out-of-range fd"))?;
    // SAFETY: the kernel just returned `fd` as a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn raw(fd: &OwnedFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

fn len32(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "buffer larger than 4 GiB"))
}

/// A kernel object name: at most 15 bytes, NUL-terminated.
#[must_use]
pub fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = name.len().min(15);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

/// Map types (`enum bpf_map_type`) we create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// `BPF_MAP_TYPE_ARRAY`: `u32` keys `0..entries`, preallocated zeroed values.
    Array = 2,
    /// `BPF_MAP_TYPE_XSKMAP`: queue index → AF_XDP socket fd.
    XskMap = 17,
}

/// A BPF map; closed on drop (the kernel frees it once no program uses it either).
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl Map {
    /// Creates a map.
    ///
    /// # Errors
    /// The kernel refused (no CAP_BPF, sizes invalid for the type, memory limit).
    pub fn create(
        kind: MapType,
        key_size: u32,
        value_size: u32,
        entries: u32,
        name: &str,
    ) -> io::Result<Self> {
        let mut attr = MapCreateAttr {
            map_type: kind as u32,
            key_size,
            value_size,
            max_entries: entries,
            map_flags: 0,
            inner_map_fd: 0,
            numa_node: 0,
            map_name: name16(name),
        };
        let fd = owned_fd(bpf(BPF_MAP_CREATE, &mut attr)?)?;
        Ok(Self { fd, key_size: key_size as usize, value_size: value_size as usize })
    }

    /// The fd, for [`Insn::load_map_fd`].
    #[must_use]
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Instructions for `r0 = bpf_map_lookup_elem(map, &key)` with a `u32` key (the value's
    /// address, or 0): the key goes in the stack word at `r10 - 4`; r1–r5 are clobbered.
    #[must_use]
    pub fn lookup_insns(&self, key: i32) -> [Insn; 6] {
        let [map_lo, map_hi] = Insn::load_map_fd(R1, self.raw_fd());
        [
            Insn::store_imm(Size::W, R10, -4, key),
            map_lo,
            map_hi,
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(Alu::Add, R2, -4),
            Insn::call(helper::MAP_LOOKUP_ELEM),
        ]
    }

    fn check(&self, key: &[u8], value: Option<usize>) -> io::Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v != self.value_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "map key/value of {}/{:?} bytes, expected {}/{}",
                    key.len(),
                    value,
                    self.key_size,
                    self.value_size
                ),
            ));
        }
        Ok(())
    }

    fn elem(&self, cmd: u32, key: &[u8], value: u64) -> io::Result<()> {
        let mut attr =
            MapElemAttr { map_fd: raw(&self.fd), _pad: 0, key: key.as_ptr() as u64, value, flags: 0 };
        bpf(cmd, &mut attr).map(drop)
    }

    /// Sets `key` to `value` (`BPF_ANY`).
    ///
    /// # Errors
    /// Wrong sizes, or the kernel refused (key out of range, value not valid for the type).
    pub fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.check(key, Some(value.len()))?;
        self.elem(BPF_MAP_UPDATE_ELEM, key, value.as_ptr() as u64)
    }

    /// Reads `key` into `value`.
    ///
    /// # Errors
    /// Wrong sizes, or no such key (`ENOENT`).
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> io::Result<()> {
        self.check(key, Some(value.len()))?;
        self.elem(BPF_MAP_LOOKUP_ELEM, key, value.as_mut_ptr() as u64)
    }

    /// Removes `key`; a missing key is not an error.
    ///
    /// # Errors
    /// Wrong key size, or the kernel refused.
    pub fn delete(&self, key: &[u8]) -> io::Result<()> {
        self.check(key, None)?;
        match self.elem(BPF_MAP_DELETE_ELEM, key, 0) {
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e),
            _ => Ok(()),
        }
    }
}

/// Where an XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) XDP, `XDP_FLAGS_DRV_MODE`.
    Native,
    /// Generic XDP on the skb, `XDP_FLAGS_SKB_MODE` (drivers without XDP support).
    Generic,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            Self::Native => XDP_FLAGS_DRV_MODE,
            Self::Generic => XDP_FLAGS_SKB_MODE,
        }
    }
}

impl std::fmt::Display for XdpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native (driver)",
            Self::Generic => "generic (skb)",
        })
    }
}

/// A loaded XDP program; unloaded once closed and detached.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

/// What [`Program::test_run`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    /// The program's verdict (`XDP_*`).
    pub retval: u32,
    /// The frame as the program left it.
    pub data: Vec<u8>,
}

impl Program {
    /// Loads an XDP program (license "Dual MIT/GPL", which the kernel accepts as GPL-compatible;
    /// the instructions are data we hand to the kernel, not part of this crate's licensing). On
    /// failure the error carries the verifier's log.
    ///
    /// # Errors
    /// No CAP_BPF, or the verifier rejected the program.
    pub fn load_xdp(insns: &[Insn], name: &str) -> io::Result<Self> {
        const LICENSE: &[u8] = b"Dual MIT/GPL\0";
        let insn_cnt = len32(insns.len())?;
        let mut log = vec![0u8; 64 * 1024];
        let attempt = |log_level: u32, log: &mut [u8]| {
            let mut attr = ProgLoadAttr {
                prog_type: BPF_PROG_TYPE_XDP,
                insn_cnt,
                insns: insns.as_ptr() as u64,
                license: LICENSE.as_ptr() as u64,
                log_level,
                log_size: if log_level == 0 { 0 } else { u32::try_from(log.len()).unwrap_or(u32::MAX) },
                log_buf: if log_level == 0 { 0 } else { log.as_mut_ptr() as u64 },
                kern_version: 0,
                prog_flags: 0,
                prog_name: name16(name),
                prog_ifindex: 0,
                expected_attach_type: BPF_XDP,
            };
            bpf(BPF_PROG_LOAD, &mut attr)
        };
        match attempt(0, &mut log) {
            Ok(fd) => Ok(Self { fd: owned_fd(fd)? }),
            Err(first) => {
                // Again with the verifier log, to say why.
                let _ = attempt(1, &mut log);
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                Err(io::Error::new(first.kind(), format!("{first}; verifier log: {}", text.trim())))
            }
        }
    }

    /// Attaches the program to interface `ifindex` (of the calling thread's network namespace)
    /// through a BPF link: detached when the link is dropped.
    ///
    /// # Errors
    /// The interface has another XDP program (`EBUSY`/`EEXIST`), or refuses this mode.
    pub fn attach_xdp(&self, ifindex: u32, mode: XdpMode) -> io::Result<XdpLink> {
        let mut attr = LinkCreateAttr {
            prog_fd: raw(&self.fd),
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: mode.flags(),
        };
        Ok(XdpLink { _fd: owned_fd(bpf(BPF_LINK_CREATE, &mut attr)?)?, mode })
    }

    /// Runs the program once on a copy of `frame` (no device involved): its verdict and the
    /// frame as it left it.
    ///
    /// # Errors
    /// The kernel refused the run (frame too short or too long for a page).
    pub fn test_run(&self, frame: &[u8]) -> io::Result<TestRun> {
        let mut out = vec![0u8; frame.len() + 256];
        let (retval, len) = self.run_once(frame, Some(&mut out))?;
        out.truncate(len);
        Ok(TestRun { retval, data: out })
    }

    /// Runs the program once on a copy of `frame` and returns only its verdict: no allocation,
    /// for per-packet questions answered by the kernel (glb-redirect's SYN-cookie check).
    ///
    /// # Errors
    /// The kernel refused the run (frame too short or too long for a page).
    pub fn verdict(&self, frame: &[u8]) -> io::Result<u32> {
        Ok(self.run_once(frame, None)?.0)
    }

    /// One `BPF_PROG_TEST_RUN` over `frame`, copying the result into `out` when given: the
    /// verdict and the output length.
    fn run_once(&self, frame: &[u8], out: Option<&mut [u8]>) -> io::Result<(u32, usize)> {
        let (data_out, data_size_out) = match out {
            Some(out) => (out.as_mut_ptr() as u64, len32(out.len())?),
            None => (0, 0),
        };
        let mut attr = TestRunAttr {
            prog_fd: raw(&self.fd),
            retval: 0,
            data_size_in: len32(frame.len())?,
            data_size_out,
            data_in: frame.as_ptr() as u64,
            data_out,
            repeat: 1,
            duration: 0,
            ctx_size_in: 0,
            ctx_size_out: 0,
            ctx_in: 0,
            ctx_out: 0,
            flags: 0,
            cpu: 0,
            batch_size: 0,
            _pad: 0,
        };
        bpf(BPF_PROG_TEST_RUN, &mut attr)?;
        Ok((attr.retval, attr.data_size_out as usize))
    }

    /// Runs the program `repeat` times on live frames, each a fresh copy of `frame` "received"
    /// on interface `ingress_ifindex` (of the calling thread's network namespace), `batch` frames
    /// at a time (at most [`LIVE_FRAMES_MAX_BATCH`]): an `XDP_TX` verdict transmits the frame out
    /// of that interface, `XDP_REDIRECT` sends it on, `XDP_PASS` hands it to the stack. The
    /// fastest frame generator the kernel has (`BPF_F_TEST_XDP_LIVE_FRAMES`, Linux 5.18).
    ///
    /// Returns the kernel's mean time per frame in nanoseconds, measured over the loop alone (a
    /// call also spends tens of milliseconds setting up and tearing down its page pool).
    ///
    /// # Errors
    /// No such interface, a frame the kernel cannot place in a page, or a kernel without live
    /// frames (`EINVAL`).
    pub fn run_live_frames(
        &self,
        frame: &[u8],
        ingress_ifindex: u32,
        repeat: u32,
        batch: u32,
    ) -> io::Result<u32> {
        let size = len32(frame.len())?;
        let ctx = XdpMd {
            data: 0,
            data_end: size,
            data_meta: 0,
            ingress_ifindex,
            rx_queue_index: 0,
            egress_ifindex: 0,
        };
        let mut attr = TestRunAttr {
            prog_fd: raw(&self.fd),
            retval: 0,
            data_size_in: size,
            data_size_out: 0,
            data_in: frame.as_ptr() as u64,
            data_out: 0,
            repeat,
            duration: 0,
            ctx_size_in: len32(size_of::<XdpMd>())?,
            ctx_size_out: 0,
            ctx_in: std::ptr::from_ref(&ctx) as u64,
            ctx_out: 0,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            cpu: 0,
            batch_size: batch.min(LIVE_FRAMES_MAX_BATCH),
            _pad: 0,
        };
        bpf(BPF_PROG_TEST_RUN, &mut attr)?;
        Ok(attr.duration)
    }
}

/// An XDP program attached to an interface; detached when dropped (or when the process exits).
#[derive(Debug)]
pub struct XdpLink {
    /// Held for its drop.
    _fd: OwnedFd,
    mode: XdpMode,
}

impl XdpLink {
    /// Where the program runs.
    #[must_use]
    pub fn mode(&self) -> XdpMode {
        self.mode
    }
}

/// Whether `e` says the interface already has an XDP program.
#[must_use]
pub fn is_busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EEXIST))
}

/// Whether `e` says the caller lacks the privileges for BPF.
#[must_use]
pub fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_kernel_layout() {
        // Reference encodings from the kernel's include/linux/filter.h macros.
        let e = |i: Insn| (i.code, i.regs, i.off, i.imm);
        assert_eq!(e(Insn::load(Size::W, R2, R1, 16)), (0x61, 0x12, 16, 0));
        assert_eq!(e(Insn::mov64_imm(R3, 2)), (0xb7, 0x03, 0, 2));
        assert_eq!(e(Insn::mov64_reg(R6, R1)), (0xbf, 0x16, 0, 0));
        assert_eq!(e(Insn::call(51)), (0x85, 0x00, 0, 51));
        assert_eq!(e(Insn::exit()), (0x95, 0, 0, 0));
        assert_eq!(e(Insn::store(Size::H, R2, 28, R8)), (0x6b, 0x82, 28, 0));
        assert_eq!(e(Insn::store_imm(Size::W, R10, -4, 0)), (0x62, 0x0a, -4, 0));
        assert_eq!(e(Insn::atomic_add64(R0, 8, R1)), (0xdb, 0x10, 8, 0));
        assert_eq!(e(Insn::to_be16(R5)), (0xdc, 0x05, 0, 16));
        assert_eq!(e(Insn::alu64_imm(Alu::And, R7, 0xffff)), (0x57, 0x07, 0, 0xffff));
        assert_eq!(e(Insn::alu64_imm(Alu::Rsh, R4, 16)), (0x77, 0x04, 0, 16));
        assert_eq!(e(Insn::alu64_reg(Alu::Add, R5, R4)), (0x0f, 0x45, 0, 0));
        assert_eq!(e(Insn::jmp_reg(Jmp::Gt, R4, R3, 5)), (0x2d, 0x34, 5, 0));
        assert_eq!(e(Insn::jmp_imm(Jmp::Eq, R0, 0, 2)), (0x15, 0x00, 2, 0));
        assert_eq!(e(Insn::jmp_imm(Jmp::Lt, R0, 7, -4)), (0xa5, 0x00, -4, 7));
        assert_eq!(e(Insn::alu64_imm(Alu::Mod, R0, 12)), (0x97, 0x00, 0, 12));
        assert_eq!(e(Insn::ja(3)), (0x05, 0, 3, 0));
        let [lo, hi] = Insn::load_map_fd(R1, 7);
        assert_eq!((e(lo), e(hi)), ((0x18, 0x11, 0, 7), (0, 0, 0, 0)));
        assert_eq!((lo.dst(), lo.src()), (1, 1));
    }

    #[test]
    fn name_is_truncated_and_terminated() {
        assert_eq!(&name16("glb_xsk_redir")[..14], b"glb_xsk_redir\0");
        assert_eq!(name16("a_very_long_program_name")[15], 0);
    }

    /// The verifier accepts a program using a map, a helper, an atomic add and packet bounds,
    /// and a test run executes it (needs CAP_BPF; skipped otherwise).
    #[test]
    fn load_and_test_run() {
        let map = match Map::create(MapType::Array, 4, 8, 1, "glb_test") {
            Ok(map) => map,
            Err(e) if is_permission(&e) => {
                eprintln!("skipped: creating a BPF map needs CAP_BPF ({e})");
                return;
            }
            Err(e) => panic!("BPF_MAP_CREATE: {e}"),
        };
        // counter[0] += 1; if the frame has 2 bytes, write 0xabcd into them; return XDP_TX.
        let mut program = vec![Insn::mov64_reg(R6, R1)];
        program.extend(map.lookup_insns(0));
        program.extend([
            Insn::jmp_imm(Jmp::Eq, R0, 0, 2),
            Insn::mov64_imm(R1, 1),
            Insn::atomic_add64(R0, 0, R1),
            Insn::load(Size::W, R2, R6, xdp_md::DATA),
            Insn::load(Size::W, R3, R6, xdp_md::DATA_END),
            Insn::mov64_reg(R4, R2),
            Insn::alu64_imm(Alu::Add, R4, 2),
            Insn::jmp_reg(Jmp::Gt, R4, R3, 3),
            Insn::mov64_imm(R5, 0xabcd),
            Insn::to_be16(R5),
            Insn::store(Size::H, R2, 0, R5),
            Insn::mov64_imm(R0, XdpAction::Tx as i32),
            Insn::exit(),
        ]);
        let program = Program::load_xdp(&program, "glb_test").expect("BPF_PROG_LOAD");
        let run = program.test_run(&[0u8; 64]).expect("BPF_PROG_TEST_RUN");
        assert_eq!(run.retval, XdpAction::Tx as u32);
        assert_eq!(&run.data[..3], &[0xab, 0xcd, 0]);
        assert_eq!(run.data.len(), 64);
        let mut count = [0u8; 8];
        map.lookup(&0u32.to_ne_bytes(), &mut count).expect("lookup");
        assert_eq!(u64::from_ne_bytes(count), 1);
        assert!(map.lookup(&[0u8; 3], &mut count).is_err(), "wrong key size refused");
    }
}
