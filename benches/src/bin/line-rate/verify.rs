//! The check of our director's output: the sink passes one frame in 1024 to the kernel, an
//! AF_PACKET socket on the generator's interface captures it ([`Capture`]), and each captured
//! tunnel is taken apart with `glb_wire`'s parsers and compared with what the forwarding table says (through
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

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

/// The capture on the generator's interface: a thread that takes every frame the sink passes
/// as it arrives (the socket's ring retires a block per millisecond however few frames it
/// holds, so it must be drained continuously) and, while a check is on, checks each one.
#[derive(Debug)]
pub struct Capture {
    checking: Arc<Mutex<Option<Checked>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

/// How long the capture thread sleeps when its ring is empty (the ring holds 128 ms).
const CAPTURE_IDLE: Duration = Duration::from_millis(5);

impl Capture {
    /// Opens the socket (in the generator's namespace) and starts the thread.
    ///
    /// # Errors
    /// The socket cannot be opened.
    pub fn start(topo: &Topology, check: GueCheck) -> Result<Self> {
        let interface = topo.gen_if.clone();
        let mut socket = in_netns(&topo.gen_ns, move || AfPacket::open(&interface, None))?
            .context("opening the capture socket on the generator's interface")?;
        let checking: Arc<Mutex<Option<Checked>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (Arc::clone(&checking), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("lr-capture".into())
            .spawn(move || -> Result<()> {
                let mut burst = Burst::new();
                while !stopped.load(Ordering::Relaxed) {
                    if socket.rx_burst(&mut burst)? == 0 {
                        std::thread::sleep(CAPTURE_IDLE);
                        continue;
                    }
                    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(checked) = state.as_mut() {
                        for frame in burst.frames() {
                            checked.record(check.check(frame.data()));
                        }
                    }
                }
                Ok(())
            })
            .context("starting the capture thread")?;
        Ok(Self { checking, stop, thread: Some(thread) })
    }

    /// Checks every captured frame from now on.
    pub fn begin(&self) {
        *self.checking.lock().unwrap_or_else(PoisonError::into_inner) = Some(Checked::default());
    }

    /// Stops checking; what was checked since [`Self::begin`].
    #[must_use]
    pub fn end(&self) -> Checked {
        self.checking.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Err(e)) => log::warn!("the capture stopped: {e:#}"),
                Err(_) => log::warn!("the capture thread panicked"),
                Ok(Ok(())) => {}
            }
        }
    }
}
