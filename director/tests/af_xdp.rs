//! The AF_XDP backend on a veth pair between two network namespaces the test creates (and
//! removes, also on panic): the director's end `D` runs the backend, the peer end `P` sends and
//! captures raw frames with an AF_PACKET socket. Needs root (CAP_NET_ADMIN, CAP_BPF,
//! CAP_NET_RAW, CAP_SYS_ADMIN for setns); skips with a message otherwise.
//!
//! Frames are IPv4/UDP between documentation addresses, tagged with a marker and a sequence
//! number so that anything else on the link is ignored.

mod support;

use testkit::require_root;

use support::{DIRECTOR_MAC, Lab, PEER_MAC, PacketSocket, WAIT, in_netns, ip};

use glb_director::io::af_xdp::{AfXdp, FRAME_SIZE, FRAMES, XdpMode};
use glb_director::io::{Burst, PacketIo};
use std::time::{Duration, Instant};

const MARKER: &[u8; 8] = b"GLBXDPT\0";
/// Offset of the marker: after Ethernet (14), IPv4 (20) and UDP (8) headers.
const MARKER_AT: usize = 42;

/// `ip link show` of the director's end.
fn director_link(lab: &Lab) -> String {
    ip(&["-n", &lab.director_ns, "link", "show", "dev", &lab.director_if])
}

fn open(lab: &Lab, queue: u32) -> AfXdp {
    in_netns(&lab.director_ns, || AfXdp::open(&lab.director_if, queue))
        .unwrap_or_else(|e| panic!("AfXdp::open({}, {queue}): {e:?}", lab.director_if))
}

/// Marked frames until `want` arrived or [`WAIT`] passed.
fn collect(socket: &PacketSocket, want: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        if let Some(frame) = socket.recv().filter(|f| seq(f).is_some()) {
            got.push(frame);
        }
    }
    got
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 =
        bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).expect("folded")
}

/// An IPv4/UDP frame from 192.0.2.`src_host`:`src_port` to 198.51.100.1:80, `len` bytes long
/// (at least 60), carrying the marker and `seq`.
fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, src_port: u16, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = u16::try_from(len - 14).expect("length");
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[192, 0, 2, u8::try_from(seq % 250).expect("host") + 1]);
    ip[16..20].copy_from_slice(&[198, 51, 100, 1]);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&src_port.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&(ip_len - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(MARKER);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend((f.len()..len).map(|i| i.to_le_bytes()[0] ^ seq.to_le_bytes()[0]));
    f
}

/// The sequence number of a marked frame.
fn seq(frame: &[u8]) -> Option<u32> {
    let at = MARKER_AT + MARKER.len();
    (frame.get(MARKER_AT..at)? == MARKER)
        .then(|| u32::from_be_bytes(frame[at..at + 4].try_into().expect("4 bytes")))
}

/// A UDP source port per flow `i`.
fn port(i: u32) -> u16 {
    40_000 + u16::try_from(i % 20_000).expect("port")
}

/// Frame lengths from minimum to full-size Ethernet, varied.
fn length(i: u32) -> usize {
    [60, 64, 128, 333, 512, 1000, 1499, 1514][i as usize % 8]
}

/// Polls `ports` until `want` marked frames arrived in total or [`WAIT`] passed; the frames per
/// port.
fn receive(ports: &mut [&mut AfXdp], want: usize) -> Vec<Vec<Vec<u8>>> {
    let mut burst = Burst::new();
    let mut got = vec![Vec::new(); ports.len()];
    let deadline = Instant::now() + WAIT;
    while got.iter().map(Vec::len).sum::<usize>() < want && Instant::now() < deadline {
        let mut any = false;
        for (port, got) in ports.iter_mut().zip(&mut got) {
            let n = port.rx_burst(&mut burst).expect("rx_burst");
            any |= n > 0;
            got.extend(burst.frames().map(|f| f.data().to_vec()).filter(|f| seq(f).is_some()));
        }
        if !any {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    got
}

fn assert_same(got: &[Vec<u8>], sent: &[Vec<u8>]) {
    assert_eq!(got.len(), sent.len(), "frames received");
    for (i, (g, s)) in got.iter().zip(sent).enumerate() {
        assert!(
            g == s,
            "frame {i} differs: got {} bytes {:02x?}.., sent {} bytes {:02x?}..",
            g.len(),
            &g[..g.len().min(64)],
            s.len(),
            &s[..s.len().min(64)]
        );
    }
}

/// Whether `ip link show` output shows an XDP program (flag word `xdp`/`xdpgeneric` or a
/// `prog/xdp…` line).
fn has_xdp(link: &str) -> bool {
    link.split_whitespace().any(|w| w == "xdp" || w == "xdpgeneric" || w.starts_with("prog/xdp"))
}

/// Ids of the XDP programs in `ip link show` output.
fn xdp_prog_ids(link: &str) -> Vec<&str> {
    link.split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .filter(|w| w[0].starts_with("prog/xdp") && w[1] == "id")
        .map(|w| w[2])
        .collect()
}

#[test]
fn received_frames_arrive_byte_exact_with_native_xdp() {
    require_root!();
    let lab = Lab::new("xd", 1);
    let mut port = open(&lab, 0);
    assert_eq!(port.mode(), XdpMode::Native, "veth supports native XDP");
    let link = director_link(&lab);
    assert!(
        link.contains("prog/xdp id") && !link.contains("xdpgeneric"),
        "native attachment expected:\n{link}"
    );
    assert_eq!(xdp_prog_ids(&link).len(), 1, "{link}");

    let peer = lab.peer_socket();
    let sent: Vec<Vec<u8>> = (0..256).map(|i| frame(DIRECTOR_MAC, PEER_MAC, i, 40_000, length(i))).collect();
    let mut got = Vec::new();
    for chunk in sent.chunks(32) {
        for f in chunk {
            peer.send(f);
        }
        got.extend(receive(&mut [&mut port], chunk.len()).remove(0));
    }
    assert_same(&got, &sent);
    let stats = port.statistics().expect("statistics");
    assert_eq!((stats.rx_dropped, stats.rx_invalid_descs), (0, 0), "{stats:?}");

    drop(port);
    let link = director_link(&lab);
    assert!(!has_xdp(&link), "the program must be detached once the last socket is gone:\n{link}");
}

#[test]
fn transmitted_frames_arrive_byte_exact_at_the_peer() {
    require_root!();
    let lab = Lab::new("xd", 1);
    let mut port = open(&lab, 0);
    let peer = lab.peer_socket();
    let sent: Vec<Vec<u8>> = (0..256).map(|i| frame(PEER_MAC, DIRECTOR_MAC, i, 40_000, length(i))).collect();
    let mut handed = 0;
    for chunk in sent.chunks(32) {
        for f in chunk {
            assert!(port.tx(f).expect("tx"), "TX refused with free frames");
        }
        handed += port.flush().expect("flush");
    }
    assert_eq!(handed, sent.len(), "frames handed to the device");
    assert_same(&collect(&peer, sent.len()), &sent);
    assert_eq!(port.flush().expect("flush"), 0, "nothing left to hand over");
    assert!(!port.tx(&[]).expect("tx"), "an empty frame is refused");
    assert!(
        !port.tx(&vec![0; FRAME_SIZE as usize + 1]).expect("tx"),
        "a frame larger than a UMEM frame is refused"
    );
}

/// More frames than the UMEM holds: TX frames must come back through the completion ring.
#[test]
fn transmit_recycles_frames_through_the_completion_ring() {
    require_root!();
    let lab = Lab::new("xd", 1);
    let mut port = open(&lab, 0);
    let peer = lab.peer_socket();
    let total = 2 * FRAMES + 100;
    let mut refused = 0;
    for i in 0..total {
        if !port.tx(&frame(PEER_MAC, DIRECTOR_MAC, i, 40_000, 60)).expect("tx") {
            refused += 1;
        }
        if i % 32 == 31 {
            port.flush().expect("flush");
        }
    }
    port.flush().expect("flush");
    assert_eq!(refused, 0, "TX frames are recycled");
    let got = collect(&peer, total as usize);
    let seqs: Vec<u32> = got.iter().filter_map(|f| seq(f)).collect();
    assert_eq!(seqs, (0..total).collect::<Vec<_>>(), "every frame, in order");
}

/// Forwarding in place: frames the handler marks leave from their own UMEM frame, unchanged and
/// in order; the others are released. More frames than the UMEM holds, so the forwarded RX
/// frames must come back to the fill ring through the completion ring.
#[test]
fn forwarding_in_place_sends_marked_frames_and_recycles_them() {
    require_root!();
    let lab = Lab::new("xd", 1);
    let mut port = open(&lab, 0);
    let peer = lab.peer_socket();
    let total = 2 * FRAMES + 100;
    let sent: Vec<Vec<u8>> =
        (0..total).map(|i| frame(DIRECTOR_MAC, PEER_MAC, i, 40_000, length(i))).collect();
    let mut burst = Burst::new();
    let (mut seen, mut transmitted, mut refused) = (0, 0, 0);
    let mut mark_even = |frames: &mut [glb_director::pipeline::Frame<'_>], transmit: &mut [bool; 32]| {
        for (frame, marked) in frames.iter().zip(transmit.iter_mut()) {
            *marked = seq(frame.data()).is_some_and(|s| s % 2 == 0);
        }
        Ok(())
    };
    for chunk in sent.chunks(32) {
        for f in chunk {
            peer.send(f);
        }
        let deadline = Instant::now() + WAIT;
        let before = seen;
        while seen - before < chunk.len() && Instant::now() < deadline {
            let forwarded = port.rx_forward(&mut burst, &mut mark_even).expect("rx_forward");
            seen += forwarded.received;
            transmitted += forwarded.transmitted;
            refused += forwarded.refused;
        }
        assert_eq!(seen - before, chunk.len(), "frames received after {before} (RX frames not recycled?)");
        port.flush().expect("flush");
    }
    assert_eq!((transmitted, refused), (u64::from(total.div_ceil(2)), 0), "marked frames queued");
    let even: Vec<Vec<u8>> = sent.iter().step_by(2).cloned().collect();
    assert_same(&collect(&peer, even.len()), &even);
    let stats = port.statistics().expect("statistics");
    assert_eq!(
        (stats.rx_dropped, stats.rx_fill_ring_empty_descs.unwrap_or(0), stats.tx_invalid_descs),
        (0, 0, 0),
        "no frame lost for want of fill frames, every descriptor valid: {stats:?}"
    );
}

#[test]
fn two_queues_share_one_program_and_unserved_queues_pass_to_the_kernel() {
    require_root!();
    let lab = Lab::new("xd", 2);
    let mut q0 = open(&lab, 0);
    let mut q1 = open(&lab, 1);
    assert!(q0.shares_program_with(&q1), "one program and map per interface");
    assert_eq!((q0.queue(), q1.queue()), (0, 1));
    let link = director_link(&lab);
    assert_eq!(xdp_prog_ids(&link).len(), 1, "one program attached:\n{link}");

    // Many flows, so that the peer's transmit hash spreads them over both queues.
    let peer = lab.peer_socket();
    let sent: Vec<Vec<u8>> = (0..256).map(|i| frame(DIRECTOR_MAC, PEER_MAC, i, port(i), length(i))).collect();
    let mut per_queue = [Vec::new(), Vec::new()];
    for chunk in sent.chunks(32) {
        for f in chunk {
            peer.send(f);
        }
        for (all, got) in per_queue.iter_mut().zip(receive(&mut [&mut q0, &mut q1], chunk.len())) {
            all.extend(got);
        }
    }
    eprintln!("queue 0: {} frames, queue 1: {} frames", per_queue[0].len(), per_queue[1].len());
    let mut got: Vec<Vec<u8>> = per_queue.concat();
    got.sort_by_key(|f| seq(f));
    assert_same(&got, &sent);
    assert!(
        per_queue.iter().all(|q| !q.is_empty()),
        "both queues used: {} / {}",
        per_queue[0].len(),
        per_queue[1].len()
    );

    // Queue 1 loses its socket: the program stays for queue 0, and queue 1's frames go to
    // the kernel (seen by an AF_PACKET socket on the director's end) instead.
    drop(q1);
    assert_eq!(xdp_prog_ids(&director_link(&lab)).len(), 1, "still attached for queue 0");
    let kernel = lab.director_socket();
    let sent: Vec<Vec<u8>> = (1000..1256).map(|i| frame(DIRECTOR_MAC, PEER_MAC, i, port(i), 60)).collect();
    for f in &sent {
        peer.send(f);
    }
    let (mut from_xsk, mut from_kernel) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + WAIT;
    let mut burst = Burst::new();
    while from_xsk.len() + from_kernel.len() < sent.len() && Instant::now() < deadline {
        q0.rx_burst(&mut burst).expect("rx_burst");
        from_xsk.extend(burst.frames().map(|f| f.data().to_vec()).filter(|f| seq(f).is_some()));
        from_kernel.extend(kernel.recv().filter(|f| seq(f).is_some()));
    }
    eprintln!(
        "after closing queue 1: {} frames to the socket, {} to the kernel",
        from_xsk.len(),
        from_kernel.len()
    );
    let mut got = [from_xsk.as_slice(), from_kernel.as_slice()].concat();
    got.sort_by_key(|f| seq(f));
    assert_same(&got, &sent);
    assert!(!from_xsk.is_empty() && !from_kernel.is_empty());

    drop(q0);
    let link = director_link(&lab);
    assert!(!has_xdp(&link), "detached with the last socket:\n{link}");
}

/// A device without native XDP (the loopback device of a fresh namespace): the program falls
/// back to generic mode and still delivers.
#[test]
fn generic_mode_when_the_driver_has_no_native_xdp() {
    require_root!();
    let lab = Lab::new("xd", 1);
    ip(&["-n", &lab.director_ns, "link", "set", "dev", "lo", "up"]);
    let mut xsk = in_netns(&lab.director_ns, || AfXdp::open("lo", 0)).expect("AfXdp::open(lo, 0)");
    assert_eq!(xsk.mode(), XdpMode::Generic);
    let link = ip(&["-n", &lab.director_ns, "link", "show", "dev", "lo"]);
    assert!(link.split_whitespace().any(|w| w == "xdpgeneric"), "generic attachment expected:\n{link}");

    // A frame sent on lo comes back in on lo, where the program redirects it.
    let sender = in_netns(&lab.director_ns, || PacketSocket::open("lo"));
    let sent: Vec<Vec<u8>> = (0..64).map(|i| frame(DIRECTOR_MAC, PEER_MAC, i, port(i), length(i))).collect();
    for f in &sent {
        sender.send(f);
    }
    let got = receive(&mut [&mut xsk], sent.len()).remove(0);
    assert_same(&got, &sent);

    drop(xsk);
    let link = ip(&["-n", &lab.director_ns, "link", "show", "dev", "lo"]);
    assert!(!has_xdp(&link), "detached:\n{link}");
}
