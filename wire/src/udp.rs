//! UDP (RFC 768), including the checksummed header GLB's tunnel writes.
//!
//! ```text
//! +-------------------------------+-------------------------------+
//! |          Source Port          |       Destination Port        |
//! |            Length             |           Checksum            |
//! +-------------------------------+-------------------------------+
//! ```

use crate::{Error, Result, be16, checksum, put16};
use core::net::Ipv4Addr;

/// Header length.
pub const HEADER_LEN: usize = 8;

crate::view! {
    /// A view of a UDP datagram.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Ensures the header is present and Length fits in the buffer and covers the header.
    ///
    /// # Errors
    /// Any of the above fails.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > data.len() { Err(Error) } else { Ok(()) }
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0).unwrap_or(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2).unwrap_or(0)
    }

    /// Length: header plus payload.
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4).unwrap_or(0)
    }

    /// Whether Length is zero (never valid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checksum as stored.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 6).unwrap_or(0)
    }

    /// The payload, up to Length.
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        data.get(HEADER_LEN..usize::from(self.len()).min(data.len())).unwrap_or(&[])
    }

    /// Whether the checksum over the IPv4 pseudo-header verifies (0 means "none"; always true
    /// under `cfg(fuzzing)`).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if cfg!(fuzzing) || self.checksum() == 0 {
            return true;
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::finish(checksum::sum(pseudo_header_sum(src, dst, self.len()), datagram)) == 0
    }
}

/// Sum of the IPv4 pseudo-header for a UDP datagram of `len` bytes.
#[must_use]
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, len: u16) -> u32 {
    checksum::addr_sum(src) + checksum::addr_sum(dst) + 17 + u32::from(len)
}

/// Writes a UDP header at the start of `datagram` (whose length is the UDP Length) and fills in
/// the full checksum over the pseudo-header and all of `datagram`; a computed 0 is sent as
/// 0xFFFF (RFC 768).
///
/// # Errors
/// `datagram` is shorter than the header or longer than 65 535 bytes.
pub fn emit(datagram: &mut [u8], src_port: u16, dst_port: u16, src: Ipv4Addr, dst: Ipv4Addr) -> Result<()> {
    let len = u16::try_from(datagram.len()).map_err(|_| Error)?;
    let payload_sum = checksum::sum(0, datagram.get(HEADER_LEN..).ok_or(Error)?);
    emit_header(datagram, src_port, dst_port, len, src, dst, payload_sum)
}

/// Writes the 8-byte UDP header of a `len`-byte datagram at the start of `header`, given
/// `payload_sum`, the [`checksum::sum`] of the `len - 8` payload bytes (however they were
/// summed). For callers that know the payload's sum without reading it back, e.g. because
/// they just wrote part of it: [`emit`] is this with the sum read from the buffer.
///
/// # Errors
/// `header` is shorter than 8 bytes or `len` is.
pub fn emit_header(
    header: &mut [u8],
    src_port: u16,
    dst_port: u16,
    len: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload_sum: u32,
) -> Result<()> {
    let header = header.get_mut(..HEADER_LEN).ok_or(Error)?;
    if usize::from(len) < HEADER_LEN {
        return Err(Error);
    }
    // Summed from the values, not read back from `header` (see `ipv4::Repr::emit`).
    let words = u32::from(src_port) + u32::from(dst_port) + u32::from(len);
    let total = u64::from(payload_sum) + u64::from(pseudo_header_sum(src, dst, len)) + u64::from(words);
    let sum = checksum::finish(checksum::fold64(total));
    put16(header, 0, src_port);
    put16(header, 2, dst_port);
    put16(header, 4, len);
    put16(header, 6, if sum == 0 { 0xffff } else { sum });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_then_verify() {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 2));
        let mut datagram = [0u8; 13];
        datagram[8..].copy_from_slice(b"hello");
        emit(&mut datagram, 1234, 19523, src, dst).expect("fits");
        let p = Packet::new_checked(&datagram[..]).expect("valid");
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (1234, 19523, 13));
        assert_eq!(p.payload(), b"hello");
        assert!(p.verify_checksum(src, dst));
        datagram[9] ^= 1;
        assert!(!Packet::new_unchecked(&datagram[..]).verify_checksum(src, dst));
        datagram[4..6].copy_from_slice(&14u16.to_be_bytes());
        assert!(Packet::new_checked(&datagram[..]).is_err(), "length past the buffer");
    }
}
