//! GUE (Generic UDP Encapsulation, draft-ietf-intarea-gue) with GLB's private data: the list of
//! proxies that may hold the flow (GLB docs/development/gue-header.md).
//!
//! ```text
//! +---+-+---------+---------------+-------------------------------+
//! |Ver|C|  Hlen   |  Proto/ctype  |             Flags             |   Hlen = 1 + hop count
//! +---+-+---------+---------------+---------------+---------------+
//! |     Private data type (0)     |   Next hop    |   Hop count   |
//! +-------------------------------+---------------+---------------+
//! |                  Hop 0 (IPv4)  …  Hop count-1                 |
//! +---------------------------------------------------------------+
//! ```
//! `Proto` is 4 for an inner IPv4 packet, 41 for IPv6. A proxy with no state for the flow sends
//! it on to hop `next hop` and increments `next hop`.

use crate::ip::Protocol;
use crate::{Error, Result, be16, put16};
use core::net::Ipv4Addr;

/// Bytes of the GUE base header plus GLB's private data header, before the hops.
pub const FIXED_LEN: usize = 8;

/// The UDP port GLB tunnels to.
pub const PORT: u16 = 19523;

/// Most hops the director writes (secondary, alternative primary, alternative secondary).
pub const MAX_HOPS: usize = 3;

crate::view! {
    /// A view of a GUE header with GLB private data.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Ensures the header is a version-0 data message whose length covers GLB's private data
    /// and exactly its hops, and that it fits in the buffer.
    ///
    /// # Errors
    /// Any of the above fails.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < FIXED_LEN || self.version() != 0 || self.is_control() {
            return Err(Error);
        }
        let hop_bytes = usize::from(self.hop_count()) * 4;
        if self.header_len() != FIXED_LEN + hop_bytes || data.len() < self.header_len() {
            return Err(Error);
        }
        Ok(())
    }

    /// GUE version (0).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 6
    }

    /// Control-message bit.
    pub fn is_control(&self) -> bool {
        self.buffer.as_ref()[0] & 0x20 != 0
    }

    /// Header length in bytes, from Hlen: 4 + 4 × Hlen.
    pub fn header_len(&self) -> usize {
        4 + 4 * usize::from(self.buffer.as_ref()[0] & 0x1f)
    }

    /// Inner protocol.
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[1])
    }

    /// GUE flags.
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), 2).unwrap_or(0)
    }

    /// GLB private data type (0).
    pub fn private_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 4).unwrap_or(0)
    }

    /// Index of the next hop to try.
    pub fn next_hop(&self) -> u8 {
        self.buffer.as_ref()[6]
    }

    /// Number of hops listed.
    pub fn hop_count(&self) -> u8 {
        self.buffer.as_ref()[7]
    }

    /// Hop `index`, if listed.
    pub fn hop(&self, index: usize) -> Option<Ipv4Addr> {
        if index >= usize::from(self.hop_count()) {
            return None;
        }
        let at = FIXED_LEN + 4 * index;
        let d = self.buffer.as_ref().get(at..at + 4)?;
        Some(Ipv4Addr::new(d[0], d[1], d[2], d[3]))
    }

    /// The inner packet.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

/// The GUE header GLB's director writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Inner protocol: [`Protocol::Ipv4`] or [`Protocol::Ipv6`].
    pub protocol: Protocol,
    /// Next hop index (0 from the director).
    pub next_hop: u8,
    hops: [Ipv4Addr; MAX_HOPS],
    hop_count: usize,
}

impl Repr {
    /// A header listing `hops` (at most [`MAX_HOPS`]).
    ///
    /// # Errors
    /// More than [`MAX_HOPS`] hops.
    pub fn new(protocol: Protocol, hops: &[Ipv4Addr]) -> Result<Self> {
        if hops.len() > MAX_HOPS {
            return Err(Error);
        }
        // A fixed number of conditional copies: a variable-length copy becomes a `memcpy` call
        // whose narrow stores the caller's wide loads of `Self` then wait on.
        let list = core::array::from_fn(|i| hops.get(i).copied().unwrap_or(Ipv4Addr::UNSPECIFIED));
        Ok(Self { protocol, next_hop: 0, hops: list, hop_count: hops.len() })
    }

    /// The listed hops.
    pub fn hops(&self) -> &[Ipv4Addr] {
        &self.hops[..self.hop_count]
    }

    /// Bytes [`Self::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        FIXED_LEN + 4 * self.hop_count
    }

    /// The one's-complement sum of the bytes [`Self::emit`] writes (congruent to their
    /// [`checksum::sum`](crate::checksum::sum), so equal once folded), computed from the fields:
    /// what the UDP checksum needs without reading the header back.
    pub fn sum(&self) -> u32 {
        let hop_count = u8::try_from(self.hop_count).unwrap_or(u8::MAX);
        let first = u16::from_be_bytes([1 + hop_count, self.protocol.into()]);
        let private = u16::from_be_bytes([self.next_hop, hop_count]);
        let hops: u32 = self.hops().iter().map(|&hop| crate::checksum::addr_sum(hop)).sum();
        u32::from(first) + u32::from(private) + hops
    }

    /// Writes the header into the start of `buffer`.
    ///
    /// # Errors
    /// `buffer` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buffer: &mut [u8]) -> Result<()> {
        let header = buffer.get_mut(..self.buffer_len()).ok_or(Error)?;
        let hop_count = u8::try_from(self.hop_count).map_err(|_| Error)?;
        header[0] = 1 + hop_count; // version 0, C 0, Hlen in words after the first
        header[1] = self.protocol.into();
        put16(header, 2, 0);
        put16(header, 4, 0);
        header[6] = self.next_hop;
        header[7] = hop_count;
        for (slot, hop) in header[FIXED_LEN..].chunks_exact_mut(4).zip(self.hops()) {
            slot.copy_from_slice(&hop.octets());
        }
        Ok(())
    }

    /// Parses a checked view.
    ///
    /// # Errors
    /// More hops than [`MAX_HOPS`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        let mut hops = [Ipv4Addr::UNSPECIFIED; MAX_HOPS];
        let count = usize::from(packet.hop_count());
        for (i, hop) in hops.get_mut(..count).ok_or(Error)?.iter_mut().enumerate() {
            *hop = packet.hop(i).ok_or(Error)?;
        }
        Ok(Self { protocol: packet.protocol(), next_hop: packet.next_hop(), hops, hop_count: count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_matches_glb_and_round_trips() {
        // GUE bytes of GLB's s01 idx 0 output: one hop, 2.3.4.5.
        let repr = Repr::new(Protocol::Ipv4, &[Ipv4Addr::new(2, 3, 4, 5)]).expect("one hop");
        let mut buf = [0u8; 12];
        repr.emit(&mut buf).expect("fits");
        assert_eq!(buf, [0x02, 0x04, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]);
        let packet = Packet::new_checked(&buf[..]).expect("valid");
        assert_eq!(Repr::parse(&packet), Ok(repr));
        let finish = crate::checksum::finish;
        assert_eq!(finish(repr.sum()), finish(crate::checksum::sum(0, &buf)));
        assert_eq!(packet.header_len(), 12);
    }

    #[test]
    fn rejects_inconsistent_headers() {
        let mut buf = [0x02, 0x04, 0, 0, 0, 0, 0, 2, 2, 3, 4, 5];
        assert!(Packet::new_checked(&buf[..]).is_err(), "hop count disagrees with hlen");
        buf[7] = 1;
        buf[0] = 0x42;
        assert!(Packet::new_checked(&buf[..]).is_err(), "version 1");
        buf[0] = 0x22;
        assert!(Packet::new_checked(&buf[..]).is_err(), "control message");
        buf[0] = 0x02;
        assert!(Packet::new_checked(&buf[..11]).is_err(), "truncated hops");
        assert!(Repr::new(Protocol::Ipv4, &[Ipv4Addr::UNSPECIFIED; 4]).is_err());
    }
}
