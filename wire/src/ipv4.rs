//! IPv4 (RFC 791).
//!
//! ```text
//!  0                   1                   2                   3
//! +-------+-------+---------------+-------------------------------+
//! |Version|  IHL  |   DSCP/ECN    |          Total Length         |
//! +-------+-------+---------------+-----+-------------------------+
//! |         Identification        |Flags|     Fragment Offset     |
//! +---------------+---------------+-----+-------------------------+
//! |      TTL      |   Protocol    |        Header Checksum        |
//! +---------------+---------------+-------------------------------+
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options (IHL > 5)                          |
//! +---------------------------------------------------------------+
//! ```
//! The header length is IHL × 4: options are skipped, never read as ports (GLB assumes 20 bytes).

use crate::ip::Protocol;
use crate::{Error, Result, be16, checksum, put16};
use core::net::Ipv4Addr;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: core::ops::Range<usize> = 12..16;
    pub const DST: core::ops::Range<usize> = 16..20;
}

crate::view! {
    /// A view of an IPv4 packet.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Ensures the header is readable: version 4, at least 20 bytes, IHL ≥ 5, the whole header
    /// (options included) present, and a total length that covers the header. The payload may
    /// be cut short by the buffer; [`Self::is_truncated`] tells.
    ///
    /// # Errors
    /// Any of the above fails.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN || self.version() != 4 {
            return Err(Error);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || data.len() < header_len || usize::from(self.total_len()) < header_len {
            return Err(Error);
        }
        Ok(())
    }

    /// Version field (4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP and ECN.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total Length: header plus payload, in bytes.
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH).unwrap_or(0)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT).unwrap_or(0)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS_FRAG] & 0x40 != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS_FRAG] & 0x20 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLAGS_FRAG).unwrap_or(0) & 0x1fff) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.protocol_number())
    }

    /// Protocol of the payload as its number (what classification compares, without the
    /// conversion to [`Protocol`] and back).
    #[inline]
    pub fn protocol_number(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum as stored.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM).unwrap_or(0)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[field::SRC];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[field::DST];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// Whether the buffer ends before Total Length says the packet does.
    pub fn is_truncated(&self) -> bool {
        self.buffer.as_ref().len() < usize::from(self.total_len())
    }

    /// Whether the header checksum verifies (always true under `cfg(fuzzing)`).
    pub fn verify_checksum(&self) -> bool {
        if cfg!(fuzzing) {
            return true;
        }
        let header = &self.buffer.as_ref()[..self.header_len()];
        checksum::finish(checksum::sum(0, header)) == 0
    }
}

impl<'a> Packet<&'a [u8]> {
    /// The payload: from the end of the header to Total Length, or to the end of the buffer if
    /// that comes first. Bytes past Total Length (Ethernet padding) are never part of it.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer;
        let end = data.len().min(usize::from(self.total_len()));
        data.get(self.header_len()..end).unwrap_or(&[])
    }

    /// Everything after the header to the end of the buffer, ignoring Total Length: for a packet
    /// quoted in an ICMP error, whose Total Length describes the original, not the quote.
    pub fn quoted_payload(&self) -> &'a [u8] {
        self.buffer.get(self.header_len()..).unwrap_or(&[])
    }
}

/// The fields of an IPv4 header GLB's encapsulation writes (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source.
    pub src_addr: Ipv4Addr,
    /// Destination.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: Protocol,
    /// Payload length in bytes.
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
}

impl Repr {
    /// Bytes [`Self::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header, checksum included, into the start of `buffer`.
    ///
    /// The checksum is summed from the field values rather than read back from `buffer`: a
    /// wide load of bytes just written by narrower stores stalls store-to-load forwarding, and
    /// this runs once per forwarded packet.
    ///
    /// # Errors
    /// The buffer is shorter than 20 bytes or the total length overflows 65 535.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<()> {
        let total_len = self.payload_len.checked_add(20).ok_or(Error)?;
        let header = buffer.get_mut(..HEADER_LEN).ok_or(Error)?;
        let flags: u16 = if self.dont_frag { 0x4000 } else { 0 };
        let ttl_proto = u16::from_be_bytes([self.ttl, self.protocol.into()]);
        let sum = 0x4500
            + u32::from(total_len)
            + u32::from(self.ident)
            + u32::from(flags)
            + u32::from(ttl_proto)
            + checksum::addr_sum(self.src_addr)
            + checksum::addr_sum(self.dst_addr);
        header[field::VER_IHL] = 0x45;
        header[field::DSCP_ECN] = 0;
        put16(header, field::LENGTH, total_len);
        put16(header, field::IDENT, self.ident);
        put16(header, field::FLAGS_FRAG, flags);
        header[field::TTL] = self.ttl;
        header[field::PROTOCOL] = self.protocol.into();
        put16(header, field::CHECKSUM, checksum::finish(sum));
        header[field::SRC].copy_from_slice(&self.src_addr.octets());
        header[field::DST].copy_from_slice(&self.dst_addr.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The outer header of GLB's s01 idx 0 output (glb-director.md §7.4).
    const OUTER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x50, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb0, 0x11, 0x41, 0x41, 0x41, 0x41, 0x03,
        0x04, 0x05, 0x06,
    ];

    #[test]
    fn emit_matches_glb_bytes_and_parses_back() {
        let repr = Repr {
            src_addr: Ipv4Addr::new(65, 65, 65, 65),
            dst_addr: Ipv4Addr::new(3, 4, 5, 6),
            protocol: Protocol::Udp,
            payload_len: 60,
            ttl: 64,
            ident: 0,
            dont_frag: true,
        };
        let mut buf = [0u8; 20];
        repr.emit(&mut buf).expect("fits");
        assert_eq!(buf, OUTER);
        let packet = Packet::new_checked(&buf[..]).expect("valid header");
        assert!(packet.verify_checksum());
        assert_eq!((packet.src_addr(), packet.dst_addr()), (repr.src_addr, repr.dst_addr));
        assert_eq!((packet.total_len(), packet.ttl(), packet.protocol()), (80, 64, Protocol::Udp));
        assert!(packet.dont_frag() && !packet.more_frags() && packet.frag_offset() == 0);
        assert!(packet.is_truncated());
        assert!(packet.payload().is_empty());
    }

    #[test]
    fn options_padding_and_bad_headers() {
        let mut buf = [0u8; 40];
        buf[..20].copy_from_slice(&OUTER);
        buf[0] = 0x46; // IHL 6: 4 bytes of options
        buf[2..4].copy_from_slice(&30u16.to_be_bytes());
        let packet = Packet::new_checked(&buf[..]).expect("valid");
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.payload().len(), 6, "payload stops at Total Length, not at the buffer's end");
        buf[0] = 0x44;
        assert!(Packet::new_checked(&buf[..]).is_err(), "IHL < 5");
        buf[0] = 0x45;
        buf[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert!(Packet::new_checked(&buf[..]).is_err(), "total length below header length");
        buf[2..4].copy_from_slice(&40u16.to_be_bytes());
        buf[0] = 0x65;
        assert!(Packet::new_checked(&buf[..]).is_err(), "version 6");
        assert!(Packet::new_checked(&buf[..19]).is_err());
    }

    #[test]
    fn fragment_fields() {
        let mut buf = OUTER;
        buf[6..8].copy_from_slice(&0x2003u16.to_be_bytes());
        let packet = Packet::new_unchecked(&buf[..]);
        assert!(packet.more_frags() && !packet.dont_frag());
        assert_eq!(packet.frag_offset(), 24);
    }
}
