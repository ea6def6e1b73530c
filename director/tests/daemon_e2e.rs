//! The `glb-director` daemon on a real interface: a veth pair between two network namespaces
//! the test creates (and removes), the director on one end, a sender/capturer on the other.
//! For each backend:
//! - GLB's s01 frames sent from the peer come back as tunnel frames equal, byte for byte and in
//!   order, to what the offline pcap mode writes for the same input; unmatched frames come out of
//!   the kernel-path TAP unchanged; the daemon's counters agree with what was sent;
//! - SIGTERM under load stops it within a second, and a second start on the same interface works;
//! - 100 table swaps (atomic renames) and one corrupt file while frames stream: every frame comes
//!   out exactly once, to the primary of one of the two tables.
//!
//! Needs root; skips with a message otherwise.

mod support;

use testkit::require_root;

use forwarding_table::LoadedTable;
use glb_wire::ethernet::{self, EtherType};
use glb_wire::{gue, ipv4, udp};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{DIRECTOR_MAC, Lab, PEER_MAC, PacketSocket, in_netns};

const S01: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/oracle/pcap/s01_basic_default_fields");
const METRICS: &str = "127.0.0.1:9102";

#[derive(Clone, Copy, Debug)]
enum Backend {
    AfPacket,
    AfXdp,
    #[cfg(feature = "dpdk")]
    Dpdk,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::AfPacket => "af_packet",
            Self::AfXdp => "af_xdp",
            #[cfg(feature = "dpdk")]
            Self::Dpdk => "dpdk",
        }
    }

    /// The `io` section for the lab's director end.
    fn io(self, lab: &Lab, kni: &str) -> Value {
        let io = serde_json::json!({
            "backend": self.name(),
            "interface": lab.director_if,
            "workers": [{"queue": 0}],
            "kernel_interface": kni,
            "metrics_listen": METRICS,
        });
        #[cfg(feature = "dpdk")]
        let io = if matches!(self, Self::Dpdk) { dpdk_io(io, lab) } else { io };
        io
    }
}

/// The `io` section for DPDK on the lab's director end.
#[cfg(feature = "dpdk")]
fn dpdk_io(mut io: Value, lab: &Lab) -> Value {
    // DPDK's pcap PMD on the live veth (incoming frames only); no hugepages, no PCI, a private
    // runtime dir. Not net_af_packet: DPDK 22.11 joins its fanout group with the kernel's defrag
    // flag, which holds IPv4 fragments back for reassembly.
    io["interface"] = "net_pcap0".into();
    io["dpdk_eal_args"] = serde_json::json!([
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-telemetry",
        "--no-shconf",
        format!("--file-prefix=glbe2e{}", std::process::id()),
        format!("--vdev=net_pcap0,rx_iface_in={0},tx_iface={0}", lab.director_if),
    ]);
    io
}

/// A running director inside the lab's director namespace.
struct Director {
    child: Child,
    log: PathBuf,
}

impl Director {
    /// Starts the daemon and waits for its sd_notify READY=1.
    fn start(lab: &Lab, dir: &Path, config: &Path, table: &Path) -> Self {
        Self::start_with(lab, dir, config, table, &[])
    }

    /// [`Self::start`] with extra command-line arguments.
    fn start_with(lab: &Lab, dir: &Path, config: &Path, table: &Path, extra: &[&str]) -> Self {
        let notify = dir
            .join(format!("notify-{}", std::time::SystemTime::now().elapsed().map_or(0, |d| d.as_nanos())));
        let _ = std::fs::remove_file(&notify);
        let socket = UnixDatagram::bind(&notify).expect("notify socket");
        socket.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
        let log = dir.join("director.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.director_ns, env!("CARGO_BIN_EXE_glb-director")])
            .arg("--config-file")
            .arg(config)
            .arg("--forwarding-table")
            .arg(table)
            .args(extra)
            .env("NOTIFY_SOCKET", &notify)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start glb-director");
        let mut director = Self { child, log };
        let mut buf = [0u8; 64];
        match socket.recv(&mut buf) {
            Ok(n) if &buf[..n] == b"READY=1" => director,
            other => {
                let _ = director.child.kill();
                panic!("no READY=1 from glb-director ({other:?}); log:\n{}", director.log_text());
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; returns how long the process took to exit.
    fn terminate(mut self) -> Duration {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).expect("pid")).expect("pid");
        let started = Instant::now();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let status = self.child.wait().expect("wait");
        let took = started.elapsed();
        assert!(status.success(), "glb-director exited with {status}; log:\n{}", self.log_text());
        took
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A director.conf for the lab: GLB's keys from `base`, our `io` section for `backend`.
fn write_config(dir: &Path, base: &Path, lab: &Lab, backend: Backend, kni: &str) -> PathBuf {
    let mut conf: Value =
        serde_json::from_str(&std::fs::read_to_string(base).expect("director.json")).expect("JSON");
    conf["outbound_gateway_mac"] = Value::String(mac_text(PEER_MAC));
    conf["io"] = backend.io(lab, kni);
    let path = dir.join("director.conf");
    std::fs::write(&path, serde_json::to_vec_pretty(&conf).expect("JSON")).expect("write config");
    path
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Frames of a classic pcap file.
fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let mut reader =
        pcap_file::pcap::PcapReader::new(std::fs::File::open(path).expect("capture")).expect("pcap header");
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.expect("packet").data.into_owned());
    }
    frames
}

/// What offline pcap mode writes for `input`: (TX frames, kernel frames).
fn pcap_mode(dir: &Path, config: &Path, table: &Path, input: &Path) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (tx, kni) = (dir.join("expected-tx.pcap"), dir.join("expected-kni.pcap"));
    let out = Command::new(env!("CARGO_BIN_EXE_glb-director"))
        .arg("--config-file")
        .arg(config)
        .arg("--forwarding-table")
        .arg(table)
        .arg("--local-mac")
        .arg(mac_text(DIRECTOR_MAC))
        .arg("--pcap-in")
        .arg(input)
        .arg("--pcap-out")
        .arg(&tx)
        .arg("--kernel-out")
        .arg(&kni)
        .output()
        .expect("pcap mode");
    assert!(out.status.success(), "pcap mode: {}", String::from_utf8_lossy(&out.stderr));
    (pcap_frames(&tx), pcap_frames(&kni))
}

/// `frame` as a packet socket reads it after the kernel received it: an 802.1Q tag removed.
fn without_vlan_tag(frame: &[u8]) -> Vec<u8> {
    if frame.len() >= 18 && frame[12..14] == [0x81, 0x00] {
        [&frame[..12], &frame[16..]].concat()
    } else {
        frame.to_vec()
    }
}

/// Whether `frame` is a GUE tunnel frame (outer IPv4/UDP to 19523).
fn is_tunnel(frame: &[u8]) -> bool {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else { return false };
    if eth.ethertype() != EtherType::Ipv4 {
        return false;
    }
    let Ok(ip) = ipv4::Packet::new_checked(eth.payload()) else { return false };
    ip.protocol() == glb_wire::ip::Protocol::Udp
        && udp::Packet::new_checked(ip.payload()).is_ok_and(|u| u.dst_port() == gue::PORT)
}

/// Frames matching `keep` on `socket` until `want` arrived or 10 s passed.
fn collect(socket: &PacketSocket, want: usize, keep: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + support::WAIT;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        if let Some(frame) = socket.recv().filter(|f| keep(f)) {
            got.push(frame);
        }
    }
    got
}

/// `GET path` from the metrics endpoint inside the director's namespace.
fn http_get(lab: &Lab, path: &str) -> String {
    in_netns(&lab.director_ns, || {
        let mut stream = TcpStream::connect(METRICS).expect("metrics endpoint");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        response
    })
}

/// Sum over workers of a Prometheus counter.
fn metric(lab: &Lab, name: &str) -> u64 {
    http_get(lab, "/metrics")
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn oracle_frames_match_pcap_mode(backend: Backend) {
    let lab = Lab::new(&format!("e{}", &backend.name()[3..4]), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let kni = format!("kni{}", std::process::id() % 100_000);
    let config = write_config(dir.path(), &Path::new(S01).join("director.json"), &lab, backend, &kni);
    let table = dir.path().join("table.bin");
    std::fs::copy(Path::new(S01).join("table.bin"), &table).expect("table");
    let input = Path::new(S01).join("input.pcap");
    let local_mac = in_netns(&lab.director_ns, || glb_director::io::netdev::mac_address(&lab.director_if))
        .expect("director MAC");
    assert_eq!(local_mac, DIRECTOR_MAC);
    let (want_tx, want_kni) = pcap_mode(dir.path(), &config, &table, &input);
    assert!(!want_tx.is_empty() && !want_kni.is_empty());

    // A pcap vdev has no MAC of its own: with DPDK the operator states the port's MAC.
    let mac = mac_text(DIRECTOR_MAC);
    let extra: &[&str] = if backend.name() == "dpdk" { &["--local-mac", &mac] } else { &[] };
    let director = Director::start_with(&lab, dir.path(), &config, &table, extra);
    let peer = lab.peer_socket();
    let kernel = in_netns(&lab.director_ns, || PacketSocket::open(&kni));
    let frames = pcap_frames(&input);
    for frame in &frames {
        peer.send(frame);
        std::thread::sleep(Duration::from_millis(2));
    }
    let got_tx = collect(&peer, want_tx.len(), is_tunnel);
    // The kernel moves an 802.1Q tag into packet metadata when a frame is received on the TAP,
    // so a packet socket reads tagged frames without their 4-byte tag.
    let want_kni: Vec<Vec<u8>> = want_kni.iter().map(|f| without_vlan_tag(f)).collect();
    let want_kni_set: Vec<&Vec<u8>> = want_kni.iter().collect();
    let got_kni = collect(&kernel, want_kni.len(), |f| want_kni_set.iter().any(|w| w.as_slice() == f));
    let missing: Vec<usize> = (0..want_tx.len()).filter(|&i| !got_tx.contains(&want_tx[i])).collect();
    assert_eq!(
        got_tx.len(),
        want_tx.len(),
        "{backend:?}: tunnel frames (missing expected frames {missing:?}, lengths {:?}); log:\n{}",
        missing.iter().map(|&i| want_tx[i].len()).collect::<Vec<_>>(),
        director.log_text()
    );
    for (i, (got, want)) in got_tx.iter().zip(&want_tx).enumerate() {
        assert_eq!(got, want, "{backend:?}: tunnel frame {i} differs from pcap mode");
    }
    assert_eq!(got_kni, want_kni, "{backend:?}: kernel-path frames, in order, unchanged");
    let dropped = frames.len() - want_tx.len() - want_kni.len();
    let wait_for = |name: &str, want: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let value = metric(&lab, name);
            if value == want as u64 || Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(wait_for("glb_director_received_packets_total", frames.len()), frames.len() as u64);
    assert_eq!(wait_for("glb_director_encapsulated_packets_total", want_tx.len()), want_tx.len() as u64);
    assert_eq!(wait_for("glb_director_transmitted_packets_total", want_tx.len()), want_tx.len() as u64);
    assert_eq!(wait_for("glb_director_kernel_packets_total", want_kni.len()), want_kni.len() as u64);
    assert_eq!(wait_for("glb_director_dropped_packets_total", dropped), dropped as u64);
    let table_json: Value = {
        let response = http_get(&lab, "/table");
        serde_json::from_str(response.split("\r\n\r\n").nth(1).expect("body")).expect("/table JSON")
    };
    assert_eq!(table_json["generation"], 1);
    let ready = director.log_text().lines().find(|l| l.contains("glb-director ready")).map(str::to_owned);
    let ready: Value =
        serde_json::from_str(&ready.expect("a ready log line")).expect("GLB-style JSON log line");
    assert_eq!((ready["level"].as_str(), ready["timestamp"].is_f64()), (Some("info"), true));
    assert_eq!(table_json["tables"][0]["backends"][0]["ip"], "1.2.3.4");
    let took = director.terminate();
    assert!(took < Duration::from_secs(1), "{backend:?}: SIGTERM took {took:?}");
}

#[test]
fn af_packet_forwards_like_pcap_mode() {
    require_root!();
    oracle_frames_match_pcap_mode(Backend::AfPacket);
}

#[test]
fn af_xdp_forwards_like_pcap_mode() {
    require_root!();
    oracle_frames_match_pcap_mode(Backend::AfXdp);
}

#[cfg(feature = "dpdk")]
#[test]
fn dpdk_forwards_like_pcap_mode() {
    require_root!();
    oracle_frames_match_pcap_mode(Backend::Dpdk);
}

#[test]
fn reload_under_load_sigterm_and_restart_over_af_packet() {
    require_root!();
    let lab = Lab::new("er", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = support::vip_table_generations();
    let table = dir.path().join("forwarding_table.bin");
    support::publish(&table, &a);
    let config =
        write_config(dir.path(), &Path::new(S01).join("director.json"), &lab, Backend::AfPacket, "kr0");
    let director = Director::start(&lab, dir.path(), &config, &table);
    let peer = lab.peer_socket();

    const FRAMES: u32 = 6000;
    let sender = {
        let peer_ns = lab.peer_ns.clone();
        let peer_if = lab.peer_if.clone();
        std::thread::spawn(move || {
            in_netns(&peer_ns, || {
                let socket = PacketSocket::open(&peer_if);
                for seq in 0..FRAMES {
                    socket.send(&support::vip_frame(seq));
                    if seq % 10 == 9 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        })
    };
    let generation = |lab: &Lab| metric(lab, "glb_director_table_generation");
    for swap in 0..100u64 {
        if swap == 50 {
            support::publish(&table, &a[..a.len() - 8]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while metric(&lab, "glb_director_table_reload_failures_total") < 1 {
                assert!(Instant::now() < deadline, "the corrupt table was not seen");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        support::publish(&table, if swap % 2 == 0 { &b } else { &a });
        let deadline = Instant::now() + Duration::from_secs(10);
        while generation(&lab) < swap + 2 {
            assert!(
                Instant::now() < deadline,
                "swap {swap} was not picked up; log:\n{}",
                director.log_text()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    sender.join().expect("sender");
    let got = collect(&peer, FRAMES as usize, is_tunnel);
    assert_eq!(metric(&lab, "glb_director_table_reload_failures_total"), 1, "only the corrupt file failed");
    let (table_a, table_b) =
        (LoadedTable::from_bytes(a.clone()).expect("a"), LoadedTable::from_bytes(b).expect("b"));
    let mut seen: HashMap<u32, Ipv4Addr> = HashMap::new();
    let (mut via_a, mut via_b) = (0, 0);
    for frame in &got {
        let (seq, dst, client) = support::decode_vip_tunnel(frame).expect("a tunnel frame of the stream");
        assert!(seen.insert(seq, dst).is_none(), "frame {seq} came out twice");
        if dst == support::vip_primary(&table_a, client) {
            via_a += 1;
        } else {
            assert_eq!(
                dst,
                support::vip_primary(&table_b, client),
                "frame {seq} went to neither table's primary"
            );
            via_b += 1;
        }
    }
    assert_eq!(seen.len(), FRAMES as usize, "every frame came out exactly once");
    assert!(via_a > 0 && via_b > 0, "both tables carried traffic ({via_a} / {via_b})");

    // SIGTERM under load stops within a second; a second start on the same interface works.
    let load = {
        let peer_ns = lab.peer_ns.clone();
        let peer_if = lab.peer_if.clone();
        std::thread::spawn(move || {
            in_netns(&peer_ns, || {
                let socket = PacketSocket::open(&peer_if);
                let until = Instant::now() + Duration::from_millis(1500);
                let mut seq = FRAMES;
                while Instant::now() < until {
                    socket.send(&support::vip_frame(seq));
                    seq += 1;
                }
            });
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let took = director.terminate();
    assert!(took < Duration::from_secs(1), "SIGTERM under load took {took:?}");
    load.join().expect("load");
    let again = Director::start(&lab, dir.path(), &config, &table);
    while peer.recv().is_some() {}
    peer.send(&support::vip_frame(1_000_000));
    let got =
        collect(&peer, 1, |f| support::decode_vip_tunnel(f).is_some_and(|(seq, _, _)| seq == 1_000_000));
    assert_eq!(got.len(), 1, "the restarted director forwards; log:\n{}", again.log_text());
    assert!(again.terminate() < Duration::from_secs(1));
}
