//! Raw `bpf(2)`: programs assembled by hand as [`Insn`]s, loaded, attached and test-run without
//! clang, libbpf or ELF (include/uapi/linux/bpf.h is the reference for every layout here).
//!
//! Each command passes the prefix of `union bpf_attr` it reads as its own `repr(C)` struct with
//! explicit padding (sizes asserted at compile time); the kernel treats the rest of the union
//! as zero.

#![allow(unsafe_code, reason = "the bpf(2) system call and wrapping the fds it returns")]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// bpf(2) commands (enum bpf_cmd).
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_TEST_RUN: u32 = 10;
const BPF_LINK_CREATE: u32 = 28;

/// `BPF_PROG_TYPE_XDP` (enum bpf_prog_type).
pub const PROG_TYPE_XDP: u32 = 6;
/// `BPF_XDP` (enum bpf_attach_type).
pub const ATTACH_XDP: u32 = 37;
/// `XDP_ABORTED`.
pub const XDP_ABORTED: i32 = 0;
/// `XDP_DROP`.
pub const XDP_DROP: i32 = 1;
/// `XDP_PASS`.
pub const XDP_PASS: i32 = 2;
/// `BPF_PSEUDO_MAP_FD`: the `src` of a 64-bit immediate load whose imm is a map fd.
pub const PSEUDO_MAP_FD: u8 = 1;

/// Opcodes (class | size/op | mode/source) of the instructions the workspace's programs use.
pub mod op {
    /// `BPF_LDX | BPF_MEM | BPF_W`: `dst = *(u32 *)(src + off)`.
    pub const LDX_MEM_W: u8 = 0x61;
    /// `BPF_LD | BPF_IMM | BPF_DW`: 64-bit immediate (two slots).
    pub const LD_IMM_DW: u8 = 0x18;
    /// `BPF_ALU64 | BPF_MOV | BPF_K`: `dst = imm`.
    pub const ALU64_MOV_K: u8 = 0xb7;
    /// `BPF_ALU64 | BPF_MOV | BPF_X`: `dst = src`.
    pub const ALU64_MOV_X: u8 = 0xbf;
    /// `BPF_ALU64 | BPF_ADD | BPF_K`: `dst += imm`.
    pub const ALU64_ADD_K: u8 = 0x07;
    /// `BPF_JMP | BPF_JGT | BPF_X`: `if dst > src goto +off` (unsigned).
    pub const JMP_JGT_X: u8 = 0x2d;
    /// `BPF_JMP | BPF_JNE | BPF_K`: `if dst != imm goto +off`.
    pub const JMP_JNE_K: u8 = 0x55;
    /// `BPF_JMP | BPF_CALL`: call helper `imm`.
    pub const JMP_CALL: u8 = 0x85;
    /// `BPF_JMP | BPF_EXIT`: return `r0`.
    pub const JMP_EXIT: u8 = 0x95;
}

/// Register numbers: `R0` return value, `R1`–`R5` arguments (`R1` is the context on entry).
pub mod reg {
    /// Return value.
    pub const R0: u8 = 0;
    /// First argument; the context on entry.
    pub const R1: u8 = 1;
    /// Second argument.
    pub const R2: u8 = 2;
    /// Third argument.
    pub const R3: u8 = 3;
    /// Fourth argument.
    pub const R4: u8 = 4;
}

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// `dst_reg:4, src_reg:4` (bitfields in declaration order, low nibble first on
    /// little-endian).
    pub regs: u8,
    /// Offset (memory access, jump).
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl Insn {
    /// An instruction from its fields.
    #[must_use]
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        #[cfg(target_endian = "little")]
        let regs = (src << 4) | dst;
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | src;
        Self { code, regs, off, imm }
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

/// `BPF_MAP_UPDATE_ELEM` / `BPF_MAP_DELETE_ELEM`.
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

const _: () = {
    assert!(size_of::<MapCreateAttr>() == 44);
    assert!(size_of::<MapElemAttr>() == 32);
    assert!(size_of::<ProgLoadAttr>() == 72);
    assert!(size_of::<LinkCreateAttr>() == 16);
    assert!(size_of::<TestRunAttr>() == 80);
    assert!(size_of::<Insn>() == 8);
};

/// Marker for the `bpf_attr` prefixes above.
///
/// # Safety
/// Implementors are `repr(C)` structs without implicit padding whose layout is the prefix of
/// `union bpf_attr` the command reads, with any pointers in them valid for the call.
unsafe trait BpfAttr {}
// SAFETY: each is a repr(C) prefix of `union bpf_attr`, padding explicit (sizes asserted above);
// the functions below fill their pointers from live borrows that outlast the call.
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
    // the call (`BpfAttr`).
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<A>()) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// Wraps a new fd returned by `bpf(2)`.
fn owned_fd(ret: i64) -> io::Result<OwnedFd> {
    let fd = i32::try_from(ret).map_err(|_| io::Error::other("bpf returned an out-of-range fd"))?;
    // SAFETY: the kernel just returned `fd` as a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An object name as the kernel stores it: at most 15 bytes and a NUL.
#[must_use]
pub fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = name.len().min(15);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// Creates a map of `map_type` (`enum bpf_map_type`) with 4-byte keys and values.
///
/// # Errors
/// The kernel refuses (no `CAP_BPF`, unknown type, ...).
pub fn create_map_u32(map_type: u32, max_entries: u32, name: &str) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size: 4,
        value_size: 4,
        max_entries,
        map_flags: 0,
        inner_map_fd: 0,
        numa_node: 0,
        map_name: name16(name),
    };
    owned_fd(bpf(BPF_MAP_CREATE, &mut attr)?)
}

/// Sets `map[key] = value` in a map of 4-byte keys and values.
///
/// # Errors
/// The kernel refuses (key out of range, value not acceptable for the map type, ...).
pub fn map_update_u32(map: &OwnedFd, key: u32, value: u32) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd_u32(map),
        _pad: 0,
        key: std::ptr::from_ref(&key) as u64,
        value: std::ptr::from_ref(&value) as u64,
        flags: 0, // BPF_ANY
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// Deletes `map[key]`; a missing key is not an error.
///
/// # Errors
/// The kernel refuses.
pub fn map_delete_u32(map: &OwnedFd, key: u32) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd_u32(map),
        _pad: 0,
        key: std::ptr::from_ref(&key) as u64,
        value: 0,
        flags: 0,
    };
    match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e),
        _ => Ok(()),
    }
}

/// What [`load_program`] loads.
#[derive(Debug, Clone, Copy)]
pub struct Program<'a> {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `enum bpf_attach_type` the program is meant for.
    pub expected_attach_type: u32,
    /// The instructions (map fds already patched in).
    pub insns: &'a [Insn],
    /// The license, NUL-terminated; GPL-only helpers need a GPL-compatible one.
    pub license: &'a [u8],
    /// Name shown by `bpftool prog` (truncated to 15 bytes).
    pub name: &'a str,
}

/// Loads a program; on failure the error carries the verifier's log.
///
/// # Errors
/// The license is not NUL-terminated, or the kernel refuses (no `CAP_BPF`, the verifier rejects
/// the program, ...).
pub fn load_program(program: &Program<'_>) -> io::Result<OwnedFd> {
    if program.license.last() != Some(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "BPF license string must end in NUL"));
    }
    let mut log = vec![0u8; 64 * 1024];
    let attempt = |log_level: u32, log: &mut [u8]| {
        let mut attr = ProgLoadAttr {
            prog_type: program.prog_type,
            insn_cnt: u32::try_from(program.insns.len()).unwrap_or(u32::MAX),
            insns: program.insns.as_ptr() as u64,
            license: program.license.as_ptr() as u64,
            log_level,
            log_size: if log_level == 0 { 0 } else { u32::try_from(log.len()).unwrap_or(u32::MAX) },
            log_buf: if log_level == 0 { 0 } else { log.as_mut_ptr() as u64 },
            kern_version: 0,
            prog_flags: 0,
            prog_name: name16(program.name),
            prog_ifindex: 0,
            expected_attach_type: program.expected_attach_type,
        };
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    match attempt(0, &mut log) {
        Ok(fd) => owned_fd(fd),
        Err(first) => {
            // Again with the verifier log, to say why.
            let _ = attempt(1, &mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            Err(io::Error::new(first.kind(), format!("{first}; verifier log: {}", text.trim())))
        }
    }
}

/// Attaches `prog` to interface `ifindex` with `BPF_LINK_CREATE`; closing the returned link
/// detaches it.
///
/// # Errors
/// The kernel refuses (`EBUSY`/`EEXIST`: a program is already attached; mode not supported).
pub fn link_create(prog: &OwnedFd, ifindex: u32, attach_type: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr { prog_fd: fd_u32(prog), target_ifindex: ifindex, attach_type, flags };
    owned_fd(bpf(BPF_LINK_CREATE, &mut attr)?)
}

/// Runs `prog` once over a copy of `data` (`BPF_PROG_TEST_RUN`, no context, output discarded)
/// and returns the program's return value.
///
/// # Errors
/// The kernel refuses (data too short for the program type, ...).
pub fn test_run(prog: &OwnedFd, data: &[u8]) -> io::Result<u32> {
    let mut attr = TestRunAttr {
        prog_fd: fd_u32(prog),
        retval: 0,
        data_size_in: u32::try_from(data.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        data_size_out: 0,
        data_in: data.as_ptr() as u64,
        data_out: 0,
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
    Ok(attr.retval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_truncated_and_terminated() {
        assert_eq!(&name16("glb_xsk_redir")[..14], b"glb_xsk_redir\0");
        assert_eq!(name16("a_very_long_program_name")[15], 0);
    }

    #[test]
    fn registers_pack_like_the_kernel_bitfield() {
        let i = Insn::new(op::LDX_MEM_W, reg::R2, reg::R1, 16, 0);
        assert_eq!((i.code, i.regs, i.off), (0x61, 0x12, 16));
    }

    /// The smallest XDP program loads and test-runs (needs CAP_BPF and CAP_NET_ADMIN; skipped
    /// otherwise).
    #[test]
    fn load_and_test_run() {
        let insns =
            [Insn::new(op::ALU64_MOV_K, reg::R0, 0, 0, XDP_PASS), Insn::new(op::JMP_EXIT, 0, 0, 0, 0)];
        let program = Program {
            prog_type: PROG_TYPE_XDP,
            expected_attach_type: ATTACH_XDP,
            insns: &insns,
            license: b"Dual MIT/GPL\0",
            name: "glb_sys_test",
        };
        let prog = match load_program(&program) {
            Ok(prog) => prog,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                eprintln!("skipped: loading a BPF program needs CAP_BPF and CAP_NET_ADMIN ({e})");
                return;
            }
            Err(e) => panic!("BPF_PROG_LOAD: {e}"),
        };
        assert_eq!(test_run(&prog, &[0u8; 64]).expect("test run"), 2);
        assert!(test_run(&prog, &[0u8; 4]).is_err(), "shorter than an Ethernet header");
        let unterminated = Program { license: b"GPL", ..program };
        assert!(load_program(&unterminated).is_err());
    }
}
