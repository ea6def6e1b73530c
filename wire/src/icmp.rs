//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) share their first 8 bytes' layout:
//!
//! ```text
//! +---------------+---------------+-------------------------------+
//! |     Type      |     Code      |           Checksum            |
//! |   Identifier (echo) / unused  |  Sequence (echo) / MTU (PTB)  |
//! +---------------------------------------------------------------+
//! |   data: echo payload, or the start of the offending packet    |
//! ```
//! GLB routes two error messages on the packet they quote — IPv4 "fragmentation needed" and
//! IPv6 "packet too big" — so path-MTU discovery reaches the proxy that holds the connection.

use crate::{Error, Result, be16};

/// Bytes before the data.
pub const HEADER_LEN: usize = 8;

/// ICMPv4 type/code pairs the director acts on.
pub mod v4 {
    /// Echo request (8, 0).
    pub const ECHO_REQUEST: (u8, u8) = (8, 0);
    /// Echo reply (0, 0).
    pub const ECHO_REPLY: (u8, u8) = (0, 0);
    /// Destination unreachable, fragmentation needed (3, 4).
    pub const FRAG_NEEDED: (u8, u8) = (3, 4);
}

/// ICMPv6 type/code pairs the director acts on.
pub mod v6 {
    /// Echo request (128, 0).
    pub const ECHO_REQUEST: (u8, u8) = (128, 0);
    /// Echo reply (129, 0).
    pub const ECHO_REPLY: (u8, u8) = (129, 0);
    /// Packet too big (2, 0).
    pub const PACKET_TOO_BIG: (u8, u8) = (2, 0);
}

crate::view! {
    /// A view of an ICMPv4 or ICMPv6 message.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Ensures type and code are present (what classification needs); the rest of the header
    /// is read with [`Self::data`] / [`Self::ident`], which tolerate truncation.
    ///
    /// # Errors
    /// Shorter than 2 bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < 2 { Err(Error) } else { Ok(()) }
    }

    /// (type, code).
    pub fn kind(&self) -> (u8, u8) {
        let d = self.buffer.as_ref();
        (d[0], d[1])
    }

    /// Echo identifier, if present.
    pub fn ident(&self) -> Option<u16> {
        be16(self.buffer.as_ref(), 4)
    }

    /// Echo sequence number, if present.
    pub fn seq_number(&self) -> Option<u16> {
        be16(self.buffer.as_ref(), 6)
    }

    /// Checksum, if present.
    pub fn checksum(&self) -> Option<u16> {
        be16(self.buffer.as_ref(), 2)
    }

    /// The data after the 8-byte header: the quoted packet of an error message.
    ///
    /// # Errors
    /// The header is incomplete.
    pub fn data(&self) -> Result<&[u8]> {
        self.buffer.as_ref().get(HEADER_LEN..).ok_or(Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_truncation() {
        let msg = [3, 4, 0xab, 0xcd, 0, 0, 0x05, 0xdc, 0x45, 0x00];
        let p = Packet::new_checked(&msg[..]).expect("type and code");
        assert_eq!(p.kind(), v4::FRAG_NEEDED);
        assert_eq!(p.checksum(), Some(0xabcd));
        assert_eq!(p.seq_number(), Some(1500));
        assert_eq!(p.data(), Ok(&[0x45, 0x00][..]));
        let short = Packet::new_checked(&msg[..5]).expect("type and code");
        assert_eq!((short.ident(), short.seq_number()), (None, None));
        assert!(short.data().is_err());
        assert!(Packet::new_checked(&msg[..1]).is_err());
    }
}
