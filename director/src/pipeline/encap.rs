//! GUE encapsulation in place (glb-director.md §7.4): the Ethernet header is replaced by
//! Ethernet | IPv4 | UDP | GUE + hops, written into the frame's headroom.
//!
//! ```text
//! gateway MAC, local MAC, 0x0800 | 45 00 len 0000 4000 40 11 csum src hop0 |
//! sport=0x8000|((hash^hint)&0x7fff) 19523 len csum | GUE hlen=1+H proto | 0000 00 H | hops 1..
//! ```
//! Everything is final when this returns: lengths, the IPv4 header checksum and the full UDP
//! checksum (GLB computes both in software, so do we).

use super::Route;
use super::flow::Family;
use super::verdict::DropReason;
use forwarding_table::Hops;
use glb_wire::ip::Protocol;
use glb_wire::{ethernet, gue, ipv4, tunnel, udp};
use std::net::Ipv4Addr;

/// The director's side of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelEndpoint {
    /// Destination MAC of every tunnelled frame (`outbound_gateway_mac`).
    pub gateway_mac: ethernet::Address,
    /// Source MAC: the port's own address.
    pub local_mac: ethernet::Address,
    /// Outer source address (`outbound_src_ip`).
    pub src_ip: Ipv4Addr,
}

/// Bytes prepended for `hops` hops, beyond the Ethernet header they replace.
#[must_use]
pub const fn overhead(hops: usize) -> usize {
    ipv4::HEADER_LEN + udp::HEADER_LEN + gue::FIXED_LEN + 4 * (hops - 1)
}

/// Headroom a frame needs before its Ethernet header for the largest tunnel (4 hops).
pub const MAX_HEADROOM: usize = overhead(4);

/// Encapsulates the frame at `buf[start..]` in place as `route` says. Returns the new
/// (start, len).
///
/// The route's hops are [primary, secondary] or [primary, secondary, alt primary, alt
/// secondary]; the first is the outer destination, the rest go in the GUE list. `template` is
/// the endpoint's prepared header ([`TunnelEndpoint::template`]).
pub(super) fn encapsulate(
    buf: &mut [u8],
    start: usize,
    route: &Route<'_>,
    hops: &Hops,
    template: &tunnel::Template,
) -> Result<(usize, usize), DropReason> {
    let hops = hops.as_slice();
    let listed = hops.len().checked_sub(1).ok_or(DropReason::Truncated)?;
    if listed > gue::MAX_HOPS {
        return Err(DropReason::TooBig);
    }
    let udp_len = udp::HEADER_LEN + gue::FIXED_LEN + 4 * listed + route.ip_len;
    if u16::try_from(udp_len).is_err() {
        return Err(DropReason::TooBig);
    }
    let prepend = tunnel::header_len(listed) - ethernet::HEADER_LEN;
    let new_start = start.checked_sub(prepend).ok_or(DropReason::NoHeadroom)?;
    let new_len = ethernet::HEADER_LEN + prepend + route.ip_len;
    let out = buf.get_mut(new_start..new_start + new_len).ok_or(DropReason::Truncated)?;
    let inner = match route.family {
        Family::V4 => Protocol::Ipv4,
        Family::V6 => Protocol::Ipv6,
    };
    let hash_low = u16::try_from(route.pkt_hash & 0x7fff).unwrap_or(0);
    let src_port = 0x8000 | ((hash_low ^ route.flow_hint) & 0x7fff);
    // The inner packet stays where it is; only headers are written in front of it. The one
    // remaining failure is an outer packet over 65 535 bytes.
    template.emit(out, hops, src_port, inner).map_err(|_| DropReason::TooBig)?;
    Ok((new_start, new_len))
}

impl TunnelEndpoint {
    /// The tunnel header parts that are the same for every packet.
    #[must_use]
    pub fn template(&self) -> tunnel::Template {
        tunnel::Template::new(self.gateway_mac, self.local_mac, self.src_ip)
    }
}
