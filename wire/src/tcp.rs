//! TCP (RFC 9293): the fields a load balancer reads.
//!
//! ```text
//! +-------------------------------+-------------------------------+
//! |          Source Port          |       Destination Port        |
//! |                        Sequence Number                        |
//! |                     Acknowledgment Number                     |
//! | Offset|  Rsvd |     Flags     |            Window             |
//! +-------------------------------+-------------------------------+
//! ```

use crate::{Error, Result, be16};

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// SYN flag bit.
pub const FLAG_SYN: u8 = 0x02;
/// ACK flag bit.
pub const FLAG_ACK: u8 = 0x10;
/// RST flag bit.
pub const FLAG_RST: u8 = 0x04;

crate::view! {
    /// A view of a TCP segment.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Ensures the fixed 20-byte header is present.
    ///
    /// # Errors
    /// Shorter than 20 bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN { Err(Error) } else { Ok(()) }
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0).unwrap_or(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2).unwrap_or(0)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        let d = self.buffer.as_ref();
        u32::from_be_bytes([d[4], d[5], d[6], d[7]])
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        let d = self.buffer.as_ref();
        u32::from_be_bytes([d[8], d[9], d[10], d[11]])
    }

    /// The flag byte (CWR … FIN).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[13]
    }
}

/// The two ports at the start of a TCP or UDP header. Only these four bytes are needed to
/// classify and hash a flow, and a frame truncated after them is still routable (GLB does so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Source port.
    pub src: u16,
    /// Destination port.
    pub dst: u16,
}

impl Ports {
    /// Bytes needed.
    pub const LEN: usize = 4;

    /// Reads the ports at the start of `l4`.
    ///
    /// # Errors
    /// Fewer than 4 bytes.
    pub fn parse(l4: &[u8]) -> Result<Self> {
        Ok(Self { src: be16(l4, 0).ok_or(Error)?, dst: be16(l4, 2).ok_or(Error)? })
    }

    /// Reads only the source port: an ICMP error may quote just 2 bytes of the transport header,
    /// which is enough to classify it (the quoted source is the VIP's port).
    ///
    /// # Errors
    /// Fewer than 2 bytes.
    pub fn parse_src(l4: &[u8]) -> Result<u16> {
        be16(l4, 0).ok_or(Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let seg = [0xb2, 0x6e, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x12, 0x20, 0, 0, 0, 0, 0];
        let p = Packet::new_checked(&seg[..]).expect("20 bytes");
        assert_eq!((p.src_port(), p.dst_port()), (45678, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (1, 2));
        assert_eq!(p.flags(), FLAG_SYN | FLAG_ACK);
        assert!(Packet::new_checked(&seg[..19]).is_err());
        assert_eq!(Ports::parse(&seg[..4]), Ok(Ports { src: 45678, dst: 80 }));
        assert!(Ports::parse(&seg[..3]).is_err());
        assert_eq!(Ports::parse_src(&seg[..2]), Ok(45678));
        assert!(Ports::parse_src(&seg[..1]).is_err());
    }
}
