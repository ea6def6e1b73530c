//! IP protocol numbers (IPv4 `protocol`, IPv6 `next header`).

/// The protocol numbers the director distinguishes; anything else round-trips through `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IPv6 hop-by-hop options (0).
    HopByHop,
    /// ICMP (1).
    Icmp,
    /// IPv4 in IP (4), GUE's inner protocol for IPv4.
    Ipv4,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// IPv6 in IP (41), GUE's inner protocol for IPv6.
    Ipv6,
    /// IPv6 routing header (43).
    Routing,
    /// IPv6 fragment header (44).
    Fragment,
    /// GRE (47).
    Gre,
    /// ICMPv6 (58).
    Icmpv6,
    /// IPv6 destination options (60).
    DestOptions,
    /// Any other number.
    Unknown(u8),
}

impl From<u8> for Protocol {
    #[inline]
    fn from(value: u8) -> Self {
        match value {
            0 => Self::HopByHop,
            1 => Self::Icmp,
            4 => Self::Ipv4,
            6 => Self::Tcp,
            17 => Self::Udp,
            41 => Self::Ipv6,
            43 => Self::Routing,
            44 => Self::Fragment,
            47 => Self::Gre,
            58 => Self::Icmpv6,
            60 => Self::DestOptions,
            other => Self::Unknown(other),
        }
    }
}

impl Protocol {
    /// The protocol number (usable in constants and `match` patterns).
    #[inline]
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Protocol::HopByHop => 0,
            Protocol::Icmp => 1,
            Protocol::Ipv4 => 4,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Ipv6 => 41,
            Protocol::Routing => 43,
            Protocol::Fragment => 44,
            Protocol::Gre => 47,
            Protocol::Icmpv6 => 58,
            Protocol::DestOptions => 60,
            Protocol::Unknown(other) => other,
        }
    }
}

impl From<Protocol> for u8 {
    #[inline]
    fn from(value: Protocol) -> Self {
        value.number()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips() {
        for n in 0..=u8::MAX {
            assert_eq!(u8::from(Protocol::from(n)), n);
        }
    }
}
