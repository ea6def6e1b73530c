//! Test support shared by the privileged tests: two network namespaces joined by a veth pair
//! (removed on drop, also on panic), running code inside a namespace, and a raw AF_PACKET socket
//! as the independent end of every check.
#![allow(dead_code, reason = "each test binary uses a different part of the support module")]
#![allow(
    unsafe_code,
    reason = "test harness: the AF_PACKET socket needs sockaddr_ll, which has no safe wrapper"
)]

use forwarding_table::{FlowKey, HashFields, LoadedTable};
use glb_wire::{gue, ipv4, udp};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// MAC of the director's end.
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0d, 0x01];
/// MAC of the peer's end.
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0e, 0x01];
/// `ETH_P_ALL` in host order.
const ETH_P_ALL: u16 = 0x0003;
/// How long collection loops wait.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid:\treal\teffective\tsaved\tfs"
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Returns from the test, saying why, when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::support::is_root() {
            eprintln!("skipped: needs root (network namespaces, veth, packet sockets, XDP)");
            return;
        }
    };
}

pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("running ip (iproute2)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair; deleted on drop.
pub struct Lab {
    /// The director's namespace.
    pub director_ns: String,
    /// The peer's namespace.
    pub peer_ns: String,
    /// The director's end of the veth pair.
    pub director_if: String,
    /// The peer's end.
    pub peer_if: String,
}

impl Lab {
    /// Creates the namespaces and the veth pair (with `queues` queues each way), named from
    /// `tag` (2 letters), the process id and a counter.
    pub fn new(tag: &str, queues: u32) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let lab = Self {
            director_ns: format!("glb{tag}-{pid}-{n}-d"),
            peer_ns: format!("glb{tag}-{pid}-{n}-p"),
            director_if: format!("{tag}d{pid}-{n}"),
            peer_if: format!("{tag}p{pid}-{n}"),
        };
        let q = queues.to_string();
        ip(&["netns", "add", &lab.director_ns]);
        ip(&["netns", "add", &lab.peer_ns]);
        #[rustfmt::skip]
        ip(&[
            "link", "add", &lab.director_if, "netns", &lab.director_ns, "numtxqueues", &q, "numrxqueues", &q,
            "type", "veth", "peer", "name", &lab.peer_if, "netns", &lab.peer_ns, "numtxqueues", &q, "numrxqueues", &q,
        ]);
        for (ns, dev, mac) in
            [(&lab.director_ns, &lab.director_if, DIRECTOR_MAC), (&lab.peer_ns, &lab.peer_if, PEER_MAC)]
        {
            let mac = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            // No IPv6 link-local address: no router solicitations or MLD reports on the link.
            ip(&["-n", ns, "link", "set", "dev", dev, "address", &mac, "addrgenmode", "none"]);
            ip(&["-n", ns, "link", "set", "dev", dev, "up"]);
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"]);
        }
        lab
    }

    /// An AF_PACKET socket on the peer's end.
    pub fn peer_socket(&self) -> PacketSocket {
        in_netns(&self.peer_ns, || PacketSocket::open(&self.peer_if))
    }

    /// An AF_PACKET socket on the director's end.
    pub fn director_socket(&self) -> PacketSocket {
        in_netns(&self.director_ns, || PacketSocket::open(&self.director_if))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.director_ns, &self.peer_ns] {
            // Deleting a namespace destroys its end of the veth pair (and so the pair).
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread inside network namespace `ns` (sockets it creates stay in `ns`).
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns file");
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .expect("setns");
                f()
            })
            .join()
            .expect("netns thread")
    })
}

/// A raw AF_PACKET socket bound to one interface: the independent end of each check.
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a socket receiving every frame of `interface` (in the caller's namespace).
    pub fn open(interface: &str) -> Self {
        let os = |what: &str| panic!("{what} on {interface}: {}", std::io::Error::last_os_error());
        let all = i32::from(ETH_P_ALL.to_be());
        // SAFETY: plain syscall with constant arguments; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, all) };
        if raw < 0 {
            os("socket(AF_PACKET)");
        }
        // SAFETY: `raw` is a new fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = std::ffi::CString::new(interface).expect("interface name");
        // SAFETY: `name` is a valid NUL-terminated string for the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            os("if_nametoindex");
        }
        // SAFETY: `sockaddr_ll` is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = u16::try_from(libc::AF_PACKET).expect("AF_PACKET");
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = i32::try_from(ifindex).expect("ifindex");
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast(),
                u32::try_from(size_of::<libc::sockaddr_ll>()).expect("size"),
            )
        };
        if ret != 0 {
            os("bind(AF_PACKET)");
        }
        let socket = Self { fd };
        socket.set_option(libc::SO_RCVBUFFORCE, &(32i32 << 20));
        socket.set_option(libc::SO_RCVTIMEO, &libc::timeval { tv_sec: 0, tv_usec: 20_000 });
        socket
    }

    fn set_option<T>(&self, name: i32, value: &T) {
        // SAFETY: `value` points to a live `T` and the length passed is its size.
        let ret = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                std::ptr::from_ref(value).cast(),
                u32::try_from(size_of::<T>()).expect("size"),
            )
        };
        assert_eq!(ret, 0, "setsockopt {name}: {}", std::io::Error::last_os_error());
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is valid for reads of its length.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            usize::try_from(sent).ok(),
            Some(frame.len()),
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// The next frame received (not one this host sent), or `None` after the receive timeout.
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // SAFETY: `sockaddr_ll` is plain old data; all-zero is a valid value.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = u32::try_from(size_of::<libc::sockaddr_ll>()).expect("size");
            // SAFETY: `buf` is valid for writes of its length; `from`/`from_len` describe a
            // writable sockaddr_ll.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    std::ptr::from_mut(&mut from).cast(),
                    &raw mut from_len,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => return None,
                    std::io::ErrorKind::Interrupted => continue,
                    _ => panic!("recvfrom: {e}"),
                }
            }
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            buf.truncate(usize::try_from(n).expect("length"));
            return Some(buf);
        }
    }
}

/// The VIP of the streaming tests' table.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);

/// A one-table binary with a UDP bind on [`VIP`] port 53 and `backends`, rows from `seed`.
pub fn vip_table(seed: &str, backends: &[&str]) -> Vec<u8> {
    let backends: Vec<String> =
        backends.iter().map(|b| format!(r#"{{"ip":"{b}","state":"active","healthy":true}}"#)).collect();
    let json = format!(
        r#"{{"tables":[{{"hash_key":"000102030405060708090a0b0c0d0e0f","seed":"{seed}",
        "binds":[{{"ip":"{VIP}","proto":"udp","port":53}}],"backends":[{}]}}]}}"#,
        backends.join(",")
    );
    forwarding_table::build_binary(&forwarding_table::config::parse(&json).expect("table").config)
}

/// Replaces `path` atomically (write beside it, rename), as build-config does.
pub fn publish(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A UDP frame from client `seq % 1024` (198.18.0.0/22) to [`VIP`]:53 carrying `seq`.
pub fn vip_frame(seq: u32) -> Vec<u8> {
    let client = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (seq % 1024));
    let mut f = vec![0u8; 14 + 20 + 8 + 4];
    f[..6].copy_from_slice(&DIRECTOR_MAC);
    f[6..12].copy_from_slice(&PEER_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    ipv4::Repr {
        src_addr: client,
        dst_addr: VIP,
        protocol: glb_wire::ip::Protocol::Udp,
        payload_len: 12,
        ttl: 64,
        ident: 0,
        dont_frag: false,
    }
    .emit(&mut f[14..34])
    .expect("header");
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    udp::emit(&mut f[34..], 40_000, 53, client, VIP).expect("datagram");
    f
}

/// (sequence number, outer destination, client) of a tunnel frame made from [`vip_frame`].
pub fn decode_vip_tunnel(frame: &[u8]) -> Option<(u32, Ipv4Addr, Ipv4Addr)> {
    let outer = ipv4::Packet::new_checked(frame.get(14..)?).ok()?;
    let tunnel = gue::Packet::new_checked(outer.payload().get(udp::HEADER_LEN..)?).ok()?;
    let inner = tunnel.payload();
    let client = ipv4::Packet::new_checked(inner).ok()?.src_addr();
    let seq = u32::from_be_bytes(inner.get(28..32)?.try_into().ok()?);
    Some((seq, outer.dst_addr(), client))
}

/// The primary `table` gives a [`vip_frame`] flow from `client`.
pub fn vip_primary(table: &LoadedTable, client: Ipv4Addr) -> Ipv4Addr {
    let flow = FlowKey { src: IpAddr::V4(client), dst: IpAddr::V4(VIP), src_port: 40_000, dst_port: 53 };
    table.file().table(0).expect("table").select(&flow, HashFields::default(), None).hops.as_slice()[0]
}
