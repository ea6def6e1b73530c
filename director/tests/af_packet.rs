//! Privileged end-to-end tests of the AF_PACKET and TAP backends over real veth pairs in network
//! namespaces each test creates (and deletes, even on panic). Skipped, with the reason printed,
//! when not run as root.
//!
//! The far end of each link is driven by the test's own plain AF_PACKET socket (`send`/`recvfrom`,
//! no rings, no fanout), an oracle independent of the backend under test. Threads enter a
//! namespace with `setns` (sockets stay in the namespace they were created in, so a backend opened
//! in a namespace thread is then used from the test thread).

#![allow(unsafe_code, reason = "the test's plain AF_PACKET oracle socket through libc")]
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "frame fields, sequence numbers and socket lengths are small by construction"
)]

use glb_director::io::af_packet::{AfPacket, default_fanout_group};
use glb_director::io::tap::{Tap, mac_address};
use glb_director::io::{Burst, PacketIo};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Longest any wait lasts; the frames normally arrive within milliseconds.
const DEADLINE: Duration = Duration::from_secs(3);
/// How long a test watches for frames that must *not* appear.
const QUIET: Duration = Duration::from_millis(300);
const MAGIC: &[u8; 4] = b"GLBT";
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

fn is_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root (network namespaces, veth, AF_PACKET, TAP)");
    false
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a thread inside network namespace `ns`.
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let handle =
                    File::open(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("netns {ns}: {e}"));
                rustix::thread::move_into_link_name_space(
                    handle.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .unwrap_or_else(|e| panic!("setns {ns}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Writes a sysctl inside `ns` (`key` as in /proc/sys, with dots).
fn sysctl(ns: &str, key: &str, value: &str) {
    run("ip", &["netns", "exec", ns, "sysctl", "-qw", &format!("{key}={value}")]);
}

/// Two namespaces joined by a veth pair: `peer` in `a`, `port` in `b`, both up, IPv6 off (no
/// router solicitations or MLD reports in the captures). Deleted on drop.
struct Lab {
    a: String,
    b: String,
    peer: String,
    port: String,
}

impl Lab {
    fn new(test: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let id = format!("{}{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let lab = Self {
            a: format!("glbt-{test}-{id}-a"),
            b: format!("glbt-{test}-{id}-b"),
            peer: format!("gp{id}"),
            port: format!("gd{id}"),
        };
        for ns in [&lab.a, &lab.b] {
            run("ip", &["netns", "add", ns]);
            sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
            sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1");
        }
        run(
            "ip",
            &[
                "link", "add", &lab.peer, "netns", &lab.a, "type", "veth", "peer", "name", &lab.port,
                "netns", &lab.b,
            ],
        );
        run("ip", &["-n", &lab.a, "link", "set", &lab.peer, "address", &mac_text(PEER_MAC), "up"]);
        run("ip", &["-n", &lab.b, "link", "set", &lab.port, "up"]);
        lab
    }

    fn port_mac(&self) -> [u8; 6] {
        in_ns(&self.b, || mac_address(&self.port).expect("port MAC"))
    }

    fn peer_socket(&self) -> Raw {
        in_ns(&self.a, || Raw::open(&self.peer))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A plain AF_PACKET socket (no rings): the test's independent view of a link.
struct Raw {
    fd: OwnedFd,
}

impl Raw {
    fn open(interface: &str) -> Self {
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call, checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                protocol.into(),
            )
        };
        assert!(fd >= 0, "oracle socket: {}", io::Error::last_os_error());
        // SAFETY: fd was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let rcvbuf: libc::c_int = 64 << 20;
        // SAFETY: `rcvbuf` is a live c_int and the length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                std::ptr::from_ref(&rcvbuf).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", io::Error::last_os_error());
        let name = std::ffi::CString::new(interface).expect("name");
        // SAFETY: `name` is a valid NUL-terminated string for the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert_ne!(ifindex, 0, "{interface}: {}", io::Error::last_os_error());
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: protocol,
            sll_ifindex: ifindex as i32,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "bind {interface}: {}", io::Error::last_os_error());
        Self { fd }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is valid for reads of its length for the call.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(sent, frame.len() as isize, "oracle send: {}", io::Error::last_os_error());
    }

    /// The next frame that arrived on the link (frames the host itself sent are skipped).
    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65_536];
        loop {
            // SAFETY: zeroed sockaddr_ll is valid plain data.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf`, `addr` and `len` are valid for writes of the sizes passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    std::ptr::from_mut(&mut addr).cast(),
                    &raw mut len,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "oracle recv: {err}");
                return None;
            }
            if addr.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Some(buf[..n as usize].to_vec());
        }
    }

    /// Frames the kernel dropped for want of buffer space since the previous call.
    fn drops(&self) -> u32 {
        let mut stats = libc::tpacket_stats { tp_packets: 0, tp_drops: 0 };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` and `len` are valid for writes and `len` is the size of `stats`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                std::ptr::from_mut(&mut stats).cast(),
                &raw mut len,
            )
        };
        assert_eq!(rc, 0, "PACKET_STATISTICS: {}", io::Error::last_os_error());
        stats.tp_drops
    }

    /// Every frame received so far.
    fn drain(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.recv()).collect()
    }

    /// Received frames that `keep` accepts, until `done` says enough or `wait` has passed.
    fn collect(
        &self,
        wait: Duration,
        keep: impl Fn(&[u8]) -> bool,
        done: impl Fn(&[Vec<u8>]) -> bool,
    ) -> Vec<Vec<u8>> {
        let start = Instant::now();
        let mut frames = Vec::new();
        while !done(&frames) && start.elapsed() < wait {
            match self.recv() {
                Some(frame) if keep(&frame) => frames.push(frame),
                Some(_) => {}
                None => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        frames
    }
}

/// Everything `io` has received so far.
fn drain(io: &mut impl PacketIo) -> Vec<Vec<u8>> {
    let mut burst = Burst::new();
    let mut frames = Vec::new();
    while io.rx_burst(&mut burst).expect("rx_burst") > 0 {
        frames.extend(burst.frames().map(|f| f.data().to_vec()));
    }
    frames
}

/// Frames `io` receives that `keep` accepts, until `done` says enough or `wait` has passed.
fn collect(
    io: &mut impl PacketIo,
    wait: Duration,
    keep: impl Fn(&[u8]) -> bool,
    done: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let mut burst = Burst::new();
    let start = Instant::now();
    let mut frames = Vec::new();
    while !done(&frames) && start.elapsed() < wait {
        let n = io.rx_burst(&mut burst).expect("rx_burst");
        frames.extend(burst.frames().map(|f| f.data().to_vec()).filter(|f| keep(f)));
        if n == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    frames
}

// --- frames -------------------------------------------------------------------------------------

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 =
        bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(dst_mac: [u8; 6], src_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

/// A test payload: magic, this process, a tag for the test and a sequence number, then filler up
/// to `len` bytes.
fn payload(tag: u32, seq: u32, len: usize) -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&std::process::id().to_be_bytes());
    p.extend_from_slice(&tag.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..len.saturating_sub(p.len())).map(|i| (i as u32 ^ seq) as u8));
    p
}

/// `(tag, seq)` of a frame built by this process with [`payload`] at offset 42 (UDP or ICMP echo).
fn marker(frame: &[u8]) -> Option<(u32, u32)> {
    static PID: LazyLock<[u8; 4]> = LazyLock::new(|| std::process::id().to_be_bytes());
    let p = frame.get(42..58)?;
    (p[..4] == *MAGIC && p[4..8] == *PID).then(|| {
        (u32::from_be_bytes(p[8..12].try_into().unwrap()), u32::from_be_bytes(p[12..16].try_into().unwrap()))
    })
}

fn is_test_frame(frame: &[u8]) -> bool {
    marker(frame).is_some()
}

fn udp(dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::with_capacity(8 + body.len());
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(body);
    ipv4(dst_mac, PEER_MAC, src, dst, 17, &l4)
}

fn icmp_echo(dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], id: u16, body: &[u8]) -> Vec<u8> {
    let mut l4 = vec![8, 0, 0, 0];
    l4.extend_from_slice(&id.to_be_bytes());
    l4.extend_from_slice(&1u16.to_be_bytes());
    l4.extend_from_slice(body);
    let sum = checksum(&l4);
    l4[2..4].copy_from_slice(&sum.to_be_bytes());
    ipv4(dst_mac, PEER_MAC, src, dst, 1, &l4)
}

fn arp_request(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

fn is_arp(frame: &[u8], op: u16) -> bool {
    frame.len() >= 42 && frame[12..14] == [0x08, 0x06] && frame[20..22] == op.to_be_bytes()
}

fn is_ipv4(frame: &[u8]) -> bool {
    frame.len() >= 34 && frame[12..14] == [0x08, 0x00]
}

fn ipv4_dst(frame: &[u8]) -> [u8; 4] {
    frame[30..34].try_into().unwrap()
}

const CLIENT: [u8; 4] = [198, 18, 0, 1];
const VIP: [u8; 4] = [198, 51, 100, 10];

// --- AF_PACKET ----------------------------------------------------------------------------------

#[test]
fn rx_frames_arrive_byte_exact_and_in_order() {
    if !is_root() {
        return;
    }
    let lab = Lab::new("rx");
    let mac = lab.port_mac();
    let mut port = in_ns(&lab.b, || AfPacket::open(&lab.port, None).expect("open AF_PACKET"));
    let peer = lab.peer_socket();
    let sent: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            let len = [18, 100, 1000, 1472][i as usize % 4] + (i as usize % 7);
            udp(mac, CLIENT, VIP, 40_000 + i as u16, 80, &payload(1, i, len.min(1472)))
        })
        .collect();
    for frame in &sent {
        peer.send(frame);
    }
    let got = collect(&mut port, DEADLINE, is_test_frame, |f| f.len() == sent.len());
    assert_eq!(got.len(), sent.len(), "frames received");
    for (i, (got, sent)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(got, sent, "frame {i} differs");
    }
    assert_eq!(sent.iter().map(Vec::len).min(), Some(60));
    assert_eq!(sent.iter().map(Vec::len).max(), Some(1514));
    let stats = port.statistics().expect("statistics");
    assert_eq!(stats.drops, 0, "{stats:?}");
}

#[test]
fn tx_frames_arrive_byte_exact_across_ring_wraps() {
    if !is_root() {
        return;
    }
    let lab = Lab::new("tx");
    let mut port = in_ns(&lab.b, || AfPacket::open(&lab.port, None).expect("open AF_PACKET"));
    let peer = lab.peer_socket();
    // More frames than the TX ring has slots (4096 for a 1500-byte MTU), in flushes of 64.
    let sent: Vec<Vec<u8>> = (0..5000u32)
        .map(|i| {
            udp(
                PEER_MAC,
                VIP,
                CLIENT,
                19523,
                50_000 + (i % 1000) as u16,
                &payload(2, i, 18 + (i as usize % 1400)),
            )
        })
        .collect();
    let mut flushed = 0;
    for (i, frame) in sent.iter().enumerate() {
        assert!(port.tx(frame).expect("tx"), "TX queue full at frame {i}");
        if i % 64 == 63 {
            flushed += port.flush().expect("flush");
        }
    }
    flushed += port.flush().expect("flush");
    assert_eq!(flushed, sent.len(), "frames handed to the device");
    let got = peer.collect(DEADLINE, is_test_frame, |f| f.len() == sent.len());
    assert_eq!(got.len(), sent.len(), "frames at the peer (oracle socket drops: {})", peer.drops());
    for (i, (got, sent)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(got, sent, "frame {i} differs");
    }
    // Frames the device would refuse are TX drops, not errors.
    assert!(!port.tx(&[0; 13]).expect("tx"), "shorter than an Ethernet header");
    assert!(!port.tx(&vec![0; 1515]).expect("tx"), "longer than MTU + header");
}

#[test]
fn fanout_splits_flows_between_sockets_and_keeps_each_flow_on_one() {
    if !is_root() {
        return;
    }
    let lab = Lab::new("fo");
    let mac = lab.port_mac();
    let (mut one, mut two) = in_ns(&lab.b, || {
        let group = default_fanout_group(&lab.port).expect("group");
        (
            AfPacket::open(&lab.port, Some(group)).expect("first socket"),
            AfPacket::open(&lab.port, Some(group)).expect("second socket"),
        )
    });
    let peer = lab.peer_socket();
    let (flows, per_flow) = (64u32, 4u32);
    for round in 0..per_flow {
        for flow in 0..flows {
            let src = [198, 18, 1, flow as u8];
            peer.send(&udp(
                mac,
                src,
                VIP,
                10_000 + flow as u16,
                443,
                &payload(3, flow * per_flow + round, 64),
            ));
        }
    }
    let total = (flows * per_flow) as usize;
    let mut seen: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let start = Instant::now();
    while seen.iter().map(Vec::len).sum::<usize>() < total && start.elapsed() < DEADLINE {
        for (i, socket) in [&mut one, &mut two].into_iter().enumerate() {
            let frames = drain(socket);
            seen[i].extend(frames.iter().filter_map(|f| marker(f)).map(|(_, seq)| seq / per_flow));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), total, "every frame reaches exactly one socket");
    let mut owner: HashMap<u32, HashSet<usize>> = HashMap::new();
    for (i, flows) in seen.iter().enumerate() {
        for &flow in flows {
            owner.entry(flow).or_default().insert(i);
        }
    }
    assert_eq!(owner.len(), flows as usize);
    let split: Vec<&u32> =
        owner.iter().filter(|(_, sockets)| sockets.len() > 1).map(|(flow, _)| flow).collect();
    assert!(split.is_empty(), "flows seen on both sockets: {split:?}");
    let on_one = owner.values().filter(|s| s.contains(&0)).count();
    eprintln!("fanout: {on_one} flows on socket 1, {} on socket 2", flows as usize - on_one);
    assert!(on_one > 0 && on_one < flows as usize, "all {flows} flows on one socket");
}

#[test]
fn own_transmissions_are_not_received_back() {
    if !is_root() {
        return;
    }
    let lab = Lab::new("io");
    let mac = lab.port_mac();
    let mut port = in_ns(&lab.b, || AfPacket::open(&lab.port, None).expect("open AF_PACKET"));
    let peer = lab.peer_socket();
    for i in 0..20 {
        assert!(port.tx(&udp(PEER_MAC, VIP, CLIENT, 19523, 80, &payload(4, i, 64))).expect("tx"));
    }
    assert_eq!(port.flush().expect("flush"), 20);
    let at_peer = peer.collect(DEADLINE, is_test_frame, |f| f.len() == 20);
    assert_eq!(at_peer.len(), 20, "our frames left the port");
    // A sentinel sent after them: once it is in, anything of ours would have been too.
    peer.send(&udp(mac, CLIENT, VIP, 1, 80, &payload(5, 0, 64)));
    let got =
        collect(&mut port, DEADLINE, is_test_frame, |f| f.last().is_some_and(|f| marker(f) == Some((5, 0))));
    assert!(got.iter().any(|f| marker(f) == Some((5, 0))), "sentinel received");
    let echoed = got.iter().filter(|f| matches!(marker(f), Some((4, _)))).count();
    assert_eq!(echoed, 0, "own transmissions received back");
}

/// The setup README "Packet I/O" recommends: no address on the port, the host's addresses on the
/// TAP (with the port's MAC), and on the port `forwarding=0`, `rp_filter=1`, `arp_ignore=1`,
/// `disable_ipv6=1`. The kernel's copy of every frame must then be dropped, while the director's
/// socket still receives it. Each sysctl is then relaxed to show that the check would notice.
#[test]
fn kernel_copy_is_dropped_with_the_recommended_port_settings() {
    if !is_root() {
        return;
    }
    let lab = Lab::new("kc");
    let mac = lab.port_mac();
    let tap_name = format!("gk{}", &lab.port[2..]);
    let host = [192, 0, 2, 2];
    let (mut port, mut tap) = in_ns(&lab.b, || {
        (
            AfPacket::open(&lab.port, None).expect("open AF_PACKET"),
            Tap::open(&tap_name, Some(mac)).expect("open TAP"),
        )
    });
    let b = lab.b.as_str();
    run("ip", &["-n", b, "addr", "add", "192.0.2.2/24", "dev", &tap_name]);
    // A route that forwarding VIP traffic would take (out of the TAP).
    run("ip", &["-n", b, "route", "add", "198.51.100.0/24", "via", "192.0.2.1", "dev", &tap_name]);
    sysctl(b, "net.ipv4.ip_forward", "1");
    for (key, value) in [("forwarding", "0"), ("rp_filter", "1"), ("arp_ignore", "1")] {
        sysctl(b, &format!("net.ipv4.conf.{}.{key}", lab.port), value);
    }
    sysctl(b, "net.ipv4.conf.all.rp_filter", "0");
    // Replies need no ARP round first.
    run(
        "ip",
        &[
            "-n",
            b,
            "neigh",
            "add",
            "192.0.2.1",
            "lladdr",
            &mac_text(PEER_MAC),
            "dev",
            &tap_name,
            "nud",
            "permanent",
        ],
    );
    let peer = lab.peer_socket();

    // What the kernel did with its copy shows on the TAP (replies and forwarded frames route
    // there) or at the peer (ARP replies on the port). IPv6 is off, so the TAP is otherwise quiet.
    let kernel_reaction = |port: &mut AfPacket, tap: &mut Tap, frame: &[u8], tag: u32| {
        peer.send(frame);
        let got = collect(port, DEADLINE, |f| f == frame, |f| !f.is_empty());
        assert!(!got.is_empty(), "tag {tag}: the director's socket receives the frame");
        let mut reaction = collect(tap, QUIET, |f| is_ipv4(f) || is_arp(f, 1) || is_arp(f, 2), |_| false);
        reaction.extend(peer.drain().into_iter().filter(|f| is_arp(f, 2)));
        reaction
    };

    let echo = icmp_echo(mac, [192, 0, 2, 1], host, 0x4242, &payload(6, 0, 32));
    let to_vip = udp(mac, CLIENT, VIP, 1234, 80, &payload(7, 0, 32));
    let arp = arp_request([192, 0, 2, 1], host);
    for (frame, tag) in [(&echo, 6), (&to_vip, 7), (&arp, 8)] {
        let reaction = kernel_reaction(&mut port, &mut tap, frame, tag);
        assert!(reaction.is_empty(), "tag {tag}: the kernel acted on its copy: {reaction:02x?}");
    }

    // Controls. Without rp_filter the echo to a host address is delivered locally (weak host) and
    // answered through the TAP, a duplicate of the director's kernel-path copy.
    sysctl(b, &format!("net.ipv4.conf.{}.rp_filter", lab.port), "0");
    let reaction = kernel_reaction(&mut port, &mut tap, &echo, 16);
    assert!(
        reaction.iter().any(|f| is_ipv4(f) && ipv4_dst(f) == [192, 0, 2, 1] && f[34] == 0),
        "without rp_filter the kernel answers the echo: {reaction:02x?}"
    );
    // forwarding=0 alone still keeps VIP traffic from being routed...
    let reaction = kernel_reaction(&mut port, &mut tap, &to_vip, 17);
    assert!(reaction.is_empty(), "forwarding=0: VIP traffic not routed: {reaction:02x?}");
    // ...and with forwarding on, it would leave through the TAP (ARP for the next hop, or the frame).
    sysctl(b, &format!("net.ipv4.conf.{}.forwarding", lab.port), "1");
    let reaction = kernel_reaction(&mut port, &mut tap, &to_vip, 27);
    assert!(
        reaction.iter().any(|f| is_arp(f, 1) || (is_ipv4(f) && ipv4_dst(f) == VIP)),
        "with forwarding the kernel routes VIP traffic: {reaction:02x?}"
    );
}

// --- TAP ----------------------------------------------------------------------------------------

#[test]
fn tap_passes_frames_both_ways_with_the_port_mac() {
    if !is_root() {
        return;
    }
    let lab = Lab::new("tap");
    let b = lab.b.as_str();
    let name = format!("gk{}", &lab.port[2..]);
    let mac = [0x02, 0x42, 0x00, 0x00, 0x00, 0x07];
    let (mut first, mut second, capture) = in_ns(b, || {
        let first = Tap::open(&name, Some(mac)).expect("first queue creates the device");
        let second = Tap::open(&name, Some(mac)).expect("second queue attaches");
        assert_eq!(mac_address(&name).expect("TAP MAC"), mac);
        (first, second, Raw::open(&name))
    });
    let link = output("ip", &["-n", b, "link", "show", &name]);
    assert!(link.contains(&format!("link/ether {}", mac_text(mac))), "{link}");
    assert!(link.contains(",UP"), "TAP is up: {link}");
    run("ip", &["-n", b, "addr", "add", "192.0.2.2/24", "dev", &name]);

    // Written frames enter the kernel through the TAP, as if received on it.
    let frame = udp(mac, [192, 0, 2, 1], [192, 0, 2, 2], 5000, 9, &payload(9, 0, 100));
    assert!(first.tx(&frame).expect("tx"));
    assert_eq!(first.flush().expect("flush"), 0);
    let seen = capture.collect(DEADLINE, |f| f == frame, |f| !f.is_empty());
    assert!(seen.contains(&frame), "frame written to the TAP seen on its interface");

    // What the kernel sends out of the TAP comes back through rx_burst (on either queue).
    assert!(first.tx(&arp_request([192, 0, 2, 1], [192, 0, 2, 2])).expect("tx"));
    let reply = from_kernel([&mut first, &mut second], |f| is_arp(f, 2));
    assert_eq!(reply[..6], PEER_MAC, "ARP reply to the asker");
    assert_eq!(reply[6..12], mac, "from the TAP's (the port's) MAC");
    assert_eq!(reply[22..28], mac, "192.0.2.2 is at the port's MAC");
    assert_eq!(reply[28..32], [192, 0, 2, 2]);

    let body = payload(10, 0, 48);
    assert!(second.tx(&icmp_echo(mac, [192, 0, 2, 1], [192, 0, 2, 2], 0x77, &body)).expect("tx"));
    let reply = from_kernel([&mut first, &mut second], |f| is_ipv4(f) && f[23] == 1 && f[34] == 0);
    assert_eq!(reply[..6], PEER_MAC);
    assert_eq!(reply[6..12], mac);
    assert_eq!(ipv4_dst(&reply), [192, 0, 2, 1]);
    assert_eq!(reply[38..40], 0x77u16.to_be_bytes(), "echo id");
    assert_eq!(reply[42..], body[..], "echo payload");

    // The device lives as long as a queue is open.
    drop((first, second, capture));
    let gone = Command::new("ip").args(["-n", b, "link", "show", &name]).output().expect("ip");
    assert!(!gone.status.success(), "TAP removed with its last queue");
}

/// The first frame the kernel sends out of the TAP that `want` accepts, read from either queue.
fn from_kernel(queues: [&mut Tap; 2], want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let start = Instant::now();
    let [first, second] = queues;
    while start.elapsed() < DEADLINE {
        for queue in [&mut *first, &mut *second] {
            if let Some(found) = drain(queue).into_iter().find(|f| want(f)) {
                return found;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no matching frame from the kernel");
}
