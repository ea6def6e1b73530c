//! The XDP redirect program and its loader: raw `bpf(2)`, no clang, no libbpf, no ELF.
//!
//! The program is `return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);`,
//! assembled by hand below ([`PROGRAM`]). A frame arriving on a queue that has a socket in the
//! XSKMAP goes to that socket; on any other queue the map lookup fails and the `XDP_PASS` in the
//! flags' low bits hands the frame to the kernel stack.
//!
//! Its license string is `"Dual MIT/GPL"`: the instructions are data the director loads into
//! the kernel, which accepts the string as GPL-compatible (the one helper used,
//! `bpf_redirect_map`, is not GPL-only anyway); it does not affect the director's own license.
//!
//! One [`Attachment`] per interface (and network namespace): the XSKMAP, the loaded program and
//! the `BPF_LINK_CREATE` link that attaches it. Every socket on the interface shares it through
//! an `Arc`; the last one dropped closes the link, which detaches the program — also when the
//! process dies, since the kernel closes the fd.

use super::super::IoError;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Entries of the XSKMAP: the highest queue number a socket can serve, plus one.
pub const XSKMAP_ENTRIES: u32 = 256;

// bpf(2) commands (include/uapi/linux/bpf.h, enum bpf_cmd).
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_PROG_LOAD: u32 = 5;
const BPF_LINK_CREATE: u32 = 28;
/// `enum bpf_map_type`.
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
/// `enum bpf_prog_type`.
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`.
const BPF_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE`: generic XDP, run on the skb after the driver.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, run by the driver before any skb exists.
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `XDP_PASS`.
const XDP_PASS: i32 = 2;
/// `BPF_FUNC_redirect_map`.
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
/// `BPF_PSEUDO_MAP_FD`: the `src` of a 64-bit immediate load whose imm is a map fd.
const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `offsetof(struct xdp_md, rx_queue_index)`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// `dst_reg:4, src_reg:4` (bitfields in declaration order, low nibble first on
    /// little-endian).
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    #[cfg(target_endian = "little")]
    let regs = (src << 4) | dst;
    #[cfg(target_endian = "big")]
    let regs = (dst << 4) | src;
    Insn { code, regs, off, imm }
}

// Opcodes used (class | size/op | mode/source).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const LD_IMM_DW: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW (two slots)
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP_CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;

/// Index of the 64-bit immediate load whose `imm` [`program`] patches with the map fd.
const MAP_FD_INSN: usize = 1;

/// The program, with the map fd still 0 (see [`program`]).
pub const PROGRAM: [Insn; 6] = [
    // r2 = *(u32 *)(r1 + 16): r1 is the `struct xdp_md *` context, r2 = ctx->rx_queue_index.
    insn(LDX_MEM_W, R2, R1, XDP_MD_RX_QUEUE_INDEX, 0),
    // r1 = &xsks_map (first half: imm = map fd, src = BPF_PSEUDO_MAP_FD; the verifier turns
    // the fd into the map's address) ...
    insn(LD_IMM_DW, R1, BPF_PSEUDO_MAP_FD, 0, 0),
    // ... (second half: the upper 32 bits of the immediate, 0).
    insn(0, 0, 0, 0, 0),
    // r3 = XDP_PASS: bpf_redirect_map's flags; the low bits are the action when the queue
    // has no socket in the map.
    insn(ALU64_MOV_K, R3, 0, 0, XDP_PASS),
    // r0 = bpf_redirect_map(r1 = map, r2 = key, r3 = flags): XDP_REDIRECT or XDP_PASS.
    insn(JMP_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
    // return r0.
    insn(JMP_EXIT, R0, 0, 0, 0),
];

/// [`PROGRAM`] referring to the map `map_fd`.
#[must_use]
pub fn program(map_fd: i32) -> [Insn; PROGRAM.len()] {
    let mut insns = PROGRAM;
    insns[MAP_FD_INSN].imm = map_fd;
    insns
}

/// The prefix of `union bpf_attr` that `BPF_MAP_CREATE` reads (no implicit padding).
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

const _: () = {
    assert!(size_of::<MapCreateAttr>() == 44);
    assert!(size_of::<MapElemAttr>() == 32);
    assert!(size_of::<ProgLoadAttr>() == 72);
    assert!(size_of::<LinkCreateAttr>() == 16);
    assert!(size_of::<Insn>() == 8);
};

/// Marker for the `bpf_attr` prefixes above.
///
/// # Safety
/// Implementors are `repr(C)` structs without implicit padding whose layout is the prefix of
/// `union bpf_attr` the command reads, with any pointers in them valid for the call.
unsafe trait BpfAttr {}
// SAFETY: each is a repr(C) prefix of `union bpf_attr`, padding explicit (sizes asserted above).
unsafe impl BpfAttr for MapCreateAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for MapElemAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for ProgLoadAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for LinkCreateAttr {}

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

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = name.len().min(15);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

/// Creates the XSKMAP (key: queue index, value: socket fd).
pub fn create_xskmap() -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries: XSKMAP_ENTRIES,
        map_flags: 0,
        inner_map_fd: 0,
        numa_node: 0,
        map_name: name16("glb_xsks"),
    };
    owned_fd(bpf(BPF_MAP_CREATE, &mut attr)?)
}

/// Loads [`program`] for `map`; on failure the error carries the verifier's log.
pub fn load_program(map: &OwnedFd) -> io::Result<OwnedFd> {
    const LICENSE: &[u8] = b"Dual MIT/GPL\0";
    let insns = program(map.as_raw_fd());
    let mut log = vec![0u8; 64 * 1024];
    let attempt = |log_level: u32, log: &mut [u8]| {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level,
            log_size: if log_level == 0 { 0 } else { u32::try_from(log.len()).unwrap_or(u32::MAX) },
            log_buf: if log_level == 0 { 0 } else { log.as_mut_ptr() as u64 },
            kern_version: 0,
            prog_flags: 0,
            prog_name: name16("glb_xsk_redir"),
            prog_ifindex: 0,
            expected_attach_type: BPF_XDP,
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

/// Where the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) XDP, `XDP_FLAGS_DRV_MODE`.
    Native,
    /// Generic XDP on the skb, `XDP_FLAGS_SKB_MODE` (drivers without XDP support).
    Generic,
}

impl std::fmt::Display for XdpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native (driver)",
            Self::Generic => "generic (skb)",
        })
    }
}

fn link_create(prog: &OwnedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: u32::try_from(prog.as_raw_fd()).unwrap_or(u32::MAX),
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags,
    };
    owned_fd(bpf(BPF_LINK_CREATE, &mut attr)?)
}

/// The program attached to one interface, with its map. Fields drop in order: the link first
/// (detaching the program), then the program, then the map.
#[derive(Debug)]
pub struct Attachment {
    /// Held for its drop: closing it detaches the program.
    _link: OwnedFd,
    /// Held for its drop.
    _prog: OwnedFd,
    map: OwnedFd,
    mode: XdpMode,
    ifindex: u32,
    netns: (u64, u64),
    interface: String,
}

impl Attachment {
    /// Creates the map, loads the program and attaches it to `ifindex`: native mode first,
    /// generic when the driver refuses native.
    fn attach(interface: &str, ifindex: u32, netns: (u64, u64)) -> Result<Self, IoError> {
        let map = create_xskmap().map_err(|e| IoError::os("af_xdp: BPF_MAP_CREATE (XSKMAP)", e))?;
        let prog = load_program(&map).map_err(|e| IoError::os("af_xdp: BPF_PROG_LOAD (XDP redirect)", e))?;
        let busy = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EEXIST));
        let (link, mode) = match link_create(&prog, ifindex, XDP_FLAGS_DRV_MODE) {
            Ok(link) => (link, XdpMode::Native),
            Err(e) if busy(&e) => return Err(already_attached(interface, e)),
            Err(native) => match link_create(&prog, ifindex, XDP_FLAGS_SKB_MODE) {
                Ok(link) => {
                    log::warn!(
                        "af_xdp: {interface}: native XDP refused ({native}); using generic (skb) mode"
                    );
                    (link, XdpMode::Generic)
                }
                Err(e) if busy(&e) => return Err(already_attached(interface, e)),
                Err(e) => {
                    return Err(IoError::os(
                        format!("af_xdp: attaching XDP to {interface} (native: {native}; generic)"),
                        e,
                    ));
                }
            },
        };
        log::info!("af_xdp: {interface}: XDP redirect program attached in {mode} mode");
        Ok(Self { _link: link, _prog: prog, map, mode, ifindex, netns, interface: interface.to_owned() })
    }

    /// Where the program runs.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Sends frames of `queue` to `socket`.
    pub fn insert(&self, queue: u32, socket: &OwnedFd) -> io::Result<()> {
        let key = queue;
        let value = u32::try_from(socket.as_raw_fd()).unwrap_or(u32::MAX);
        let mut attr = MapElemAttr {
            map_fd: u32::try_from(self.map.as_raw_fd()).unwrap_or(u32::MAX),
            _pad: 0,
            key: std::ptr::from_ref(&key) as u64,
            value: std::ptr::from_ref(&value) as u64,
            flags: 0, // BPF_ANY
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    /// Sends frames of `queue` to the kernel again.
    pub fn remove(&self, queue: u32) -> io::Result<()> {
        let key = queue;
        let mut attr = MapElemAttr {
            map_fd: u32::try_from(self.map.as_raw_fd()).unwrap_or(u32::MAX),
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
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // The fields' own drops then close link, program and map, in that order.
        log::info!("af_xdp: {}: detaching the XDP redirect program", self.interface);
    }
}

fn already_attached(interface: &str, e: io::Error) -> IoError {
    IoError::os(
        format!(
            "af_xdp: {interface} already has an XDP program (another director, or a leftover: \
             `ip link set dev {interface} xdp off`)"
        ),
        e,
    )
}

/// Attachments alive in this process, one per (network namespace, ifindex).
static ATTACHMENTS: Mutex<Vec<Weak<Attachment>>> = Mutex::new(Vec::new());

/// The calling thread's network namespace, as the (device, inode) of its nsfs file.
pub fn current_netns() -> Result<(u64, u64), IoError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(|e| IoError::os("af_xdp: reading /proc/thread-self/ns/net", e))?;
    Ok((meta.dev(), meta.ino()))
}

/// The interface's attachment: the existing one if a socket of this process already uses the
/// interface, else a new one.
pub fn shared(interface: &str, ifindex: u32) -> Result<Arc<Attachment>, IoError> {
    let netns = current_netns()?;
    let mut all = ATTACHMENTS.lock().unwrap_or_else(PoisonError::into_inner);
    all.retain(|w| w.strong_count() > 0);
    if let Some(found) =
        all.iter().filter_map(Weak::upgrade).find(|a| a.ifindex == ifindex && a.netns == netns)
    {
        return Ok(found);
    }
    let new = Arc::new(Attachment::attach(interface, ifindex, netns)?);
    all.push(Arc::downgrade(&new));
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_the_kernel_layout() {
        let p = program(7);
        // r2 = *(u32 *)(r1 + 16)
        assert_eq!((p[0].code, p[0].regs, p[0].off), (0x61, 0x12, 16));
        // ld_imm64 r1, map fd 7 with src = BPF_PSEUDO_MAP_FD
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!(p[2], insn(0, 0, 0, 0, 0));
        assert_eq!((p[3].code, p[3].regs, p[3].imm), (0xb7, 0x03, XDP_PASS));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
        assert_eq!(PROGRAM[MAP_FD_INSN].imm, 0, "the const array keeps a placeholder");
    }

    #[test]
    fn name_is_truncated_and_terminated() {
        assert_eq!(&name16("glb_xsk_redir")[..14], b"glb_xsk_redir\0");
        assert_eq!(name16("a_very_long_program_name")[15], 0);
    }

    /// The verifier accepts the program (needs CAP_BPF; skipped otherwise).
    #[test]
    fn verifier_accepts_the_program() {
        let map = match create_xskmap() {
            Ok(map) => map,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                eprintln!("skipped: creating a BPF map needs CAP_BPF ({e})");
                return;
            }
            Err(e) => panic!("BPF_MAP_CREATE: {e}"),
        };
        load_program(&map).expect("BPF_PROG_LOAD");
    }
}
