//! emit → parse gives back what was emitted, for every header the director writes.

use glb_wire::checksum;
use glb_wire::gue;
use glb_wire::ip::Protocol;
use glb_wire::{ipv4, udp};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

proptest! {
    #[test]
    fn ipv4_repr_round_trips(src in addr(), dst in addr(), proto in any::<u8>(), payload_len in 0u16..=65_515,
                             ttl in any::<u8>(), ident in any::<u16>(), dont_frag in any::<bool>()) {
        let repr = ipv4::Repr { src_addr: src, dst_addr: dst, protocol: Protocol::from(proto), payload_len, ttl, ident, dont_frag };
        let mut buf = [0u8; ipv4::HEADER_LEN];
        repr.emit(&mut buf).expect("fits");
        let packet = ipv4::Packet::new_unchecked(&buf[..]);
        prop_assert_eq!(checksum::finish(checksum::sum(0, &buf)), 0, "header checksum verifies");
        prop_assert_eq!(packet.header_len(), 20);
        prop_assert_eq!(packet.total_len(), payload_len + 20);
        let parsed = ipv4::Repr {
            src_addr: packet.src_addr(), dst_addr: packet.dst_addr(), protocol: packet.protocol(),
            payload_len: packet.total_len() - 20, ttl: packet.ttl(), ident: packet.ident(), dont_frag: packet.dont_frag(),
        };
        prop_assert_eq!(parsed, repr);
    }

    #[test]
    fn ipv4_repr_rejects_oversized_payloads(payload_len in 65_516u16..) {
        let repr = ipv4::Repr { src_addr: Ipv4Addr::UNSPECIFIED, dst_addr: Ipv4Addr::UNSPECIFIED, protocol: Protocol::Udp,
                                payload_len, ttl: 64, ident: 0, dont_frag: true };
        prop_assert!(repr.emit(&mut [0u8; 20]).is_err());
    }

    #[test]
    fn gue_repr_round_trips(hops in proptest::collection::vec(addr(), 0..=gue::MAX_HOPS), v6 in any::<bool>(), tail in 0usize..8) {
        let protocol = if v6 { Protocol::Ipv6 } else { Protocol::Ipv4 };
        let repr = gue::Repr::new(protocol, &hops).expect("at most 3 hops");
        let mut buf = vec![0u8; repr.buffer_len() + tail];
        repr.emit(&mut buf).expect("fits");
        let packet = gue::Packet::new_checked(&buf[..]).expect("consistent header");
        prop_assert_eq!(packet.header_len(), repr.buffer_len());
        prop_assert_eq!(packet.payload().len(), tail);
        prop_assert_eq!(gue::Repr::parse(&packet).expect("parses"), repr);
        prop_assert_eq!(repr.hops(), &hops[..]);
    }

    #[test]
    fn udp_emit_round_trips_and_verifies(src in addr(), dst in addr(), sport in any::<u16>(), dport in any::<u16>(),
                                         payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut datagram = vec![0u8; udp::HEADER_LEN + payload.len()];
        datagram[udp::HEADER_LEN..].copy_from_slice(&payload);
        udp::emit(&mut datagram, sport, dport, src, dst).expect("fits");
        let packet = udp::Packet::new_checked(&datagram[..]).expect("valid");
        prop_assert_eq!((packet.src_port(), packet.dst_port()), (sport, dport));
        prop_assert_eq!(usize::from(packet.len()), datagram.len());
        prop_assert_eq!(packet.payload(), &payload[..]);
        prop_assert_ne!(packet.checksum(), 0, "a computed zero is sent as 0xffff");
        let total = checksum::sum(udp::pseudo_header_sum(src, dst, packet.len()), &datagram);
        prop_assert_eq!(checksum::finish(total), 0, "checksum verifies");
    }
}
