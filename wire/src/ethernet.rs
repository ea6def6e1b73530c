//! Ethernet II frames (IEEE 802.3).
//!
//! ```text
//! +-------------------+-------------------+-----------+---------
//! | destination (6)   | source (6)        | type (2)  | payload
//! +-------------------+-------------------+-----------+---------
//! ```
//! No VLAN parsing: GLB classifies only frames whose type is exactly IPv4 or IPv6.

use crate::{Error, Result, be16, put16};

/// Header length.
pub const HEADER_LEN: usize = 14;

/// A MAC address.
pub type Address = [u8; 6];

/// EtherType values the director distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x86DD.
    Ipv6,
    /// Anything else (ARP, 802.1Q, LLDP, …).
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => Self::Ipv4,
            0x86dd => Self::Ipv6,
            other => Self::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> Self {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

crate::view! {
    /// A view of an Ethernet frame.
    Frame
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Ensures every accessor is in bounds.
    ///
    /// # Errors
    /// The buffer is shorter than the header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN { Err(Error) } else { Ok(()) }
    }

    /// Destination MAC.
    pub fn dst_addr(&self) -> Address {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[0..6]);
        a
    }

    /// Source MAC.
    pub fn src_addr(&self) -> Address {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[6..12]);
        a
    }

    /// EtherType.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), 12).unwrap_or(0))
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    pub fn set_dst_addr(&mut self, addr: Address) {
        self.buffer.as_mut()[0..6].copy_from_slice(&addr);
    }

    /// Sets the source MAC.
    pub fn set_src_addr(&mut self, addr: Address) {
        self.buffer.as_mut()[6..12].copy_from_slice(&addr);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        put16(self.buffer.as_mut(), 12, ethertype.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit() {
        let mut bytes = [0u8; 16];
        let mut frame = Frame::new_unchecked(&mut bytes[..]);
        frame.set_dst_addr([1, 2, 3, 4, 5, 6]);
        frame.set_src_addr([7, 8, 9, 10, 11, 12]);
        frame.set_ethertype(EtherType::Ipv6);
        let frame = Frame::new_checked(&bytes[..]).expect("long enough");
        assert_eq!(frame.dst_addr(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(frame.src_addr(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(frame.ethertype(), EtherType::Ipv6);
        assert_eq!(frame.payload().len(), 2);
        assert!(Frame::new_checked(&bytes[..13]).is_err());
        assert_eq!(EtherType::from(0x8100), EtherType::Unknown(0x8100));
    }
}
