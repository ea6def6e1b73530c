//! The lab of the end-to-end tests (glb-healthcheck-redirect-xdp.md §5.5), built per test in
//! namespaces it names uniquely and removes on drop (also on panic):
//!
//! ```text
//!   tester ns: br0 198.51.100.5/24, 2001:db8:1::5/64 ── veth ── proxy1 ns: eth0 .10 / ::10
//!                                                    └─ veth ── proxy2 ns: eth0 .11 / ::11
//! ```
//! Each proxy runs the real `glb-redirect` binary (`--tun glbtun0 --vip 192.0.2.10
//! --vip 2001:db8:10::10`, as the lab does) and a TCP server on port 22 that sends a banner.
//! The tester has no route to the VIPs, so its kernel never answers what the VIP sends it (it
//! could not route an RST back); it sends GUE from UDP port 12345 like a director, captures on
//! br0 with an AF_PACKET socket, and receives chained GUE on UDP 19523.
#![allow(dead_code, reason = "each test uses a different part of the support module")]

use glb_wire::ip::Protocol;
use glb_wire::{checksum, ipv4, ipv6, tcp};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use testkit::{Netns, PacketSocket};

/// How long a test waits for something to arrive.
pub const WAIT: Duration = Duration::from_secs(5);
/// The tester's outer address.
pub const TESTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 5);
/// The proxies' outer addresses.
pub const PROXIES: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 51, 100, 10), Ipv4Addr::new(198, 51, 100, 11)];
/// Index of PROXY (the primary) and ALT (the secondary) in [`PROXIES`].
pub const PROXY: usize = 0;
/// See [`PROXY`].
pub const ALT: usize = 1;
/// The director's flow-entropy source port every test datagram carries.
pub const SOURCE_PORT: u16 = 12_345;
/// GLB's GUE port.
pub const GUE_PORT: u16 = 19_523;
/// What the proxies' port-22 servers send first.
pub const BANNER: &[u8] = b"SSH-2.0-glb-redirect-test\r\n";

/// The addresses of one inner family.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// For messages.
    pub name: &'static str,
    /// The VIP on both proxies' TUN devices.
    pub vip: IpAddr,
    /// The tester.
    pub tester: IpAddr,
    /// The proxies' own addresses.
    pub proxies: [IpAddr; 2],
    /// A router on the segment (source of PMTU errors).
    pub router: IpAddr,
}

/// IPv4 in IPv4.
pub const V4: Family = Family {
    name: "IPv4",
    vip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
    tester: IpAddr::V4(TESTER),
    proxies: [IpAddr::V4(PROXIES[0]), IpAddr::V4(PROXIES[1])],
    router: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
};

/// IPv6 in IPv4.
pub const V6: Family = Family {
    name: "IPv6",
    vip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x10)),
    tester: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5)),
    proxies: [
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11)),
    ],
    router: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1)),
};

/// Both families, for tests that run every scenario in each.
pub const FAMILIES: [Family; 2] = [V4, V6];

// ---------------------------------------------------------------------------------------------
// Packets, built independently of the code under test (glb-wire's emitters and checksum).

/// Sum of the pseudo-header of `len` bytes of protocol `proto` between `src` and `dst`.
fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let len = u32::try_from(len).expect("length");
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            checksum::addr_sum(s) + checksum::addr_sum(d) + u32::from(proto) + len
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            checksum::sum(checksum::sum(0, &s.octets()), &d.octets())
                + (len >> 16)
                + (len & 0xffff)
                + u32::from(proto)
        }
        _ => panic!("mixed families"),
    }
}

/// An IP packet carrying `l4` (checksum at `checksum_at` in `l4` filled in, if given: over a
/// pseudo-header, except for ICMPv4).
pub fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    mut l4: Vec<u8>,
    checksum_at: Option<usize>,
) -> Vec<u8> {
    if let Some(at) = checksum_at {
        l4[at..at + 2].fill(0);
        let initial = if proto == 1 { 0 } else { pseudo_header(src, dst, proto, l4.len()) };
        let sum = checksum::finish(checksum::sum(initial, &l4));
        l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
    let payload_len = u16::try_from(l4.len()).expect("short");
    let mut packet = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut header = vec![0u8; ipv4::HEADER_LEN];
            ipv4::Repr {
                src_addr: s,
                dst_addr: d,
                protocol: Protocol::from(proto),
                payload_len,
                ttl: 64,
                ident: 1,
                dont_frag: true,
            }
            .emit(&mut header)
            .expect("header");
            header
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut header = vec![0x60, 0, 0, 0];
            header.extend_from_slice(&payload_len.to_be_bytes());
            header.extend_from_slice(&[proto, 64]);
            header.extend_from_slice(&s.octets());
            header.extend_from_slice(&d.octets());
            header
        }
        _ => panic!("mixed families"),
    };
    packet.extend_from_slice(&l4);
    packet
}

/// TCP flags.
pub const SYN: u8 = 0x02;
/// See [`SYN`].
pub const ACK: u8 = 0x10;
/// See [`SYN`].
pub const RST: u8 = 0x04;
/// See [`SYN`].
pub const FIN: u8 = 0x01;
/// See [`SYN`].
pub const PSH: u8 = 0x08;

/// A TCP segment in an IP packet (window 64240, MSS option on SYNs).
pub fn tcp_packet(src: (IpAddr, u16), dst: (IpAddr, u16), seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let options: &[u8] = if flags & SYN != 0 { &[2, 4, 0x05, 0xb4] } else { &[] };
    let mut l4 = vec![0u8; tcp::HEADER_LEN];
    l4[0..2].copy_from_slice(&src.1.to_be_bytes());
    l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
    l4[4..8].copy_from_slice(&seq.to_be_bytes());
    l4[8..12].copy_from_slice(&ack.to_be_bytes());
    l4[12] = u8::try_from(((tcp::HEADER_LEN + options.len()) / 4) << 4).expect("offset");
    l4[13] = flags;
    l4[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    l4.extend_from_slice(options);
    ip_packet(src.0, dst.0, 6, l4, Some(16))
}

fn icmp_proto(family: IpAddr) -> u8 {
    if family.is_ipv4() { 1 } else { 58 }
}

/// An ICMP(v6) echo request carrying `payload`.
pub fn echo_request(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let kind = if src.is_ipv4() { 8 } else { 128 };
    let mut l4 = vec![kind, 0, 0, 0, 0x12, 0x34, 0, 1];
    l4.extend_from_slice(payload);
    ip_packet(src, dst, icmp_proto(src), l4, Some(2))
}

/// "Fragmentation needed" (MTU 800) or "packet too big" (MTU 1400) from `router` to the VIP,
/// quoting `quoted` (a packet the VIP sent).
pub fn too_big(router: IpAddr, vip: IpAddr, quoted: &[u8]) -> Vec<u8> {
    let mut l4 = if router.is_ipv4() {
        vec![3, 4, 0, 0, 0, 0, 0x03, 0x20]
    } else {
        vec![2, 0, 0, 0, 0, 0, 0x05, 0x78]
    };
    l4.extend_from_slice(quoted);
    ip_packet(router, vip, icmp_proto(router), l4, Some(2))
}

/// A GUE payload with GLB's private data: `hops`, `next_hop`, inner protocol 41 if `inner` is
/// IPv6, else 4.
pub fn gue(next_hop: u8, hops: &[Ipv4Addr], inner: &[u8]) -> Vec<u8> {
    let count = u8::try_from(hops.len()).expect("few hops");
    let proto = if inner.first().is_some_and(|b| b >> 4 == 6) { 41 } else { 4 };
    let mut d = vec![1 + count, proto, 0, 0, 0, 0, next_hop, count];
    for hop in hops {
        d.extend_from_slice(&hop.octets());
    }
    d.extend_from_slice(inner);
    d
}

// ---------------------------------------------------------------------------------------------
// Captured frames.

/// A TCP segment seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Source address and port.
    pub src: (IpAddr, u16),
    /// Destination address and port.
    pub dst: (IpAddr, u16),
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

/// The IP packet in an Ethernet frame (or, for a TUN device, the frame itself).
pub fn ip_of(frame: &[u8], ethernet: bool) -> Option<&[u8]> {
    if !ethernet {
        return Some(frame);
    }
    match frame.get(12..14)? {
        [0x08, 0x00] | [0x86, 0xdd] => frame.get(14..),
        _ => None,
    }
}

/// (source, destination, protocol, transport bytes) of an IP packet (no IPv6 extension headers).
pub fn parse_ip(packet: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    match packet.first()? >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(packet).ok()?;
            Some((
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                u8::from(ip.protocol()),
                ip.payload(),
            ))
        }
        6 => {
            let ip = ipv6::Packet::new_checked(packet).ok()?;
            Some((
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                u8::from(ip.next_header()),
                ip.payload(),
            ))
        }
        _ => None,
    }
}

/// The TCP segment in an IP packet.
pub fn parse_segment(packet: &[u8]) -> Option<Segment> {
    let (src, dst, proto, l4) = parse_ip(packet)?;
    if proto != 6 {
        return None;
    }
    let seg = tcp::Packet::new_checked(l4).ok()?;
    let data_at = usize::from(l4[12] >> 4) * 4;
    Some(Segment {
        src: (src, seg.src_port()),
        dst: (dst, seg.dst_port()),
        seq: seg.seq_number(),
        ack: seg.ack_number(),
        flags: seg.flags(),
        payload: l4.get(data_at..)?.to_vec(),
    })
}

/// Receives from `socket` until a packet satisfies `want` or [`WAIT`] passes.
pub fn capture<T>(socket: &PacketSocket, ethernet: bool, want: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(frame) = socket.recv()
            && let Some(found) = ip_of(&frame, ethernet).and_then(&want)
        {
            return Some(found);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The lab.

/// A `glb-redirect` process in a namespace; killed (by its pid) on drop, its log printed when
/// the test failed.
pub struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    /// Starts `glb-redirect ARGS…` in `ns`, logging to a file.
    pub fn start(ns: &Netns, args: &[&str]) -> Self {
        let log = std::env::temp_dir().join(format!("{}.log", ns.name()));
        let file = std::fs::File::create(&log).expect("daemon log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_glb-redirect")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start glb-redirect");
        Self { child, log }
    }

    /// Waits until its `/stats` answers in `ns`; panics with its log if it exits first.
    pub fn wait_ready(&mut self, ns: &Netns) {
        let deadline = Instant::now() + WAIT;
        while stats_in(ns).is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("glb-redirect exited with {status}: {}", self.log_text());
            }
            assert!(Instant::now() < deadline, "glb-redirect in {} did not start", ns.name());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits (up to [`WAIT`]) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).expect("pid")).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "glb-redirect ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log_text());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A TCP server in a namespace: port 22 on every address (dual-stack), sends [`BANNER`] to each
/// client and keeps the connection open; stopped and joined on drop.
struct BannerServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BannerServer {
    fn start(ns: &Netns) -> Self {
        let listener = ns.run(|| TcpListener::bind("[::]:22")).expect("listen on [::]:22");
        listener.set_nonblocking(true).expect("non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut clients = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.write_all(BANNER);
                        clients.push(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for BannerServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What to change from the default lab.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `net.ipv4.tcp_syncookies=2` in ALT's namespace (cookies always).
    pub alt_always_cookies: bool,
}

/// Tester and two proxies; see the module documentation. Fields drop in order: daemons and
/// servers first, then the namespaces.
pub struct Lab {
    daemons: Vec<Daemon>,
    servers: Vec<BannerServer>,
    /// The tester's UDP socket, bound to port [`SOURCE_PORT`].
    sender: UdpSocket,
    /// The tester's UDP socket on port 19523, for chained GUE.
    pub chained: UdpSocket,
    /// Captures on the tester's br0.
    pub capture: PacketSocket,
    /// The proxies' namespaces.
    pub proxies: [Netns; 2],
    /// The tester's namespace.
    pub tester: Netns,
}

impl Lab {
    /// Builds the lab, starts both daemons and servers, and waits until the daemons answer.
    pub fn new(tag: &str, options: Options) -> Self {
        let tester = Netns::new(&testkit::unique_name(&format!("glbr{tag}-t")));
        let proxies = [1, 2].map(|i| Netns::new(&testkit::unique_name(&format!("glbr{tag}-p{i}"))));
        tester.ip(&["link", "add", "br0", "type", "bridge"]);
        tester.ip(&["addr", "add", "198.51.100.5/24", "dev", "br0"]);
        tester.ip(&["addr", "add", "2001:db8:1::5/64", "dev", "br0", "nodad"]);
        tester.ip(&["link", "set", "br0", "up"]);
        for (i, proxy) in proxies.iter().enumerate() {
            let port = format!("p{}", i + 1);
            #[rustfmt::skip]
            testkit::ip(&[
                "link", "add", &port, "netns", tester.name(), "type", "veth", "peer", "name", "eth0", "netns",
                proxy.name(),
            ]);
            tester.ip(&["link", "set", &port, "master", "br0", "up"]);
            proxy.ip(&["addr", "add", &format!("{}/24", PROXIES[i]), "dev", "eth0"]);
            proxy.ip(&["addr", "add", &format!("2001:db8:1::{}/64", 10 + i), "dev", "eth0", "nodad"]);
            proxy.ip(&["link", "set", "eth0", "up"]);
            // Strict reverse-path filtering host-wide: glb-redirect must make its TUN device loose.
            proxy.sysctl("net.ipv4.conf.all.rp_filter", "1");
        }
        if options.alt_always_cookies {
            proxies[ALT].sysctl("net.ipv4.tcp_syncookies", "2");
        }
        let sender = tester.run(|| UdpSocket::bind((TESTER, SOURCE_PORT))).expect("bind tester:12345");
        let chained = tester.run(|| UdpSocket::bind((TESTER, GUE_PORT))).expect("bind tester:19523");
        chained.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let capture = tester.run(|| PacketSocket::open("br0"));
        #[rustfmt::skip]
        let args = [
            "--tun", "glbtun0", "--vip", "192.0.2.10", "--vip", "2001:db8:10::10",
            "--stats-listen", "127.0.0.1:19521", "--workers", "2", "--debug",
        ];
        let mut daemons: Vec<Daemon> = proxies.iter().map(|ns| Daemon::start(ns, &args)).collect();
        for (daemon, ns) in daemons.iter_mut().zip(&proxies) {
            daemon.wait_ready(ns);
        }
        let servers = proxies.iter().map(BannerServer::start).collect();
        Self { daemons, servers, sender, chained, capture, proxies, tester }
    }

    /// Sends a GUE payload to proxy `to` from the tester's port [`SOURCE_PORT`].
    pub fn send(&self, to: usize, datagram: &[u8]) {
        self.sender.send_to(datagram, (PROXIES[to], GUE_PORT)).expect("send GUE");
    }

    /// The next chained GUE datagram the tester receives: sender and payload.
    pub fn recv_chained(&self, within: Duration) -> Option<(SocketAddr, Vec<u8>)> {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            if let Ok((n, from)) = self.chained.recv_from(&mut buf) {
                buf.truncate(n);
                return Some((from, buf));
            }
        }
        None
    }

    /// The next TCP segment the tester sees from `src` to its port `port` that satisfies
    /// `want` (others are skipped: retransmissions, ...).
    pub fn expect_segment(
        &self,
        src: (IpAddr, u16),
        port: u16,
        want: impl Fn(&Segment) -> bool,
        what: &str,
    ) -> Segment {
        capture(&self.capture, true, |packet| {
            parse_segment(packet).filter(|s| s.src == src && s.dst.1 == port && want(s))
        })
        .unwrap_or_else(|| panic!("no TCP segment from {src:?} to port {port} within {WAIT:?}: {what}"))
    }

    /// Proxy `proxy`'s counters, from its `/stats` endpoint.
    pub fn stats(&self, proxy: usize) -> HashMap<String, u64> {
        stats_in(&self.proxies[proxy]).unwrap_or_else(|| panic!("GET /stats of proxy {proxy} failed"))
    }

    /// Waits until every counter of proxy `proxy` differs from `before` exactly by `deltas`
    /// (unlisted counters unchanged); panics with both sets otherwise.
    pub fn expect_counters(&self, proxy: usize, before: &HashMap<String, u64>, deltas: &[(&str, u64)]) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.stats(proxy);
            let wrong: Vec<String> = now
                .iter()
                .filter_map(|(name, &value)| {
                    let want = before.get(name).copied().unwrap_or(0)
                        + deltas.iter().find(|(n, _)| n == name).map_or(0, |(_, d)| *d);
                    (value != want).then(|| format!("{name}: {value}, expected {want}"))
                })
                .collect();
            if wrong.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "proxy {proxy} counters: {}", wrong.join("; "));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The counters `glb-redirect` in `ns` serves on 127.0.0.1:19521, if it answers.
pub fn stats_in(ns: &Netns) -> Option<HashMap<String, u64>> {
    let text = ns.run(|| {
        let mut stream = TcpStream::connect("127.0.0.1:19521").ok()?;
        stream.set_read_timeout(Some(WAIT)).ok()?;
        stream.write_all(b"GET /stats HTTP/1.0\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        Some(text)
    })?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    body.lines()
        .map(|line| {
            let (name, value) = line.split_once(": ")?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}
