//! The XDP redirect program and its attachment, loaded through [`glb_sys::bpf`] (raw
//! `bpf(2)`, no clang, no libbpf, no ELF).
//!
//! The program is `return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);`,
//! assembled by hand below ([`program`]). A frame arriving on a queue that has a socket in the
//! XSKMAP goes to that socket; on any other queue the map lookup fails and the `XDP_PASS` in the
//! flags' low bits hands the frame to the kernel stack.
//!
//! One [`Attachment`] per interface (and network namespace): the XSKMAP, the loaded program and
//! the `BPF_LINK_CREATE` link that attaches it. Every socket on the interface shares it through
//! an `Arc`; the last one dropped closes the link, which detaches the program — also when the
//! process dies, since the kernel closes the fd.

use super::super::IoError;
pub use glb_sys::bpf::XdpMode;
use glb_sys::bpf::{Insn, Map, MapType, Program, R1, R2, R3, Size, XdpAction, XdpLink, helper, xdp_md};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Entries of the XSKMAP: the highest queue number a socket can serve, plus one.
pub const XSKMAP_ENTRIES: u32 = 256;

/// The program for the XSKMAP `map_fd`.
#[must_use]
pub fn program(map_fd: i32) -> [Insn; 6] {
    let [map_lo, map_hi] = Insn::load_map_fd(R1, map_fd);
    [
        // r2 = ctx->rx_queue_index (r1 is the `struct xdp_md *` context).
        Insn::load(Size::W, R2, R1, xdp_md::RX_QUEUE_INDEX),
        // r1 = &xsks_map.
        map_lo,
        map_hi,
        // r3 = XDP_PASS: bpf_redirect_map's flags; the low bits are the action when the queue
        // has no socket in the map.
        Insn::mov64_imm(R3, XdpAction::Pass as i32),
        // r0 = bpf_redirect_map(r1 = map, r2 = key, r3 = flags): XDP_REDIRECT or XDP_PASS.
        Insn::call(helper::REDIRECT_MAP),
        // return r0.
        Insn::exit(),
    ]
}

/// Creates the XSKMAP (key: queue index, value: socket fd).
///
/// # Errors
/// No CAP_BPF, or the kernel lacks AF_XDP.
pub fn create_xskmap() -> io::Result<Map> {
    Map::create(MapType::XskMap, 4, 4, XSKMAP_ENTRIES, "glb_xsks")
}

/// Loads [`program`] for `map`; on failure the error carries the verifier's log.
///
/// # Errors
/// No CAP_BPF, or the verifier rejected the program.
pub fn load_program(map: &Map) -> io::Result<Program> {
    Program::load_xdp(&program(map.raw_fd()), "glb_xsk_redir")
}

/// The program attached to one interface, with its map. Fields drop in order: the link first
/// (detaching the program), then the program, then the map.
#[derive(Debug)]
pub struct Attachment {
    link: XdpLink,
    /// Held for its drop.
    _prog: Program,
    map: Map,
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
        let busy = glb_sys::bpf::is_busy;
        let link = match prog.attach_xdp(ifindex, XdpMode::Native) {
            Ok(link) => link,
            Err(e) if busy(&e) => return Err(already_attached(interface, e)),
            Err(native) => match prog.attach_xdp(ifindex, XdpMode::Generic) {
                Ok(link) => {
                    log::warn!(
                        "af_xdp: {interface}: native XDP refused ({native}); using generic (skb) mode"
                    );
                    link
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
        log::info!("af_xdp: {interface}: XDP redirect program attached in {} mode", link.mode());
        Ok(Self { link, _prog: prog, map, ifindex, netns, interface: interface.to_owned() })
    }

    /// Where the program runs.
    pub fn mode(&self) -> XdpMode {
        self.link.mode()
    }

    /// Sends frames of `queue` to `socket`.
    pub fn insert(&self, queue: u32, socket: &OwnedFd) -> io::Result<()> {
        let fd = u32::try_from(socket.as_raw_fd()).unwrap_or(u32::MAX);
        self.map.update(&queue.to_ne_bytes(), &fd.to_ne_bytes())
    }

    /// Sends frames of `queue` to the kernel again.
    pub fn remove(&self, queue: u32) -> io::Result<()> {
        self.map.delete(&queue.to_ne_bytes())
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
        assert_eq!((p[2].code, p[2].regs, p[2].imm), (0, 0, 0));
        assert_eq!((p[3].code, p[3].regs, p[3].imm), (0xb7, 0x03, 2));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
    }

    /// The verifier accepts the program (needs CAP_BPF; skipped otherwise).
    #[test]
    fn verifier_accepts_the_program() {
        let map = match create_xskmap() {
            Ok(map) => map,
            Err(e) if glb_sys::bpf::is_permission(&e) => {
                eprintln!("skipped: creating a BPF map needs CAP_BPF ({e})");
                return;
            }
            Err(e) => panic!("BPF_MAP_CREATE: {e}"),
        };
        load_program(&map).expect("BPF_PROG_LOAD");
    }
}
