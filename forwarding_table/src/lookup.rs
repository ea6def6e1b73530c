//! Flow → table, row, primary, secondary and hops (glb-director.md §7.1 and §7.3).
//!
//! The director runs this per packet, so nothing here allocates: the hash input is assembled on
//! the stack and the hop list is a fixed array. `glb-director-cli lookup` calls the same functions,
//! so the CLI's answer is the director's answer.

use crate::binary::TableView;
use crate::hash::{HashInput, ShortInput, siphash_short};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// Which flow fields feed the packet hash (`hash_fields` / `alt_hash_fields` in director.conf).
/// Never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashFields {
    bits: u8,
}

impl HashFields {
    const SRC_ADDR: u8 = 1;
    const DST_ADDR: u8 = 2;
    const SRC_PORT: u8 = 4;
    const DST_PORT: u8 = 8;

    /// The chosen fields; `None` when none is chosen (GLB: "must contain at least 1 field").
    #[must_use]
    pub fn new(src_addr: bool, dst_addr: bool, src_port: bool, dst_port: bool) -> Option<Self> {
        let pick = |on: bool, bit: u8| if on { bit } else { 0 };
        let bits = pick(src_addr, Self::SRC_ADDR)
            | pick(dst_addr, Self::DST_ADDR)
            | pick(src_port, Self::SRC_PORT)
            | pick(dst_port, Self::DST_PORT);
        (bits != 0).then_some(Self { bits })
    }

    /// Whether the source address is hashed.
    #[must_use]
    pub fn src_addr(self) -> bool {
        self.bits & Self::SRC_ADDR != 0
    }

    /// Whether the destination address is hashed.
    #[must_use]
    pub fn dst_addr(self) -> bool {
        self.bits & Self::DST_ADDR != 0
    }

    /// Whether the source port is hashed.
    #[must_use]
    pub fn src_port(self) -> bool {
        self.bits & Self::SRC_PORT != 0
    }

    /// Whether the destination port is hashed.
    #[must_use]
    pub fn dst_port(self) -> bool {
        self.bits & Self::DST_PORT != 0
    }
}

impl Default for HashFields {
    /// GLB's default: the source address only.
    fn default() -> Self {
        Self { bits: Self::SRC_ADDR }
    }
}

impl fmt::Display for HashFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.src_addr(), "src_addr"),
            (self.dst_addr(), "dst_addr"),
            (self.src_port(), "src_port"),
            (self.dst_port(), "dst_port"),
        ];
        let mut sep = "";
        for (_, name) in names.iter().filter(|(on, _)| *on) {
            write!(f, "{sep}{name}")?;
            sep = "+";
        }
        Ok(())
    }
}

/// The fields of a flow that hashing can use, in the client → VIP direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// Client address.
    pub src: IpAddr,
    /// VIP.
    pub dst: IpAddr,
    /// Client port (0 where the protocol has none).
    pub src_port: u16,
    /// VIP port (0 where the protocol has none).
    pub dst_port: u16,
}

impl FlowKey {
    /// SipHash-2-4 under `key` of the chosen fields, in GLB's fixed order
    /// src_addr ‖ dst_addr ‖ src_port ‖ dst_port, network byte order (at most 36 bytes).
    #[must_use]
    pub fn hash(&self, key: &[u8; 16], fields: HashFields) -> u64 {
        siphash_short(key, &self.hash_input(fields))
    }

    /// The bytes [`Self::hash`] hashes (see [`write_hash_input`]).
    #[must_use]
    pub fn hash_input(&self, fields: HashFields) -> ShortInput {
        let (src, dst) = (octets(self.src), octets(self.dst));
        let mut input = ShortInput::new();
        write_hash_input(&src.0[..src.1], &dst.0[..dst.1], self.src_port, self.dst_port, fields, &mut input);
        input
    }
}

fn octets(addr: IpAddr) -> ([u8; 16], usize) {
    let mut bytes = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            bytes[..4].copy_from_slice(&a.octets());
            (bytes, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// The packet-hash input of a flow given as raw fields (`src` and `dst`: 4 or 16 address bytes,
/// network order), written into `input` (cleared first): the chosen fields in GLB's fixed order
/// src_addr ‖ dst_addr ‖ src_port ‖ dst_port. [`FlowKey::hash`] hashes exactly this; the
/// director calls it directly on the fields it keeps as integers. A [`ShortInput`] holds any
/// flow's input; a [`crate::hash::SmallInput`] one with 4-byte addresses.
#[inline]
pub fn write_hash_input(
    src: &[u8],
    dst: &[u8],
    src_port: u16,
    dst_port: u16,
    fields: HashFields,
    input: &mut impl HashInput,
) {
    input.clear();
    // At most 16 + 16 + 2 + 2 = SHORT_MAX bytes (4 + 4 + 2 + 2 for IPv4): every push fits.
    if fields.src_addr() {
        input.push(src);
    }
    if fields.dst_addr() {
        input.push(dst);
    }
    if fields.src_port() {
        input.push(&src_port.to_be_bytes());
    }
    if fields.dst_port() {
        input.push(&dst_port.to_be_bytes());
    }
}

/// Up to four tunnel hops: [primary, secondary] or, with `alt_hash_fields`,
/// [primary, secondary, alt primary, alt secondary] (duplicates kept, as GLB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hops {
    addrs: [Ipv4Addr; 4],
    len: usize,
}

impl Hops {
    /// The hops in order; the first is the outer destination.
    #[must_use]
    pub fn as_slice(&self) -> &[Ipv4Addr] {
        &self.addrs[..self.len]
    }
}

/// Where a flow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Table index.
    pub table: usize,
    /// The main packet hash (feeds the row and the outer UDP source port).
    pub pkt_hash: u64,
    /// `pkt_hash & 0xffff`.
    pub row: u16,
    /// Primary backend slot.
    pub primary: usize,
    /// Secondary backend slot.
    pub secondary: usize,
    /// Tunnel hops.
    pub hops: Hops,
}

impl<'a> TableView<'a> {
    /// Hashes `flow` and reads its row (and, with `alt`, the migration row).
    #[must_use]
    pub fn select(&self, flow: &FlowKey, fields: HashFields, alt: Option<HashFields>) -> Selection {
        let pkt_hash = flow.hash(self.hash_key(), fields);
        self.select_hashed(pkt_hash, alt.map(|alt| flow.hash(self.hash_key(), alt)))
    }

    /// The row slot `pkt_hash` selects (what [`Self::select_hashed`] reads), e.g. to prefetch.
    #[must_use]
    pub fn row_slot_hashed(&self, pkt_hash: u64) -> &'a crate::binary::layout::RowSlot {
        self.row_slot(row_of(pkt_hash))
    }

    /// [`Self::select`] for a flow already hashed under this table's key: `pkt_hash` with the
    /// main fields, `alt_hash` with the migration fields if configured.
    #[must_use]
    pub fn select_hashed(&self, pkt_hash: u64, alt_hash: Option<u64>) -> Selection {
        let row = row_of(pkt_hash);
        let (primary, secondary) = self.row(row);
        let mut hops = Hops { addrs: [Ipv4Addr::UNSPECIFIED; 4], len: 2 };
        hops.addrs[0] = self.hop(primary);
        hops.addrs[1] = self.hop(secondary);
        if let Some(alt_hash) = alt_hash {
            let (alt_primary, alt_secondary) = self.row(row_of(alt_hash));
            hops.addrs[2] = self.hop(alt_primary);
            hops.addrs[3] = self.hop(alt_secondary);
            hops.len = 4;
        }
        Selection { table: self.index(), pkt_hash, row, primary, secondary, hops }
    }
}

fn row_of(pkt_hash: u64) -> u16 {
    (pkt_hash & 0xffff) as u16
}
