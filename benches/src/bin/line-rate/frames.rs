//! The generated traffic: UDP datagrams from many clients to one VIP, in 64-byte frames or an
//! IMIX, as templates the generator program rewrites per frame (client address and port).

use glb_wire::ip::Protocol;
use glb_wire::ipv4;
use std::net::Ipv4Addr;

/// The VIP every frame goes to (its bind: UDP [`VIP_PORT`]).
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The VIP's port.
pub const VIP_PORT: u16 = 80;
/// Clients: the generator sets the low 16 bits, so 65 536 addresses of 198.18.0.0/16 (RFC 2544
/// benchmarking range), each with random source ports.
pub const CLIENT_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// Offset of the client address's low 16 bits (the IPv4 source address is at 14 + 12).
pub const CLIENT_LOW_OFFSET: usize = 14 + 14;
/// Offset of the IPv4 header checksum.
pub const IP_CSUM_OFFSET: usize = 14 + 10;
/// Offset of the UDP source port.
pub const SRC_PORT_OFFSET: usize = 14 + 20;
/// Offset of the IPv4 total length.
pub const TOTAL_LEN_OFFSET: usize = 14 + 2;
/// Offset of the UDP length.
pub const UDP_LEN_OFFSET: usize = 14 + 20 + 4;
/// Bytes before the IP packet, and before the UDP payload.
pub const ETH_LEN: usize = 14;
/// Bytes before the UDP payload.
pub const HEADERS_LEN: usize = 14 + 20 + 8;
/// Ethernet FCS: counted in a frame's size on the wire, absent on veth.
pub const FCS: usize = 4;
/// Payload marker, so a tunnelled frame's inner packet can be recognised as ours.
pub const MARKER: &[u8] = b"glb-line-rate";

/// A traffic mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Mix {
    /// 64-byte frames (on the wire, with FCS).
    #[serde(rename = "64B")]
    Small,
    /// Simple IMIX: 64-, 594- and 1518-byte frames, 7:4:1 by count.
    #[serde(rename = "IMIX")]
    Imix,
}

impl Mix {
    /// Both mixes, in report order.
    pub const ALL: [Self; 2] = [Self::Small, Self::Imix];

    /// (size on the wire, weight) of each frame size, smallest first.
    #[must_use]
    pub fn sizes(self) -> &'static [(usize, u32)] {
        match self {
            Self::Small => &[(64, 1)],
            Self::Imix => &[(64, 7), (594, 4), (1518, 1)],
        }
    }

    /// Average size on the wire, bytes.
    #[must_use]
    pub fn mean_wire_size(self) -> f64 {
        let sizes = self.sizes();
        let total: u32 = sizes.iter().map(|&(_, w)| w).sum();
        sizes.iter().map(|&(s, w)| s as f64 * f64::from(w)).sum::<f64>() / f64::from(total)
    }

    /// Short name for tables and JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Small => "64B",
            Self::Imix => "IMIX",
        }
    }
}

/// A mix's template: its largest frame, which the generator trims per frame.
#[derive(Debug, Clone)]
pub struct Template {
    /// The frame as sent (without FCS), client address low bits and port zero.
    pub bytes: Vec<u8>,
    /// One's-complement sum (unfolded) of the IPv4 header's 16-bit words with the checksum, the
    /// total length and the client's low 16 bits zero: the generator adds the last two and folds.
    pub csum_base: u32,
    /// (frame length without FCS, weight) per size.
    pub sizes: Vec<(usize, u32)>,
}

/// The template of `mix` from `src_mac` to `dst_mac`.
#[must_use]
pub fn mix_template(mix: Mix, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Template {
    let sizes: Vec<(usize, u32)> = mix.sizes().iter().map(|&(wire, w)| (wire - FCS, w)).collect();
    let largest = sizes.iter().map(|&(len, _)| len).max().unwrap_or(60);
    let mut t = template(largest + FCS, src_mac, dst_mac);
    t.sizes = sizes;
    t
}

/// The template of a `wire_size`-byte frame from `src_mac` to `dst_mac`.
///
/// # Panics
/// If `wire_size` is below 64 or above 9018 (fixed sizes from [`Mix::sizes`]).
#[must_use]
pub fn template(wire_size: usize, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Template {
    assert!((64..=9018).contains(&wire_size), "frame size {wire_size}");
    let len = wire_size - FCS;
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let udp_len = u16::try_from(len - 14 - 20).expect("fits");
    ipv4::Repr {
        src_addr: CLIENT_BASE,
        dst_addr: VIP,
        protocol: Protocol::Udp,
        payload_len: udp_len,
        ttl: 64,
        ident: 0,
        dont_frag: true,
    }
    .emit(&mut f[14..34])
    .expect("a 20-byte header fits");
    // UDP: source port set per frame, checksum 0 (none, allowed for IPv4).
    f[36..38].copy_from_slice(&VIP_PORT.to_be_bytes());
    f[38..40].copy_from_slice(&udp_len.to_be_bytes());
    let marker_end = (42 + MARKER.len()).min(len);
    f[42..marker_end].copy_from_slice(&MARKER[..marker_end - 42]);
    let mut header = [0u8; 20];
    header.copy_from_slice(&f[14..34]);
    header[2..4].fill(0);
    header[10..12].fill(0);
    Template { csum_base: word_sum(&header), bytes: f, sizes: vec![(len, 1)] }
}

/// Sum of big-endian 16-bit words (an odd last byte padded), not folded.
#[must_use]
pub fn word_sum(bytes: &[u8]) -> u32 {
    bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_have_their_sizes_and_valid_headers() {
        for (size, _) in Mix::Imix.sizes() {
            let t = template(*size, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            assert_eq!(t.bytes.len(), size - 4);
            let ip = ipv4::Packet::new_checked(&t.bytes[14..]).expect("valid IPv4");
            assert_eq!(usize::from(ip.total_len()), size - 4 - 14);
            assert!(ip.verify_checksum(), "header checksum");
            assert_eq!(t.bytes[CLIENT_LOW_OFFSET..CLIENT_LOW_OFFSET + 2], [0, 0]);
            let mut header = t.bytes[14..34].to_vec();
            header[2..4].fill(0);
            header[10..12].fill(0);
            assert_eq!(t.csum_base, word_sum(&header));
        }
        let imix = mix_template(Mix::Imix, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        assert_eq!(imix.bytes.len(), 1514);
        assert_eq!(imix.sizes, [(60, 7), (590, 4), (1514, 1)]);
        assert!((Mix::Imix.mean_wire_size() - 361.83).abs() < 0.01);
        assert!((Mix::Small.mean_wire_size() - 64.0).abs() < f64::EPSILON);
    }
}
