//! Test support shared by the director's privileged tests: two network namespaces joined by a
//! veth pair (removed on drop, also on panic) and the streaming tests' table and frames. The
//! generic parts (namespaces, `ip`, packet sockets) are the workspace's `testkit`.
#![allow(dead_code, reason = "each test binary uses a different part of the support module")]

use forwarding_table::{FlowKey, HashFields, LoadedTable};
use glb_wire::{gue, ipv4, udp};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
pub use testkit::{PacketSocket, in_netns, ip};

/// MAC of the director's end.
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0d, 0x01];
/// MAC of the peer's end.
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0e, 0x01];
/// How long collection loops wait.
pub const WAIT: Duration = Duration::from_secs(10);

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

/// The VIP of the streaming tests' table.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);

/// Two generations of the VIP table for reload tests: every backend (and the hash key) differs,
/// so each delivered frame says which generation forwarded it.
pub fn vip_table_generations() -> (Vec<u8>, Vec<u8>) {
    (
        vip_table("00000000000000000000000000000001", &["198.51.100.1", "198.51.100.2", "198.51.100.3"]),
        vip_table("00000000000000000000000000000002", &["203.0.113.1", "203.0.113.2", "203.0.113.3"]),
    )
}

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
