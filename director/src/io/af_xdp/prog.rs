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
use glb_sys::bpf::{self, Insn, op, reg};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Entries of the XSKMAP: the highest queue number a socket can serve, plus one.
pub const XSKMAP_ENTRIES: u32 = 256;

/// `enum bpf_map_type`.
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
/// `XDP_FLAGS_SKB_MODE`: generic XDP, run on the skb after the driver.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, run by the driver before any skb exists.
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `BPF_FUNC_redirect_map`.
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
/// `offsetof(struct xdp_md, rx_queue_index)`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// Index of the 64-bit immediate load whose `imm` [`program`] patches with the map fd.
const MAP_FD_INSN: usize = 1;

/// The program, with the map fd still 0 (see [`program`]).
pub const PROGRAM: [Insn; 6] = [
    // r2 = *(u32 *)(r1 + 16): r1 is the `struct xdp_md *` context, r2 = ctx->rx_queue_index.
    Insn::new(op::LDX_MEM_W, reg::R2, reg::R1, XDP_MD_RX_QUEUE_INDEX, 0),
    // r1 = &xsks_map (first half: imm = map fd, src = BPF_PSEUDO_MAP_FD; the verifier turns
    // the fd into the map's address) ...
    Insn::new(op::LD_IMM_DW, reg::R1, bpf::PSEUDO_MAP_FD, 0, 0),
    // ... (second half: the upper 32 bits of the immediate, 0).
    Insn::new(0, 0, 0, 0, 0),
    // r3 = XDP_PASS: bpf_redirect_map's flags; the low bits are the action when the queue
    // has no socket in the map.
    Insn::new(op::ALU64_MOV_K, reg::R3, 0, 0, bpf::XDP_PASS),
    // r0 = bpf_redirect_map(r1 = map, r2 = key, r3 = flags): XDP_REDIRECT or XDP_PASS.
    Insn::new(op::JMP_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
    // return r0.
    Insn::new(op::JMP_EXIT, reg::R0, 0, 0, 0),
];

/// [`PROGRAM`] referring to the map `map_fd`.
#[must_use]
pub fn program(map_fd: i32) -> [Insn; PROGRAM.len()] {
    let mut insns = PROGRAM;
    insns[MAP_FD_INSN].imm = map_fd;
    insns
}

/// Creates the XSKMAP (key: queue index, value: socket fd).
pub fn create_xskmap() -> io::Result<OwnedFd> {
    bpf::create_map_u32(BPF_MAP_TYPE_XSKMAP, XSKMAP_ENTRIES, "glb_xsks")
}

/// Loads [`program`] for `map`; on failure the error carries the verifier's log.
pub fn load_program(map: &OwnedFd) -> io::Result<OwnedFd> {
    let insns = program(map.as_raw_fd());
    bpf::load_program(&bpf::Program {
        prog_type: bpf::PROG_TYPE_XDP,
        expected_attach_type: bpf::ATTACH_XDP,
        insns: &insns,
        license: b"Dual MIT/GPL\0",
        name: "glb_xsk_redir",
    })
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
    bpf::link_create(prog, ifindex, bpf::ATTACH_XDP, flags)
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
        bpf::map_update_u32(&self.map, queue, u32::try_from(socket.as_raw_fd()).unwrap_or(u32::MAX))
    }

    /// Sends frames of `queue` to the kernel again.
    pub fn remove(&self, queue: u32) -> io::Result<()> {
        bpf::map_delete_u32(&self.map, queue)
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
        assert_eq!(p[2], Insn::new(0, 0, 0, 0, 0));
        assert_eq!((p[3].code, p[3].regs, p[3].imm), (0xb7, 0x03, bpf::XDP_PASS));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
        assert_eq!(PROGRAM[MAP_FD_INSN].imm, 0, "the const array keeps a placeholder");
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
