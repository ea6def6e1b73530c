//! The DPDK backend (cargo feature `dpdk`) against real DPDK with virtual devices and no NIC:
//!
//! - `net_pcap`: frames read from a capture through a DPDK port and transmitted back out from
//!   their own mbufs must equal the input byte for byte (a reflector), a chained jumbo frame is
//!   copied whole, and the real pipeline run over a DPDK port
//!   must transmit exactly what `glb-director --pcap-in` writes for the same capture.
//! - `net_af_packet` on a veth pair between two network namespaces the test creates (root only):
//!   frames the peer's kernel sends arrive, and frames the port transmits reach the peer's socket.
//!
//! The EAL starts once per process: the pcap test starts it in this process; the veth test runs
//! its two sides as child processes of this test binary (inside the namespaces, chosen by
//! `GLBD_DPDK_ROLE`).

#![cfg(feature = "dpdk")]

use forwarding_table::LoadedTable;
use glb_director::config::DirectorConfig;
use glb_director::io::dpdk::{Dpdk, DpdkQueue, PortConfig};
use glb_director::io::{BURST_SIZE, Burst, Forwarded, HEADROOM, MAX_FRAME, PacketIo};
use glb_director::pipeline::{Frame, Pipeline, Verdict};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/oracle/pcap/s01_basic_default_fields");
const LOCAL_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn eal_args(prefix: &str, vdevs: &[String]) -> Vec<String> {
    let mut args: Vec<String> =
        ["-l", "0", "--no-huge", "-m", "512", "--no-pci", "--no-telemetry", "--no-shconf"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    args.push(format!("--file-prefix={prefix}-{}", std::process::id()));
    args.extend(vdevs.iter().map(|v| format!("--vdev={v}")));
    args
}

/// Removes the EAL's (empty, with `--no-shconf`) runtime directory once the EAL is gone.
fn remove_runtime_dir(prefix: &str) {
    let name = format!("{prefix}-{}", std::process::id());
    let _ = std::fs::remove_dir(Path::new("/var/run/dpdk").join(&name));
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        let _ = std::fs::remove_dir(Path::new(&runtime).join("dpdk").join(&name));
    }
}

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = PcapReader::new(file).expect("pcap header");
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.expect("pcap record").data.into_owned());
    }
    frames
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = std::fs::File::create(path).expect("create pcap");
    let header = PcapHeader { datalink: DataLink::ETHERNET, snaplen: 65535, ..PcapHeader::default() };
    let mut writer = PcapWriter::with_header(file, header).expect("pcap header");
    for (i, frame) in frames.iter().enumerate() {
        let orig_len = u32::try_from(frame.len()).expect("frame length");
        let stamp = Duration::from_millis(u64::try_from(i).expect("index"));
        writer.write_packet(&PcapPacket::new(stamp, orig_len, frame)).expect("pcap record");
    }
}

/// Receives until `count` frames came or 10 s passed; calls `each` on every burst.
fn receive(queue: &mut DpdkQueue, count: usize, mut each: impl FnMut(&mut DpdkQueue, &mut Burst)) -> usize {
    let mut burst = Burst::new();
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received < count && Instant::now() < deadline {
        let n = queue.rx_burst(&mut burst).expect("rx_burst");
        if n == 0 {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        received += n;
        each(queue, &mut burst);
    }
    received
}

/// Like [`receive`] through `rx_forward` (frames lent in place): `handle` sees each burst and
/// marks the frames to transmit back out; the forwarding totals.
fn forward(
    queue: &mut DpdkQueue,
    count: usize,
    mut handle: impl FnMut(&mut [Frame<'_>], &mut [bool; BURST_SIZE]),
) -> Forwarded {
    let mut burst = Burst::new();
    let mut total = Forwarded::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while total.received < count && Instant::now() < deadline {
        let got = queue
            .rx_forward(&mut burst, &mut |frames, transmit| {
                handle(frames, transmit);
                Ok(())
            })
            .expect("rx_forward");
        if got.received == 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
        total.received += got.received;
        total.transmitted += got.transmitted;
        total.refused += got.refused;
    }
    total
}

/// Flushes until the device took every queued frame (or 5 s passed).
fn drain(queue: &mut DpdkQueue) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while queue.tx_pending() > 0 && Instant::now() < deadline {
        queue.flush().expect("flush");
    }
    assert_eq!(queue.tx_pending(), 0, "the device took every frame");
}

/// An IPv4/UDP frame (IPv4 header checksum set, UDP checksum 0).
fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).expect("small payload");
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + usize::from(ip_len));
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let sum: u32 = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let folded = (folded & 0xffff) + (folded >> 16);
    let checksum = !u16::try_from(folded).expect("folded to 16 bits");
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&ports.0.to_be_bytes());
    f.extend_from_slice(&ports.1.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// The oracle scenario's frames plus crafted edge sizes: a 60-byte minimum frame, a 1514-byte
/// full-MTU frame and a 9000-byte jumbo frame.
fn reflector_input() -> Vec<Vec<u8>> {
    let mut frames = read_pcap(&Path::new(SCENARIO).join("input.pcap"));
    let (a, b) = ([0, 0, 0x5e, 0, 0x53, 1], [0, 0, 0x5e, 0, 0x53, 2]);
    let (src, dst) = ([192, 0, 2, 1], [198, 51, 100, 2]);
    let mut small = udp_frame(a, b, src, dst, (1024, 80), b"min");
    small.resize(60, 0);
    frames.push(small);
    let pattern = |n: usize| (0..n).map(|i| u8::try_from(i % 251).expect("mod 251")).collect::<Vec<u8>>();
    frames.push(udp_frame(a, b, src, dst, (1024, 80), &pattern(1514 - 42)));
    frames.push(udp_frame(a, b, src, dst, (1024, 80), &pattern(9000 - 42)));
    frames
}

/// `net_pcap` reflector, the pipeline over a DPDK port, and multi-segment receive.
#[test]
fn pcap_vdev() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = reflector_input();
    let reflect_in = dir.path().join("reflect_in.pcap");
    let reflect_out = dir.path().join("reflect_out.pcap");
    write_pcap(&reflect_in, &frames);
    let scenario_in = Path::new(SCENARIO).join("input.pcap");
    let pipeline_out = dir.path().join("pipeline_out.pcap");
    let jumbo = frames.last().expect("jumbo frame").clone();
    let jumbo_in = dir.path().join("jumbo_in.pcap");
    let jumbo_out = dir.path().join("jumbo_out.pcap");
    write_pcap(&jumbo_in, std::slice::from_ref(&jumbo));
    let vdevs = [
        format!("net_pcap0,rx_pcap={},tx_pcap={}", reflect_in.display(), reflect_out.display()),
        format!("net_pcap1,rx_pcap={},tx_pcap={}", scenario_in.display(), pipeline_out.display()),
        format!("net_pcap2,rx_pcap={},tx_pcap={}", jumbo_in.display(), jumbo_out.display()),
    ];
    let args = eal_args("glbd-pcap", &vdevs);
    let eal = Dpdk::init(&args).expect("EAL starts with --no-huge and net_pcap vdevs");
    assert!(Dpdk::init(&args).is_err(), "the EAL starts once per process");
    assert_eq!(eal.port_count(), 3);

    // 1. Reflector: every frame received is transmitted unchanged, from its own mbuf
    //    (jumbo-sized mbufs: each frame is one segment, lent in place with its headroom).
    let port = eal.port_id("net_pcap0").expect("net_pcap0");
    let jumbo_mbufs = PortConfig { mbufs: 1023, data_room: 9216 + 128, ..PortConfig::default() };
    let mut queue = eal.port_with(port, 1, &jumbo_mbufs).expect("port").pop().expect("one queue");
    assert!(eal.port_with(port, 1, &jumbo_mbufs).is_err(), "a port is set up once at a time");
    let mut lent = Vec::new();
    let forwarded = forward(&mut queue, frames.len(), |burst, transmit| {
        for (frame, marked) in burst.iter().zip(transmit.iter_mut()) {
            lent.push((frame.start(), frame.data().to_vec()));
            *marked = true;
        }
    });
    assert_eq!(forwarded.received, frames.len(), "every frame of the input capture");
    assert_eq!((forwarded.transmitted, forwarded.refused), (frames.len() as u64, 0), "all queued in place");
    assert!(lent.iter().all(|(start, _)| *start >= HEADROOM), "headroom before every frame");
    assert!(lent.iter().map(|(_, f)| f).eq(&frames), "lent frames are the received ones");
    drain(&mut queue);
    let stats = eal.stats(port).expect("stats");
    assert_eq!((stats.rx_packets, stats.tx_packets), (frames.len() as u64, frames.len() as u64), "{stats:?}");
    drop(queue); // stops and closes the port: the TX capture is complete
    let reflected = read_pcap(&reflect_out);
    assert_eq!(reflected.len(), frames.len());
    for (i, (out, input)) in reflected.iter().zip(&frames).enumerate() {
        assert!(out == input, "frame {i}: {} bytes out, {} in, not equal", out.len(), input.len());
    }

    // 2. The pipeline over a DPDK port: forwarded frames must equal the offline pcap mode's.
    let read = |f: &str| std::fs::read_to_string(Path::new(SCENARIO).join(f)).expect(f);
    let config = DirectorConfig::parse("director.json", &read("director.json")).expect("director.json");
    let table_bytes = std::fs::read(Path::new(SCENARIO).join("table.bin")).expect("table.bin");
    let table = LoadedTable::from_bytes(table_bytes).expect("table loads");
    let pipeline = Pipeline::new(config.pipeline(LOCAL_MAC));
    let port = eal.port_id("net_pcap1").expect("net_pcap1");
    let mut queue = eal.port(port, 1).expect("port").pop().expect("one queue");
    let input_frames = read_pcap(&scenario_in).len();
    let mut forwarded = 0;
    let received = receive(&mut queue, input_frames, |queue, burst| {
        for mut frame in burst.frames() {
            if pipeline.process(&table, &mut frame).0 == Verdict::Forward {
                assert!(queue.tx(frame.data()).expect("tx"));
                forwarded += 1;
            }
        }
    });
    assert_eq!(received, input_frames);
    drain(&mut queue);
    drop(queue);
    let glb_out = dir.path().join("glb_out.pcap");
    let status = Command::new(env!("CARGO_BIN_EXE_glb-director"))
        .args(["--config-file", &format!("{SCENARIO}/director.json")])
        .args(["--forwarding-table", &format!("{SCENARIO}/table.bin")])
        .arg("--pcap-in")
        .arg(&scenario_in)
        .arg("--pcap-out")
        .arg(&glb_out)
        .stdout(Stdio::null())
        .status()
        .expect("glb-director runs");
    assert!(status.success(), "glb-director --pcap-in: {status}");
    let expected = read_pcap(&glb_out);
    let ours = read_pcap(&pipeline_out);
    assert!(forwarded > 0, "the scenario forwards frames");
    assert_eq!(ours.len(), expected.len(), "forwarded frames");
    for (i, (out, want)) in ours.iter().zip(&expected).enumerate() {
        assert!(out == want, "forwarded frame {i} differs from glb-director --pcap-in");
    }

    // 3. Default 2 KiB mbufs: a jumbo frame arrives in a chain of mbufs, cannot be lent in
    //    place and is copied whole; transmitting it is refused (one mbuf per frame), and counted.
    let port = eal.port_id("net_pcap2").expect("net_pcap2");
    let mut queue = eal.port(port, 1).expect("port").pop().expect("one queue");
    let mut got = Vec::new();
    let chained = forward(&mut queue, 1, |burst, transmit| {
        got.extend(burst.iter().map(|f| f.data().to_vec()));
        transmit.fill(true);
    });
    assert_eq!(got.len(), 1, "the jumbo frame arrives");
    assert!(got[0] == jumbo, "the jumbo frame is copied whole ({} of {} bytes)", got[0].len(), jumbo.len());
    assert!(jumbo.len() <= MAX_FRAME);
    assert_eq!((chained.transmitted, chained.refused), (0, 1), "too long for one 2 KiB mbuf");
    assert_eq!(queue.tx_refused(), 1);
    drop(queue);
    drop(eal); // the last handle: rte_eal_cleanup
    remove_runtime_dir("glbd-pcap");
    println!(
        "net_pcap: reflected {} frames byte for byte; pipeline forwarded {forwarded} of {input_frames} frames, \
         equal to glb-director --pcap-in; jumbo chain copied; {:.2?}",
        frames.len(),
        started.elapsed()
    );
}

/// Which side of the veth test this process is (children of [`af_packet_veth`]).
const ROLE: &str = "GLBD_DPDK_ROLE";
/// Frames each side sends.
const VETH_FRAMES: usize = 64;
/// Documentation MACs (RFC 7042) of the peer's and the DPDK side's veth ends.
const PEER_MAC: [u8; 6] = [0, 0, 0x5e, 0, 0x53, 0x0a];
const DPDK_MAC: [u8; 6] = [0, 0, 0x5e, 0, 0x53, 0x0b];
const PEER_IP: [u8; 4] = [198, 18, 0, 1];
const DPDK_IP: [u8; 4] = [198, 18, 0, 2];
const PEER_PORT: u16 = 40001;
const DPDK_PORT: u16 = 40002;

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.strip_prefix("Uid:").is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0")))
    })
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(status.success(), "ip {}: {status}", args.join(" "));
}

/// The two namespaces; deleting them deletes the veth pair.
struct Namespaces {
    peer: String,
    dpdk: String,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.peer, &self.dpdk] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Index of a `{marker}{i};` payload in a frame, if any.
fn marked_index(frame: &[u8], marker: &[u8]) -> Option<usize> {
    let at = frame.windows(marker.len()).position(|w| w == marker)? + marker.len();
    let digits = frame[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&frame[at..at + digits]).ok()?.parse().ok()
}

/// This test binary again, running only [`af_packet_veth`] as `role`, inside `ns`.
fn spawn_role(ns: &str, role: &str, iface: &str) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(["af_packet_veth", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("GLBD_DPDK_IFACE", iface)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a side of the test")
}

/// Waits for a line starting with `marker` on the child's stdout (echoing everything).
fn wait_for_line(child: &mut Child, marker: &str) -> Option<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    let marker = marker.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("  | {line}");
            if line.contains(&marker) {
                let _ = sender.send(line);
            }
        }
    });
    receiver.recv_timeout(Duration::from_secs(30)).ok()
}

/// Waits up to 30 s for a child; kills it after that.
fn finish(child: &mut Child, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            println!("{what} timed out");
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `net_af_packet` on a veth pair: frames the peer's kernel sends arrive at the DPDK port, and
/// frames the port transmits reach a socket on the peer.
#[test]
fn af_packet_veth() {
    match std::env::var(ROLE).as_deref() {
        Ok("dpdk") => return dpdk_side(),
        Ok("peer") => return peer_side(),
        _ => {}
    }
    if !is_root() {
        println!("skipped: creating network namespaces and veth pairs needs root");
        return;
    }
    let started = Instant::now();
    let pid = std::process::id();
    let ns = Namespaces { peer: format!("glbd-dpdk-{pid}-peer"), dpdk: format!("glbd-dpdk-{pid}-port") };
    let (peer_if, dpdk_if) = (format!("gdpk{pid}p"), format!("gdpk{pid}d"));
    ip(&["netns", "add", &ns.peer]);
    ip(&["netns", "add", &ns.dpdk]);
    ip(&[
        "link",
        "add",
        &peer_if,
        "netns",
        &ns.peer,
        "address",
        &mac_text(PEER_MAC),
        "type",
        "veth",
        "peer",
        "name",
        &dpdk_if,
        "netns",
        &ns.dpdk,
        "address",
        &mac_text(DPDK_MAC),
    ]);
    ip(&["-n", &ns.peer, "addr", "add", "198.18.0.1/24", "dev", &peer_if]);
    ip(&["-n", &ns.peer, "link", "set", &peer_if, "up"]);
    ip(&["-n", &ns.dpdk, "link", "set", &dpdk_if, "up"]);
    let lladdr = mac_text(DPDK_MAC);
    ip(&[
        "-n",
        &ns.peer,
        "neigh",
        "add",
        "198.18.0.2",
        "lladdr",
        &lladdr,
        "dev",
        &peer_if,
        "nud",
        "permanent",
    ]);

    let mut dpdk = spawn_role(&ns.dpdk, "dpdk", &dpdk_if);
    let ready = wait_for_line(&mut dpdk, "READY");
    if ready.is_none() {
        let _ = dpdk.kill();
        let _ = dpdk.wait();
        panic!("the DPDK side did not start its port");
    }
    let mut peer = spawn_role(&ns.peer, "peer", &peer_if);
    let peer_result = wait_for_line(&mut peer, "PEER");
    let peer_ok = finish(&mut peer, "peer side");
    let dpdk_ok = finish(&mut dpdk, "DPDK side");
    assert!(peer_ok && dpdk_ok, "peer ok {peer_ok}, DPDK side ok {dpdk_ok}: {peer_result:?}");
    println!("net_af_packet on veth: {VETH_FRAMES} frames each way; {:.2?}", started.elapsed());
}

/// Child in the DPDK namespace: the port on the veth end.
fn dpdk_side() {
    let iface = std::env::var("GLBD_DPDK_IFACE").expect("interface");
    let vdev = format!("net_af_packet0,iface={iface},qpairs=1");
    let eal = Dpdk::init(&eal_args("glbd-afp", &[vdev])).expect("EAL starts with net_af_packet");
    let port = eal.port_id("net_af_packet0").expect("net_af_packet0");
    assert_eq!(eal.mac(port).expect("MAC"), DPDK_MAC, "the port has the veth end's MAC");
    let mut queue = eal.port(port, 1).expect("port").pop().expect("one queue");
    println!("READY");
    // The peer repeats its frames until it hears back: collect each index once.
    let mut seen = [false; VETH_FRAMES];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut burst = Burst::new();
    while seen.iter().any(|s| !s) && Instant::now() < deadline {
        if queue.rx_burst(&mut burst).expect("rx_burst") == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        for frame in burst.frames() {
            let data = frame.data();
            if data[..12] != [DPDK_MAC, PEER_MAC].concat() {
                continue; // not from the peer's end (nothing else is on the link, but be sure)
            }
            if let Some(i) = marked_index(data, b"glbd-dpdk-peer ") {
                seen[i.min(VETH_FRAMES - 1)] = true;
            }
        }
    }
    let arrived = seen.iter().filter(|s| **s).count();
    for i in 0..VETH_FRAMES {
        let payload = format!("glbd-dpdk-port {i};");
        let frame =
            udp_frame(PEER_MAC, DPDK_MAC, DPDK_IP, PEER_IP, (DPDK_PORT, PEER_PORT), payload.as_bytes());
        assert!(queue.tx(&frame).expect("tx"), "queued");
    }
    drain(&mut queue);
    let stats = eal.stats(port).expect("stats");
    println!("DPDK side: {arrived}/{VETH_FRAMES} peer frames arrived, {VETH_FRAMES} transmitted; {stats:?}");
    assert_eq!(arrived, VETH_FRAMES, "every peer frame arrives at the DPDK port");
    assert!(stats.tx_packets >= VETH_FRAMES as u64, "{stats:?}");
    // Keep the port up while the peer reads, then close it.
    std::thread::sleep(Duration::from_millis(500));
    drop(queue);
    drop(eal);
    remove_runtime_dir("glbd-afp");
}

/// Child in the peer namespace: a UDP socket on the other veth end.
fn peer_side() {
    let socket = UdpSocket::bind((Ipv4Addr::from(PEER_IP), PEER_PORT)).expect("bind the peer socket");
    socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let mut heard = [false; VETH_FRAMES];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 2048];
    while heard.iter().any(|h| !h) && Instant::now() < deadline {
        if !heard.iter().any(|h| *h) {
            for i in 0..VETH_FRAMES {
                let payload = format!("glbd-dpdk-peer {i};");
                socket.send_to(payload.as_bytes(), (Ipv4Addr::from(DPDK_IP), DPDK_PORT)).expect("send");
            }
        }
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            assert_eq!(from, SocketAddr::from((DPDK_IP, DPDK_PORT)), "from the DPDK port");
            if let Some(i) = marked_index(&buf[..len], b"glbd-dpdk-port ") {
                heard[i.min(VETH_FRAMES - 1)] = true;
            }
        }
    }
    let count = heard.iter().filter(|h| **h).count();
    println!("PEER received {count}/{VETH_FRAMES} frames the DPDK port transmitted");
    assert_eq!(count, VETH_FRAMES, "every transmitted frame reaches the peer");
}
