//! Netlink message framing (RFC 3549, include/uapi/linux/netlink.h) shared by the sock_diag
//! lookups and the address set-up: native-endian headers, messages and attributes aligned to
//! 4 bytes.

/// `struct nlmsghdr`.
pub const HEADER_LEN: usize = 16;
/// `NLMSG_ERROR`: an error or (error 0) an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_REPLACE`.
pub const NLM_F_REPLACE: u16 = 0x100;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;

/// Writes a message header at the start of `buf` (pid 0: to the kernel).
pub fn put_header(buf: &mut [u8], len: usize, kind: u16, flags: u16, seq: u32) {
    buf[0..4].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    buf[4..6].copy_from_slice(&kind.to_ne_bytes());
    buf[6..8].copy_from_slice(&flags.to_ne_bytes());
    buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    buf[12..16].fill(0);
}

/// A message's type, sequence number and body; `None` if shorter than a header.
#[must_use]
pub fn parse(msg: &[u8]) -> Option<(u16, u32, &[u8])> {
    let header = msg.get(..HEADER_LEN)?;
    let kind = u16::from_ne_bytes([header[4], header[5]]);
    let seq = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]);
    Some((kind, seq, &msg[HEADER_LEN..]))
}

/// The errno of an `NLMSG_ERROR` body (0 for an acknowledgement).
#[must_use]
pub fn error_code(body: &[u8]) -> Option<i32> {
    Some(-i32::from_ne_bytes(body.get(..4)?.try_into().ok()?))
}

/// The messages in one received buffer, each `nlmsg_len` long; stops at anything malformed.
pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = usize::try_from(u32::from_ne_bytes(buf.get(..4)?.try_into().ok()?)).ok()?;
        let msg = buf.get(..len).filter(|_| len >= HEADER_LEN)?;
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(msg)
    })
}

/// Appends attribute `kind` with `value` to `buf` (`struct rtattr`, padded to 4 bytes).
pub fn push_attribute(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_message_walk() {
        let mut buf = vec![0u8; 40];
        put_header(&mut buf, 20, 20, NLM_F_REQUEST, 9);
        put_header(&mut buf[20..], 20, NLMSG_ERROR, 0, 10);
        buf[36..40].copy_from_slice(&(-2i32).to_ne_bytes());
        let msgs: Vec<_> = messages(&buf).collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(parse(msgs[0]).map(|(k, s, b)| (k, s, b.len())), Some((20, 9, 4)));
        let (kind, seq, body) = parse(msgs[1]).expect("header");
        assert_eq!((kind, seq, error_code(body)), (NLMSG_ERROR, 10, Some(2)));
        // A length below the header size or past the buffer ends the walk.
        buf[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(messages(&buf).count(), 0);
        buf[0..4].copy_from_slice(&41u32.to_ne_bytes());
        assert_eq!(messages(&buf).count(), 0);
    }

    #[test]
    fn attributes_are_padded() {
        let mut buf = Vec::new();
        push_attribute(&mut buf, 1, &[192, 0, 2, 10]);
        push_attribute(&mut buf, 8, &[1]);
        assert_eq!(buf, [8, 0, 1, 0, 192, 0, 2, 10, 5, 0, 8, 0, 1, 0, 0, 0]);
    }
}
