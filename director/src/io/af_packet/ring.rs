//! TPACKET_V3 ring layout and walking, in safe code over byte slices.
//!
//! The socket module lends the mapped ring through [`BlockRing`] (RX) and [`FrameRing`] (TX);
//! everything that computes an offset or trusts a length the kernel wrote lives here, is bounds
//! checked, and is unit-tested on a fake ring in a `Vec` (so it runs under Miri).
//!
//! RX (block-based): the kernel fills a block with packets, each a `tpacket3_hdr` followed (at
//! `tp_mac`) by `tp_snaplen` bytes, linked by `tp_next_offset`, then hands the whole block over
//! by setting `TP_STATUS_USER` in its `block_status`. We copy the packets out and give the block
//! back (`TP_STATUS_KERNEL`). A burst may end in the middle of a block: the [`RxWalker`] keeps its
//! place and gives the block back only once every packet has been read.
//!
//! TX (frame-based, as V2): fixed-size slots, each a `tpacket3_hdr` with `tp_len` and the frame at
//! [`TX_DATA_OFFSET`]; setting `TP_STATUS_SEND_REQUEST` hands a slot to the kernel, which sends it
//! on the next `sendto` kick and sets the slot back to `TP_STATUS_AVAILABLE`.

#![forbid(unsafe_code)]

use crate::io::Burst;
use core::mem::{offset_of, size_of};
use libc::{tpacket_block_desc, tpacket_hdr_v1, tpacket_hdr_variant1, tpacket3_hdr};

/// `block_status` in a block descriptor.
pub(super) const BLOCK_STATUS: usize =
    offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS: usize = offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_PKT: usize =
    offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, offset_to_first_pkt);
/// Size of a block descriptor.
#[cfg(test)]
const BLOCK_DESC_LEN: usize = size_of::<tpacket_block_desc>();

const PKT_NEXT: usize = offset_of!(tpacket3_hdr, tp_next_offset);
const PKT_SNAPLEN: usize = offset_of!(tpacket3_hdr, tp_snaplen);
const PKT_LEN: usize = offset_of!(tpacket3_hdr, tp_len);
/// `tp_status` of a packet (RX) or slot (TX).
pub(super) const PKT_STATUS: usize = offset_of!(tpacket3_hdr, tp_status);
const PKT_MAC: usize = offset_of!(tpacket3_hdr, tp_mac);
const PKT_VLAN_TCI: usize = offset_of!(tpacket3_hdr, hv1) + offset_of!(tpacket_hdr_variant1, tp_vlan_tci);
const PKT_VLAN_TPID: usize = offset_of!(tpacket3_hdr, hv1) + offset_of!(tpacket_hdr_variant1, tp_vlan_tpid);
/// Size of a packet header.
pub(super) const PKT_HDR_LEN: usize = size_of::<tpacket3_hdr>();

/// Where a TX slot's frame starts without `PACKET_TX_HAS_OFF`: the kernel's
/// `tp_hdrlen - sizeof(struct sockaddr_ll)`, i.e. `TPACKET_ALIGN(sizeof(tpacket3_hdr))`.
pub(super) const TX_DATA_OFFSET: usize = libc::TPACKET3_HDRLEN - size_of::<libc::sockaddr_ll>();

const ETH_ADDRS: usize = 12;
const VLAN_TAG_LEN: usize = 4;
const ETH_P_8021Q: u16 = 0x8100;

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(raw.try_into().ok()?))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let raw = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(raw.try_into().ok()?))
}

fn write_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

/// The 802.1Q tag the NIC stripped (`TP_STATUS_VLAN_VALID`), to put back in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct VlanTag {
    tpid: u16,
    tci: u16,
}

/// One received packet: where its bytes are in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RxPacket {
    start: usize,
    snaplen: usize,
    vlan: Option<VlanTag>,
}

impl RxPacket {
    /// Copies the frame into `dst` as it was on the wire (a stripped VLAN tag re-inserted after the
    /// MAC addresses); returns the bytes written, cut to `dst`.
    pub(super) fn copy_to(&self, block: &[u8], dst: &mut [u8]) -> usize {
        let src = &block[self.start..self.start + self.snaplen];
        let Some(tag) = self.vlan.filter(|_| src.len() >= ETH_ADDRS) else {
            let len = src.len().min(dst.len());
            dst[..len].copy_from_slice(&src[..len]);
            return len;
        };
        let mut tagged = [0u8; ETH_ADDRS + VLAN_TAG_LEN];
        tagged[..ETH_ADDRS].copy_from_slice(&src[..ETH_ADDRS]);
        tagged[ETH_ADDRS..ETH_ADDRS + 2].copy_from_slice(&tag.tpid.to_be_bytes());
        tagged[ETH_ADDRS + 2..].copy_from_slice(&tag.tci.to_be_bytes());
        let head = tagged.len().min(dst.len());
        dst[..head].copy_from_slice(&tagged[..head]);
        let rest = &src[ETH_ADDRS..];
        let tail = rest.len().min(dst.len() - head);
        dst[head..head + tail].copy_from_slice(&rest[..tail]);
        head + tail
    }
}

/// Position in a block handed to us: packets left and the offset of the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BlockCursor {
    remaining: u32,
    offset: usize,
}

impl BlockCursor {
    /// Starts at the first packet of `block` (no packets if the descriptor is malformed).
    pub(super) fn new(block: &[u8]) -> Self {
        let (Some(remaining), Some(first)) =
            (read_u32(block, BLOCK_NUM_PKTS), read_u32(block, BLOCK_FIRST_PKT))
        else {
            return Self { remaining: 0, offset: 0 };
        };
        Self { remaining, offset: first as usize }
    }

    /// Whether every packet has been read.
    pub(super) fn done(&self) -> bool {
        self.remaining == 0
    }

    /// The next packet, or `None` when the block is exhausted or a header or length is out of
    /// bounds (the rest of the block is then skipped: the kernel never writes such a block).
    pub(super) fn next(&mut self, block: &[u8]) -> Option<RxPacket> {
        if self.remaining == 0 {
            return None;
        }
        let packet = Self::parse(block, self.offset);
        match packet {
            Some((packet, next)) if self.remaining == 1 || next != 0 => {
                self.remaining -= 1;
                self.offset += next;
                Some(packet)
            }
            _ => {
                self.remaining = 0;
                None
            }
        }
    }

    fn parse(block: &[u8], at: usize) -> Option<(RxPacket, usize)> {
        let header = block.get(at..at.checked_add(PKT_HDR_LEN)?)?;
        let next = read_u32(header, PKT_NEXT)? as usize;
        let snaplen = read_u32(header, PKT_SNAPLEN)? as usize;
        let status = read_u32(header, PKT_STATUS)?;
        let start = at + usize::from(read_u16(header, PKT_MAC)?);
        if start.checked_add(snaplen)? > block.len() || at.checked_add(next)? > block.len() {
            return None;
        }
        let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                read_u16(header, PKT_VLAN_TPID).unwrap_or(ETH_P_8021Q)
            } else {
                ETH_P_8021Q
            };
            // tp_vlan_tci is a u32 holding the 16-bit TCI.
            let tci = u16::try_from(read_u32(header, PKT_VLAN_TCI).unwrap_or(0) & 0xffff).unwrap_or(0);
            VlanTag { tpid, tci }
        });
        Some((RxPacket { start, snaplen, vlan }, next))
    }

    /// Wire length the kernel saw (may exceed the captured bytes); for tests and diagnostics.
    #[cfg(test)]
    fn wire_len(block: &[u8], at: usize) -> Option<u32> {
        read_u32(block, at + PKT_LEN)
    }
}

/// The RX blocks, as the socket module lends them.
pub(super) trait BlockRing {
    /// Number of blocks.
    fn blocks(&self) -> usize;
    /// Whether block `index` has been handed to user space (an acquire load of its status).
    fn is_ours(&self, index: usize) -> bool;
    /// Runs `f` over block `index`; only called after [`Self::is_ours`] returned true and before
    /// [`Self::release`].
    fn with_block<R>(&self, index: usize, f: impl FnOnce(&[u8]) -> R) -> R;
    /// Hands block `index` back to the kernel (a release store of `TP_STATUS_KERNEL`).
    fn release(&self, index: usize);
}

/// Where the RX side stands: the block it reads next and, if it is part-way through one, where.
#[derive(Debug, Default)]
pub(super) struct RxWalker {
    block: usize,
    cursor: Option<BlockCursor>,
}

impl RxWalker {
    /// Clears `burst` and copies packets into it until it is full or no block is ready; returns
    /// how many. Blocks are given back as soon as their last packet is copied.
    pub(super) fn fill(&mut self, ring: &impl BlockRing, burst: &mut Burst) -> usize {
        burst.clear();
        // At most one pass over the ring: a run of empty blocks cannot spin forever.
        let mut visited = 0;
        while !burst.is_full() && visited <= ring.blocks() {
            let cursor = match self.cursor {
                Some(cursor) => cursor,
                None if ring.is_ours(self.block) => {
                    visited += 1;
                    ring.with_block(self.block, BlockCursor::new)
                }
                None => break,
            };
            let cursor = ring.with_block(self.block, |block| {
                let mut cursor = cursor;
                while let Some(slot) = burst.next_slot() {
                    let Some(packet) = cursor.next(block) else { break };
                    let len = packet.copy_to(block, slot);
                    burst.commit(len);
                }
                cursor
            });
            if cursor.done() {
                ring.release(self.block);
                self.block = next_index(self.block, ring.blocks());
                self.cursor = None;
            } else {
                self.cursor = Some(cursor);
            }
        }
        burst.len()
    }
}

/// `index + 1` modulo `count` (`count` > 0).
pub(super) fn next_index(index: usize, count: usize) -> usize {
    if index + 1 >= count { 0 } else { index + 1 }
}

/// Geometry of a frame-based (TX) ring: frames never straddle blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameLayout {
    /// Bytes per block (a multiple of the page size).
    pub block_size: usize,
    /// Bytes per frame slot (a multiple of 16, at most `block_size`).
    pub frame_size: usize,
    /// Number of blocks.
    pub block_nr: usize,
}

impl FrameLayout {
    /// Frames in one block.
    pub(super) fn frames_per_block(&self) -> usize {
        self.block_size / self.frame_size
    }

    /// Total frame slots.
    pub(super) fn frames(&self) -> usize {
        self.frames_per_block() * self.block_nr
    }

    /// Offset of slot `index` from the start of the ring.
    pub(super) fn offset(&self, index: usize) -> usize {
        let per_block = self.frames_per_block();
        (index / per_block) * self.block_size + (index % per_block) * self.frame_size
    }

    /// Ring size in bytes.
    pub(super) fn len(&self) -> usize {
        self.block_size * self.block_nr
    }

    /// Largest frame a slot holds.
    pub(super) fn capacity(&self) -> usize {
        self.frame_size.saturating_sub(TX_DATA_OFFSET)
    }
}

/// Whether a TX slot with this status may be written: neither queued nor in flight (timestamp
/// bits and `TP_STATUS_WRONG_FORMAT` do not hold a slot).
pub(super) fn tx_slot_free(status: u32) -> bool {
    status & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) == 0
}

/// Fills a TX slot's header and data (everything but `tp_status`); false if `frame` does not fit.
pub(super) fn write_tx_slot(slot: &mut [u8], frame: &[u8]) -> bool {
    let Ok(len) = u32::try_from(frame.len()) else { return false };
    if TX_DATA_OFFSET + frame.len() > slot.len() {
        return false;
    }
    write_u32(slot, PKT_NEXT, 0);
    write_u32(slot, PKT_LEN, len);
    write_u32(slot, PKT_SNAPLEN, len);
    slot[TX_DATA_OFFSET..TX_DATA_OFFSET + frame.len()].copy_from_slice(frame);
    true
}

/// The TX slots, as the socket module lends them.
pub(super) trait FrameRing {
    /// The ring's geometry.
    fn layout(&self) -> FrameLayout;
    /// Whether slot `index` may be written (an acquire load of its status).
    fn is_free(&self, index: usize) -> bool;
    /// Runs `f` over slot `index`; only called after [`Self::is_free`] returned true.
    fn with_slot<R>(&mut self, index: usize, f: impl FnOnce(&mut [u8]) -> R) -> R;
    /// Hands slot `index` to the kernel (a release store of `TP_STATUS_SEND_REQUEST`).
    fn submit(&mut self, index: usize);
}

/// Outcome of [`TxWalker::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Push {
    /// Copied into a slot and handed to the kernel.
    Queued,
    /// The next slot is still the kernel's.
    Full,
    /// Longer than a slot holds.
    TooLong,
}

/// The TX side: the next slot to fill and how many slots await a kick.
#[derive(Debug, Default)]
pub(super) struct TxWalker {
    head: usize,
    /// Slots submitted since the last successful kick.
    pub pending: usize,
}

impl TxWalker {
    /// Copies `frame` into the next slot and submits it.
    pub(super) fn push(&mut self, ring: &mut impl FrameRing, frame: &[u8]) -> Push {
        let layout = ring.layout();
        if frame.len() > layout.capacity() {
            return Push::TooLong;
        }
        if !ring.is_free(self.head) {
            return Push::Full;
        }
        let written = ring.with_slot(self.head, |slot| write_tx_slot(slot, frame));
        if !written {
            return Push::TooLong;
        }
        ring.submit(self.head);
        self.head = next_index(self.head, layout.frames());
        self.pending += 1;
        Push::Queued
    }
}

#[cfg(test)]
#[expect(clippy::cast_possible_truncation, reason = "fake-ring sizes and offsets are small by construction")]
mod tests {
    use super::*;
    use crate::io::HEADROOM;
    use std::cell::{Cell, RefCell};

    #[test]
    fn layout_matches_the_kernel_headers() {
        // linux/if_packet.h on 64-bit and 32-bit alike.
        assert_eq!(BLOCK_STATUS, 8);
        assert_eq!(BLOCK_NUM_PKTS, 12);
        assert_eq!(BLOCK_FIRST_PKT, 16);
        assert_eq!(BLOCK_DESC_LEN, 48);
        assert_eq!((PKT_NEXT, PKT_SNAPLEN, PKT_LEN, PKT_STATUS, PKT_MAC), (0, 12, 16, 20, 24));
        assert_eq!((PKT_VLAN_TCI, PKT_VLAN_TPID, PKT_HDR_LEN), (32, 36, 48));
        assert_eq!(TX_DATA_OFFSET, 48);
    }

    /// A frame and the VLAN tag (TPID, TCI) the "NIC" stripped from it.
    type FakeFrame<'a> = (&'a [u8], Option<(u16, u16)>);

    /// A block as the kernel writes it: descriptor, then packets with 16-byte aligned headers and
    /// the frame at `tp_mac` (here 66, as for a socket without `PACKET_RESERVE` on Ethernet).
    fn fake_block(size: usize, frames: &[FakeFrame<'_>]) -> Vec<u8> {
        let mut block = vec![0u8; size];
        write_u32(&mut block, BLOCK_NUM_PKTS, frames.len() as u32);
        write_u32(&mut block, BLOCK_FIRST_PKT, BLOCK_DESC_LEN as u32);
        let mut at = BLOCK_DESC_LEN;
        for (i, (frame, vlan)) in frames.iter().enumerate() {
            let mac = 66usize;
            let next = (mac + frame.len()).next_multiple_of(16);
            let last = i + 1 == frames.len();
            write_u32(&mut block, at + PKT_NEXT, if last { 0 } else { next as u32 });
            write_u32(&mut block, at + PKT_SNAPLEN, frame.len() as u32);
            write_u32(&mut block, at + PKT_LEN, frame.len() as u32);
            block[at + PKT_MAC..at + PKT_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            let mut status = libc::TP_STATUS_USER;
            if let Some((tpid, tci)) = vlan {
                status |= libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
                write_u32(&mut block, at + PKT_VLAN_TCI, u32::from(*tci));
                block[at + PKT_VLAN_TPID..at + PKT_VLAN_TPID + 2].copy_from_slice(&tpid.to_ne_bytes());
            }
            write_u32(&mut block, at + PKT_STATUS, status);
            block[at + mac..at + mac + frame.len()].copy_from_slice(frame);
            at += next;
        }
        block
    }

    fn frame(tag: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn cursor_walks_a_block_and_reinserts_vlan_tags() {
        let (a, b, c) = (frame(1, 60), frame(2, 1514), frame(3, 64));
        let block = fake_block(4096, &[(&a, None), (&b, Some((0x88a8, 0x0123))), (&c, None)]);
        let mut cursor = BlockCursor::new(&block);
        let mut out = Vec::new();
        while let Some(packet) = cursor.next(&block) {
            let mut dst = vec![0u8; 2048];
            let len = packet.copy_to(&block, &mut dst);
            dst.truncate(len);
            out.push(dst);
        }
        assert!(cursor.done());
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], a);
        let mut tagged = b[..12].to_vec();
        tagged.extend_from_slice(&[0x88, 0xa8, 0x01, 0x23]);
        tagged.extend_from_slice(&b[12..]);
        assert_eq!(out[1], tagged);
        assert_eq!(out[2], c);
        assert_eq!(BlockCursor::wire_len(&block, BLOCK_DESC_LEN), Some(60));
    }

    #[test]
    fn copy_is_cut_to_the_destination() {
        let a = frame(7, 100);
        let block = fake_block(4096, &[(&a, Some((0x8100, 5)))]);
        let packet = BlockCursor::new(&block).next(&block).expect("one packet");
        for cap in [0, 5, 12, 14, 16, 50] {
            let mut dst = vec![0u8; cap];
            assert_eq!(packet.copy_to(&block, &mut dst), cap, "cap {cap}");
        }
    }

    #[test]
    fn malformed_blocks_end_the_walk_without_panicking() {
        let a = frame(1, 60);
        let good = fake_block(512, &[(&a, None), (&a, None)]);
        let first = BLOCK_DESC_LEN;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("snaplen past the end", {
                let mut b = good.clone();
                write_u32(&mut b, first + PKT_SNAPLEN, 10_000);
                b
            }),
            ("next offset past the end", {
                let mut b = good.clone();
                write_u32(&mut b, first + PKT_NEXT, 10_000);
                b
            }),
            ("zero next offset before the last packet", {
                let mut b = good.clone();
                write_u32(&mut b, first + PKT_NEXT, 0);
                b
            }),
            ("first packet past the end", {
                let mut b = good.clone();
                write_u32(&mut b, BLOCK_FIRST_PKT, 500);
                b
            }),
            ("more packets than written", {
                let mut b = good.clone();
                write_u32(&mut b, BLOCK_NUM_PKTS, 1_000_000);
                b
            }),
            ("descriptor cut", good[..10].to_vec()),
        ];
        for (what, block) in cases {
            let mut cursor = BlockCursor::new(&block);
            let mut seen = 0;
            while cursor.next(&block).is_some() {
                seen += 1;
                assert!(seen <= 3, "{what}: walk did not end");
            }
            assert!(cursor.done(), "{what}");
        }
    }

    /// Blocks in a `Vec`, with a status word per block as the kernel would keep it.
    struct FakeRx {
        blocks: Vec<Vec<u8>>,
        status: Vec<Cell<u32>>,
        released: RefCell<Vec<usize>>,
    }

    impl FakeRx {
        fn new(blocks: Vec<Vec<u8>>) -> Self {
            let status = blocks.iter().map(|_| Cell::new(libc::TP_STATUS_USER)).collect();
            Self { blocks, status, released: RefCell::default() }
        }
    }

    impl BlockRing for FakeRx {
        fn blocks(&self) -> usize {
            self.blocks.len()
        }
        fn is_ours(&self, index: usize) -> bool {
            self.status[index].get() & libc::TP_STATUS_USER != 0
        }
        fn with_block<R>(&self, index: usize, f: impl FnOnce(&[u8]) -> R) -> R {
            assert!(self.is_ours(index), "read of a kernel-owned block");
            f(&self.blocks[index])
        }
        fn release(&self, index: usize) {
            assert!(self.is_ours(index), "double release");
            self.status[index].set(libc::TP_STATUS_KERNEL);
            self.released.borrow_mut().push(index);
        }
    }

    fn burst_frames(burst: &mut Burst) -> Vec<Vec<u8>> {
        burst.frames().map(|f| f.data().to_vec()).collect()
    }

    #[test]
    fn walker_spans_bursts_and_blocks_and_releases_in_order() {
        let frames: Vec<Vec<u8>> = (0..70u8).map(|i| frame(i, 60 + usize::from(i))).collect();
        let refs = |r: std::ops::Range<usize>| -> Vec<FakeFrame<'_>> {
            frames[r].iter().map(|f| (f.as_slice(), None)).collect()
        };
        // 20 + 30 + 0 (an empty, timed-out block) + 20 packets over four blocks.
        let ring = FakeRx::new(vec![
            fake_block(8192, &refs(0..20)),
            fake_block(8192, &refs(20..50)),
            fake_block(8192, &[]),
            fake_block(8192, &refs(50..70)),
        ]);
        let mut walker = RxWalker::default();
        let mut burst = Burst::new();
        let mut got = Vec::new();
        assert_eq!(walker.fill(&ring, &mut burst), 32);
        got.extend(burst_frames(&mut burst));
        assert_eq!(*ring.released.borrow(), [0], "block 1 is part-read and kept");
        assert_eq!(walker.fill(&ring, &mut burst), 32);
        got.extend(burst_frames(&mut burst));
        assert_eq!(walker.fill(&ring, &mut burst), 6);
        got.extend(burst_frames(&mut burst));
        assert_eq!(got, frames);
        assert_eq!(*ring.released.borrow(), [0, 1, 2, 3]);
        assert_eq!(walker.fill(&ring, &mut burst), 0, "every block is the kernel's again");
        // The kernel fills block 0 again: the walker wrapped around to it.
        ring.status[0].set(libc::TP_STATUS_USER);
        assert_eq!(walker.fill(&ring, &mut burst), 20);
        assert_eq!(burst.frames().next().map(|f| f.data().to_vec()), Some(frames[0].clone()));
        assert_eq!(burst.frames().next().map(|f| f.start()), Some(HEADROOM));
    }

    #[test]
    fn walker_stops_at_a_kernel_block_and_survives_all_empty_blocks() {
        let ring = FakeRx::new(vec![fake_block(4096, &[]), fake_block(4096, &[]), fake_block(4096, &[])]);
        let mut walker = RxWalker::default();
        let mut burst = Burst::new();
        assert_eq!(walker.fill(&ring, &mut burst), 0);
        assert_eq!(*ring.released.borrow(), [0, 1, 2]);
        let a = frame(9, 60);
        let ring = FakeRx::new(vec![fake_block(4096, &[(&a, None)]), fake_block(4096, &[(&a, None)])]);
        ring.status[1].set(libc::TP_STATUS_KERNEL);
        let mut walker = RxWalker::default();
        assert_eq!(walker.fill(&ring, &mut burst), 1);
        assert_eq!(walker.fill(&ring, &mut burst), 0);
    }

    #[test]
    fn frame_layout_offsets() {
        let layout = FrameLayout { block_size: 8192, frame_size: 3072, block_nr: 3 };
        assert_eq!(layout.frames_per_block(), 2);
        assert_eq!(layout.frames(), 6);
        let offsets: Vec<usize> = (0..6).map(|i| layout.offset(i)).collect();
        assert_eq!(offsets, [0, 3072, 8192, 11264, 16384, 19456]);
        assert!(offsets.iter().all(|o| o + layout.frame_size <= layout.len()));
        assert_eq!(layout.capacity(), 3072 - 48);
        assert_eq!((next_index(4, 6), next_index(5, 6), next_index(0, 1)), (5, 0, 0));
    }

    #[test]
    fn tx_slot_status() {
        assert!(tx_slot_free(libc::TP_STATUS_AVAILABLE));
        assert!(tx_slot_free(libc::TP_STATUS_WRONG_FORMAT));
        assert!(tx_slot_free(libc::TP_STATUS_TS_SOFTWARE));
        assert!(!tx_slot_free(libc::TP_STATUS_SEND_REQUEST));
        assert!(!tx_slot_free(libc::TP_STATUS_SENDING));
    }

    /// Slots in a `Vec`, with a status word per slot; `complete` plays the kernel's sending.
    struct FakeTx {
        layout: FrameLayout,
        mem: Vec<u8>,
        status: Vec<u32>,
    }

    impl FakeTx {
        fn new(layout: FrameLayout) -> Self {
            Self { layout, mem: vec![0; layout.len()], status: vec![0; layout.frames()] }
        }
        /// Sends every submitted slot in ring order from `from`; returns the frames.
        fn complete(&mut self, from: usize) -> Vec<Vec<u8>> {
            let mut sent = Vec::new();
            let mut i = from;
            while self.status[i] == libc::TP_STATUS_SEND_REQUEST {
                let at = self.layout.offset(i);
                let slot = &self.mem[at..at + self.layout.frame_size];
                assert_eq!(read_u32(slot, PKT_NEXT), Some(0));
                let len = read_u32(slot, PKT_LEN).unwrap() as usize;
                sent.push(slot[TX_DATA_OFFSET..TX_DATA_OFFSET + len].to_vec());
                self.status[i] = libc::TP_STATUS_AVAILABLE;
                i = next_index(i, self.status.len());
            }
            sent
        }
    }

    impl FrameRing for FakeTx {
        fn layout(&self) -> FrameLayout {
            self.layout
        }
        fn is_free(&self, index: usize) -> bool {
            tx_slot_free(self.status[index])
        }
        fn with_slot<R>(&mut self, index: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
            assert!(self.is_free(index), "write to a slot the kernel owns");
            let at = self.layout.offset(index);
            f(&mut self.mem[at..at + self.layout.frame_size])
        }
        fn submit(&mut self, index: usize) {
            self.status[index] = libc::TP_STATUS_SEND_REQUEST;
        }
    }

    #[test]
    fn tx_walker_fills_wraps_and_reports_full() {
        let layout = FrameLayout { block_size: 4096, frame_size: 2048, block_nr: 2 };
        let mut ring = FakeTx::new(layout);
        let mut walker = TxWalker::default();
        let frames: Vec<Vec<u8>> = (0..6u8).map(|i| frame(i, 60 + usize::from(i) * 100)).collect();
        for f in &frames[..4] {
            assert_eq!(walker.push(&mut ring, f), Push::Queued);
        }
        assert_eq!(walker.push(&mut ring, &frames[4]), Push::Full);
        assert_eq!(walker.pending, 4);
        assert_eq!(ring.complete(0), frames[..4]);
        assert_eq!(walker.push(&mut ring, &frames[4]), Push::Queued);
        assert_eq!(walker.push(&mut ring, &frames[5]), Push::Queued);
        assert_eq!(ring.complete(0), frames[4..]);
        assert_eq!(walker.push(&mut ring, &vec![0; 2048 - 48]), Push::Queued);
        assert_eq!(walker.push(&mut ring, &vec![0; 2048 - 47]), Push::TooLong);
    }
}
