//! IPv6 (RFC 8200) and a bounded walk over its extension headers.
//!
//! ```text
//! +-------+---------------+---------------------------------------+
//! |Version| Traffic Class |              Flow Label               |
//! +-------+-------+-------+-------+---------------+---------------+
//! |        Payload Length         |  Next Header  |   Hop Limit   |
//! +-------------------------------+---------------+---------------+
//! |                  Source Address (16 bytes)                    |
//! |               Destination Address (16 bytes)                  |
//! +---------------------------------------------------------------+
//! ```
//! GLB hands any packet with extension headers to the kernel; we walk up to
//! [`MAX_EXTENSION_HEADERS`] of them (hop-by-hop, routing, destination options, fragment) to reach
//! the transport header (decisions.md §4).

use crate::ip::Protocol;
use crate::{Error, Result, be16};
use core::net::Ipv6Addr;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// The longest extension-header chain walked; longer chains match nothing.
pub const MAX_EXTENSION_HEADERS: usize = 8;

crate::view! {
    /// A view of an IPv6 packet.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Ensures the fixed header is present and the version is 6. The payload may be cut short by
    /// the buffer; [`Self::is_truncated`] tells.
    ///
    /// # Errors
    /// Shorter than 40 bytes, or another version.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN || data[0] >> 4 != 6 { Err(Error) } else { Ok(()) }
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        let d = self.buffer.as_ref();
        u32::from_be_bytes([0, d[1] & 0x0f, d[2], d[3]])
    }

    /// Payload Length: bytes after the fixed header.
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4).unwrap_or(0)
    }

    /// Header length plus Payload Length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// Next Header of the fixed header.
    pub fn next_header(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[6])
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[8..24])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[24..40])
    }

    /// Whether the buffer ends before Payload Length says the packet does.
    pub fn is_truncated(&self) -> bool {
        self.buffer.as_ref().len() < self.total_len()
    }
}

impl<'a> Packet<&'a [u8]> {
    /// Walks the extension headers to the upper-layer header.
    ///
    /// # Errors
    /// The chain is longer than [`MAX_EXTENSION_HEADERS`] or runs past the payload.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        walk_extension_headers(self.next_header(), self.payload())
    }

    /// The payload (extension headers included), never past Payload Length.
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer;
        let end = data.len().min(self.total_len());
        data.get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// Everything after the fixed header to the end of the buffer, ignoring Payload Length: for
    /// a packet quoted in an ICMP error.
    pub fn quoted_payload(&self) -> &'a [u8] {
        self.buffer.get(HEADER_LEN..).unwrap_or(&[])
    }
}

fn addr(bytes: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(bytes);
    Ipv6Addr::from(a)
}

/// Where the transport header of an IPv6 packet starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Its protocol.
    pub protocol: Protocol,
    /// Its offset in the IPv6 payload.
    pub offset: usize,
    /// Whether a fragment header with a non-zero offset was found: the bytes at `offset` are
    /// then the middle of a datagram, not a transport header.
    pub non_first_fragment: bool,
}

/// Walks extension headers starting with `next_header` over `payload`.
///
/// # Errors
/// The chain is longer than [`MAX_EXTENSION_HEADERS`] or runs past `payload`.
pub fn walk_extension_headers(mut next_header: Protocol, payload: &[u8]) -> Result<UpperLayer> {
    let mut offset = 0;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        match next_header {
            Protocol::HopByHop | Protocol::Routing | Protocol::DestOptions => {
                let header = payload.get(offset..offset + 2).ok_or(Error)?;
                next_header = Protocol::from(header[0]);
                offset += (usize::from(header[1]) + 1) * 8;
            }
            Protocol::Fragment => {
                let header = payload.get(offset..offset + 8).ok_or(Error)?;
                let frag_offset = u16::from_be_bytes([header[2], header[3]]) >> 3;
                next_header = Protocol::from(header[0]);
                offset += 8;
                if frag_offset != 0 {
                    return Ok(UpperLayer { protocol: next_header, offset, non_first_fragment: true });
                }
            }
            protocol => {
                if offset > payload.len() {
                    return Err(Error);
                }
                return Ok(UpperLayer { protocol, offset, non_first_fragment: false });
            }
        }
    }
    Err(Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(next: u8, payload: &[u8]) -> [u8; 128] {
        let mut buf = [0u8; 128];
        buf[0] = 0x60;
        buf[1..4].copy_from_slice(&[0x01, 0x23, 0x45]);
        let len = u16::try_from(payload.len()).expect("small");
        buf[4..6].copy_from_slice(&len.to_be_bytes());
        buf[6] = next;
        buf[7] = 64;
        buf[40..40 + payload.len()].copy_from_slice(payload);
        buf
    }

    #[test]
    fn fixed_header_fields() {
        let buf = packet(6, &[0; 20]);
        let p = Packet::new_checked(&buf[..]).expect("valid");
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!((p.payload_len(), p.next_header(), p.hop_limit()), (20, Protocol::Tcp, 64));
        assert_eq!(p.payload().len(), 20);
        assert!(!p.is_truncated());
        assert!(Packet::new_checked(&buf[..39]).is_err());
        assert!(Packet::new_checked(&buf[..60]).expect("valid").total_len() == 60);
    }

    #[test]
    fn walks_hop_by_hop_and_first_fragment_to_tcp() {
        let mut payload = [0u8; 40];
        payload[0] = 44; // hop-by-hop → fragment
        payload[8] = 6; // fragment → TCP, offset 0, M set
        payload[11] = 1;
        let buf = packet(0, &payload);
        let upper = Packet::new_checked(&buf[..]).expect("valid").upper_layer().expect("walkable");
        assert_eq!(upper, UpperLayer { protocol: Protocol::Tcp, offset: 16, non_first_fragment: false });
    }

    #[test]
    fn non_first_fragment_and_bad_chains() {
        let mut payload = [0u8; 16];
        payload[0] = 17;
        payload[2..4].copy_from_slice(&(100u16 << 3).to_be_bytes());
        let buf = packet(44, &payload);
        let upper = Packet::new_unchecked(&buf[..]).upper_layer().expect("walkable");
        assert!(upper.non_first_fragment && upper.protocol == Protocol::Udp && upper.offset == 8);
        // Nine destination-options headers: one too many.
        let mut long = [0u8; 72];
        for h in 0..9 {
            long[h * 8] = 60;
        }
        long[64] = 6;
        assert!(walk_extension_headers(Protocol::DestOptions, &long).is_err());
        assert!(walk_extension_headers(Protocol::DestOptions, &long[..64]).is_err());
        // A header length that runs past the payload.
        assert!(walk_extension_headers(Protocol::HopByHop, &[6, 4, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
