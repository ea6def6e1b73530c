//! The check of our director's output: the sink passes one frame in 1024 to the kernel, an
//! AF_PACKET socket on the generator's interface captures it, and each captured tunnel is taken
//! apart with `glb_wire`'s parsers and compared with what the forwarding table says (through
//! `forwarding_table`'s lookup, not the director's pipeline).

use crate::frames::{CLIENT_BASE, MARKER, VIP, VIP_PORT};
use crate::topology::{DUT_MAC, GEN_MAC, Topology, in_netns};
use anyhow::{Context, Result};
use forwarding_table::{FlowKey, HashFields, LoadedTable};
use glb_director::io::af_packet::AfPacket;
use glb_director::io::{Burst, PacketIo};
use glb_wire::ip::Protocol;
use glb_wire::{gue, ipv4, udp};
use std::net::{IpAddr, Ipv4Addr};

/// Sampled frames checked, and what was wrong with the bad ones.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Checked {
    /// Frames captured and checked.
    pub sampled: u64,
    /// Frames that passed every check.
    pub valid: u64,
    /// The first few problems.
    pub problems: Vec<String>,
}

impl Checked {
    fn record(&mut self, outcome: Result<(), String>) {
        self.sampled += 1;
        match outcome {
            Ok(()) => self.valid += 1,
            Err(problem) if self.problems.len() < 5 => self.problems.push(problem),
            Err(_) => {}
        }
    }
}

/// What a correct tunnel of one of our frames looks like.
#[derive(Debug)]
pub struct GueCheck {
    table: LoadedTable,
    tunnel_src: Ipv4Addr,
}

impl GueCheck {
    /// Checks against `table` (the director's) and its `outbound_src_ip`.
    #[must_use]
    pub fn new(table: LoadedTable, tunnel_src: Ipv4Addr) -> Self {
        Self { table, tunnel_src }
    }

    /// Whether `frame` is the director's correct GUE tunnel of a generated frame.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn check(&self, frame: &[u8]) -> Result<(), String> {
        let bad = |what: &str| format!("{what} in a {}-byte frame {}", frame.len(), hex_head(frame));
        if frame.len() < 14
            || frame[..6] != GEN_MAC
            || frame[6..12] != DUT_MAC
            || frame[12..14] != [0x08, 0x00]
        {
            return Err(bad("Ethernet header not gateway MAC <- port MAC, IPv4"));
        }
        let outer = ipv4::Packet::new_checked(&frame[14..]).map_err(|_| bad("outer IPv4 header invalid"))?;
        if !outer.verify_checksum() || usize::from(outer.total_len()) != frame.len() - 14 {
            return Err(bad("outer IPv4 checksum or length wrong"));
        }
        if outer.src_addr() != self.tunnel_src || outer.protocol() != Protocol::Udp {
            return Err(bad("outer source is not outbound_src_ip, or not UDP"));
        }
        let datagram = udp::Packet::new_checked(outer.payload()).map_err(|_| bad("outer UDP invalid"))?;
        if datagram.dst_port() != gue::PORT || datagram.src_port() < 0x8000 {
            return Err(bad("UDP ports are not (0x8000 | hash, 19523)"));
        }
        if usize::from(datagram.len()) != outer.payload().len()
            || !datagram.verify_checksum(outer.src_addr(), outer.dst_addr())
        {
            return Err(bad("outer UDP length or checksum wrong"));
        }
        let tunnel = gue::Packet::new_checked(datagram.payload()).map_err(|_| bad("GUE header invalid"))?;
        if tunnel.protocol() != Protocol::Ipv4 || tunnel.next_hop() != 0 {
            return Err(bad("GUE protocol is not IPv4 or next hop is not 0"));
        }
        let inner = ipv4::Packet::new_checked(tunnel.payload()).map_err(|_| bad("inner IPv4 invalid"))?;
        let client = inner.src_addr();
        if !inner.verify_checksum()
            || inner.dst_addr() != VIP
            || u32::from(client) >> 16 != u32::from(CLIENT_BASE) >> 16
            || usize::from(inner.total_len()) != tunnel.payload().len()
        {
            return Err(bad("inner packet is not a generated one (checksum, VIP, client, length)"));
        }
        let inner_udp = udp::Packet::new_checked(inner.payload()).map_err(|_| bad("inner UDP invalid"))?;
        let marker_len = MARKER.len().min(inner_udp.payload().len());
        if inner_udp.dst_port() != VIP_PORT || inner_udp.payload()[..marker_len] != MARKER[..marker_len] {
            return Err(bad("inner datagram is not a generated one"));
        }
        let flow = FlowKey {
            src: IpAddr::V4(client),
            dst: IpAddr::V4(VIP),
            src_port: inner_udp.src_port(),
            dst_port: VIP_PORT,
        };
        let table = self.table.file().table(0).ok_or("the table file has no table")?;
        let selection = table.select(&flow, HashFields::default(), None);
        let hops = selection.hops.as_slice();
        let listed: Vec<Ipv4Addr> =
            (0..usize::from(tunnel.hop_count())).filter_map(|i| tunnel.hop(i)).collect();
        if outer.dst_addr() != hops[0] || listed != hops[1..] {
            return Err(bad(&format!(
                "client {client}:{}: tunnel to {} via {listed:?}, the table says {hops:?}",
                inner_udp.src_port(),
                outer.dst_addr()
            )));
        }
        Ok(())
    }
}

fn hex_head(frame: &[u8]) -> String {
    frame.iter().take(64).map(|b| format!("{b:02x}")).collect()
}

/// The capture on the generator's interface (frames the sink passes).
#[derive(Debug)]
pub struct Capture {
    socket: AfPacket,
    burst: Burst,
}

impl Capture {
    /// Opens it (in the generator's namespace).
    ///
    /// # Errors
    /// The socket cannot be opened.
    pub fn open(topo: &Topology) -> Result<Self> {
        let interface = topo.gen_if.clone();
        let socket = in_netns(&topo.gen_ns, move || AfPacket::open(&interface, None))?
            .context("opening the capture socket on the generator's interface")?;
        Ok(Self { socket, burst: Burst::new() })
    }

    /// Takes every captured frame; checks each with `check` when given (else discards it).
    ///
    /// # Errors
    /// The socket failed.
    pub fn drain(&mut self, check: Option<&GueCheck>, checked: &mut Checked) -> Result<()> {
        while self.socket.rx_burst(&mut self.burst)? > 0 {
            if let Some(check) = check {
                for frame in self.burst.frames() {
                    checked.record(check.check(frame.data()));
                }
            }
        }
        Ok(())
    }
}
