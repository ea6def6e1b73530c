//! The second-chance decision for TCP (glb-healthcheck-redirect-xdp.md §2.4), in GLB's order,
//! with the kernel questions behind closures so the order itself is tested without a kernel.

use crate::packet::{Flow, Gue};
use std::net::Ipv4Addr;

/// What the socket lookup (sock_diag, [`crate::diag`]) found for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A socket of the flow: established or later, `TIME_WAIT`, or a request socket (SYN-ACK
    /// sent, final ACK pending) — what GLB's established-hash lookup finds.
    Found,
    /// No socket of the flow, but a listener on the local address and port.
    Listener,
    /// Nothing at all.
    NotFound,
}

/// Why a packet is taken by the local stack; each is one of GLB's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// SYN set (`accepted_syn_packets`).
    Syn,
    /// A local socket knows the flow (`accepted_established_packets`).
    Established,
    /// An ACK carrying a valid SYN cookie for a local listener (`accepted_syn_cookie_packets`).
    SynCookie,
    /// Unknown, and no hop left to try (`accepted_last_resort_packets`).
    LastResort,
    /// Unknown, and the next hop is this host (`forwarded_to_self_packets`: loop protection).
    ToSelf,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Decapsulate and hand the inner packet to the local stack.
    Accept(Accept),
    /// Send the datagram on to this hop (`forwarded_to_alternate_packets`).
    Forward(Ipv4Addr),
}

/// Decides for `flow` carried in `gue`, which arrived for `outer_dst` (this host's address).
///
/// `lookup` is asked only for non-SYN segments; `cookie_valid` only when the lookup found just
/// a listener and the segment is ACK-only (ACK set; FIN, RST and SYN clear). GLB also requires
/// the kernel to "want" cookies (`tcp_syncookies=2` or a recent SYN-queue overflow); the raw
/// cookie check cannot see that, so any cryptographically valid cookie ACK is accepted — a
/// superset of GLB's set.
pub fn decide(
    flow: &Flow,
    gue: &Gue<'_>,
    outer_dst: Ipv4Addr,
    lookup: impl FnOnce() -> Lookup,
    cookie_valid: impl FnOnce() -> bool,
) -> Decision {
    if flow.is_syn() {
        return Decision::Accept(Accept::Syn);
    }
    match lookup() {
        Lookup::Found => return Decision::Accept(Accept::Established),
        Lookup::Listener if flow.is_ack_only() && cookie_valid() => {
            return Decision::Accept(Accept::SynCookie);
        }
        Lookup::Listener | Lookup::NotFound => {}
    }
    let next = gue.next_hop();
    if next >= gue.hop_count() {
        return Decision::Accept(Accept::LastResort);
    }
    match gue.hop(usize::from(next)) {
        Some(alt) if alt != outer_dst => Decision::Forward(alt),
        // `None` cannot happen (next < hop_count and the hops were validated); accepting is
        // what GLB does for a hop that is this host.
        _ => Decision::Accept(Accept::ToSelf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{FLAG_FIN, Family};
    use glb_wire::tcp::{FLAG_ACK, FLAG_RST, FLAG_SYN};
    use std::cell::Cell;
    use std::net::IpAddr;

    const SELF: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const ALT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
    const OTHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);

    fn gue(next_hop: u8, hops: &[Ipv4Addr]) -> Vec<u8> {
        let count = u8::try_from(hops.len()).expect("few hops");
        let mut d = vec![1 + count, 4, 0, 0, 0, 0, next_hop, count];
        for hop in hops {
            d.extend_from_slice(&hop.octets());
        }
        d
    }

    fn flow(flags: u8) -> Flow {
        Flow {
            remote: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 5)),
            remote_port: 40_000,
            local: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
            local_port: 22,
            flags,
            tcp_offset: Some(20),
        }
    }

    /// Runs `decide` and reports which questions it asked.
    fn run(flags: u8, datagram: &[u8], lookup: Lookup, cookie: bool) -> (Decision, bool, bool) {
        let gue = Gue::parse(datagram).expect("valid GUE");
        assert_eq!(gue.family(), Family::V4);
        let (asked_lookup, asked_cookie) = (Cell::new(false), Cell::new(false));
        let decision = decide(
            &flow(flags),
            &gue,
            SELF,
            || {
                asked_lookup.set(true);
                lookup
            },
            || {
                asked_cookie.set(true);
                cookie
            },
        );
        (decision, asked_lookup.get(), asked_cookie.get())
    }

    #[test]
    fn syn_is_accepted_without_any_lookup() {
        let d = gue(0, &[ALT]);
        for flags in [FLAG_SYN, FLAG_SYN | FLAG_ACK, FLAG_SYN | FLAG_RST | FLAG_FIN] {
            assert_eq!(
                run(flags, &d, Lookup::NotFound, false),
                (Decision::Accept(Accept::Syn), false, false)
            );
        }
    }

    #[test]
    fn a_known_socket_wins_over_hops() {
        let d = gue(0, &[ALT]);
        assert_eq!(
            run(FLAG_ACK, &d, Lookup::Found, false),
            (Decision::Accept(Accept::Established), true, false)
        );
        // The header GLB builds from an ICMP error has no flags at all.
        assert_eq!(run(0, &d, Lookup::Found, false).0, Decision::Accept(Accept::Established));
    }

    #[test]
    fn cookie_is_checked_only_for_ack_only_segments_with_a_listener() {
        let d = gue(0, &[ALT]);
        assert_eq!(
            run(FLAG_ACK, &d, Lookup::Listener, true),
            (Decision::Accept(Accept::SynCookie), true, true)
        );
        // Invalid cookie: not local, so the hop list decides.
        assert_eq!(run(FLAG_ACK, &d, Lookup::Listener, false), (Decision::Forward(ALT), true, true));
        // PSH (0x08) and URG (0x20) are allowed with the ACK.
        assert_eq!(
            run(FLAG_ACK | 0x08 | 0x20, &d, Lookup::Listener, true).0,
            Decision::Accept(Accept::SynCookie)
        );
        for flags in [FLAG_ACK | FLAG_FIN, FLAG_ACK | FLAG_RST, 0, FLAG_RST] {
            assert_eq!(
                run(flags, &d, Lookup::Listener, true),
                (Decision::Forward(ALT), true, false),
                "{flags:#x}"
            );
        }
        // No listener: the cookie is never asked about.
        assert_eq!(run(FLAG_ACK, &d, Lookup::NotFound, true), (Decision::Forward(ALT), true, false));
    }

    #[test]
    fn hops_last_resort_and_self() {
        assert_eq!(
            run(FLAG_ACK, &gue(0, &[]), Lookup::NotFound, false).0,
            Decision::Accept(Accept::LastResort)
        );
        assert_eq!(
            run(FLAG_ACK, &gue(1, &[ALT]), Lookup::NotFound, false).0,
            Decision::Accept(Accept::LastResort)
        );
        assert_eq!(
            run(FLAG_ACK, &gue(7, &[ALT]), Lookup::NotFound, false).0,
            Decision::Accept(Accept::LastResort)
        );
        assert_eq!(
            run(FLAG_ACK, &gue(0, &[SELF, ALT]), Lookup::NotFound, false).0,
            Decision::Accept(Accept::ToSelf)
        );
        assert_eq!(
            run(FLAG_ACK, &gue(1, &[ALT, OTHER]), Lookup::NotFound, false).0,
            Decision::Forward(OTHER)
        );
    }
}
