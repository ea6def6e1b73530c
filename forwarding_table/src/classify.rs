//! Bind classification: which table owns a packet (glb-director.md §7.1, decisions.md §4).
//!
//! GLB compiles binds into DPDK ACL rules and lets the ACL pick among overlapping binds of
//! different tables. We pick the first matching bind **in file order** — deterministic, and the
//! only case where it differs from GLB (overlaps across tables) is one our CLI refuses to build.
//!
//! Binds are grouped by prefix length; each group is a sorted array of network addresses, so a
//! lookup is one binary search per distinct prefix length (usually one or two), not a scan over
//! up to 256 binds × tables. Built once per table load; queries never allocate.

use crate::binary::{BindInfo, TableFile};
use crate::config::mask;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One bind, flattened for matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindEntry {
    /// Table index.
    pub table: usize,
    /// Position in file order (table, then bind), the tie-breaker among matches.
    order: usize,
    /// IP protocol number.
    pub proto: u8,
    port_start: u16,
    port_end: u16,
    prefix_len: u8,
    network: u128,
}

impl BindEntry {
    /// Whether `port` is in the bind's range. A reversed range (only in GLB-built files) matches
    /// its two endpoints, as GLB's ACL does.
    #[must_use]
    pub fn port_matches(&self, port: u16) -> bool {
        if self.port_start <= self.port_end {
            (self.port_start..=self.port_end).contains(&port)
        } else {
            port == self.port_start || port == self.port_end
        }
    }

    /// Whether `addr` (of the bind's family) is inside the bind's prefix.
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        key(addr, self.prefix_len) == self.network
    }
}

fn key(addr: IpAddr, prefix_len: u8) -> u128 {
    bits(mask(addr, prefix_len))
}

/// The address as an integer, IPv4 in the low 32 bits (the space of [`key`]).
fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_bits()),
        IpAddr::V6(a) => a.to_bits(),
    }
}

#[derive(Debug, Default)]
struct Group {
    prefix_len: u8,
    /// The prefix as a mask of [`bits`]: `key(addr, prefix_len) == bits(addr) & mask`, computed
    /// once here instead of per packet.
    mask: u128,
    /// Sorted by network, then file order.
    entries: Vec<BindEntry>,
}

/// The binds of every table of a file, indexed for per-packet matching.
#[derive(Debug, Default)]
pub struct Classifier {
    v4: Vec<Group>,
    v6: Vec<Group>,
}

impl Classifier {
    /// Indexes the binds of `file`.
    #[must_use]
    pub fn new(file: &TableFile<'_>) -> Self {
        let mut classifier = Self::default();
        let mut order = 0;
        for table in file.tables() {
            for bind in table.binds() {
                classifier.insert(table.index(), order, &bind);
                order += 1;
            }
        }
        for group in classifier.v4.iter_mut().chain(classifier.v6.iter_mut()) {
            group.entries.sort_by_key(|e| (e.network, e.order));
        }
        classifier
    }

    fn insert(&mut self, table: usize, order: usize, bind: &BindInfo) {
        let groups = if bind.address.is_ipv4() { &mut self.v4 } else { &mut self.v6 };
        let index = match groups.iter().position(|g| g.prefix_len == bind.prefix_len) {
            Some(i) => i,
            None => {
                let all_ones = if bind.address.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::from_bits(u32::MAX))
                } else {
                    IpAddr::V6(Ipv6Addr::from_bits(u128::MAX))
                };
                let mask = key(all_ones, bind.prefix_len);
                groups.push(Group { prefix_len: bind.prefix_len, mask, entries: Vec::new() });
                groups.len() - 1
            }
        };
        groups[index].entries.push(BindEntry {
            table,
            order,
            proto: bind.proto,
            port_start: bind.port_start,
            port_end: bind.port_end,
            prefix_len: bind.prefix_len,
            network: key(bind.address, bind.prefix_len),
        });
    }

    /// The first bind in file order whose prefix holds `dst` and that satisfies `accept`.
    pub fn first(&self, dst: IpAddr, accept: impl FnMut(&BindEntry) -> bool) -> Option<&BindEntry> {
        let groups = if dst.is_ipv4() { &self.v4 } else { &self.v6 };
        Self::first_in(groups, bits(dst), accept)
    }

    /// [`Self::first`] over `groups`, `dst` given as [`bits`]. `accept` must not depend on
    /// which entries it was shown before (it is a filter).
    #[inline]
    fn first_in(
        groups: &[Group],
        dst: u128,
        mut accept: impl FnMut(&BindEntry) -> bool,
    ) -> Option<&BindEntry> {
        let mut best: Option<&BindEntry> = None;
        for group in groups {
            let network = dst & group.mask;
            let start = group.entries.partition_point(|e| e.network < network);
            // Entries of one network are in file order: the first accepted is the group's best.
            let found =
                group.entries[start..].iter().take_while(|e| e.network == network).find(|e| accept(e));
            if let Some(entry) = found
                && best.is_none_or(|b| entry.order < b.order)
            {
                best = Some(entry);
            }
        }
        best
    }

    /// Rule a: the table of the first bind matching destination, protocol and destination port.
    /// `port` is `None` for a non-first fragment, which carries no ports and matches on address
    /// and protocol alone.
    #[must_use]
    pub fn transport(&self, dst: IpAddr, proto: u8, port: Option<u16>) -> Option<usize> {
        self.first(dst, |e| e.proto == proto && port.is_none_or(|p| e.port_matches(p))).map(|e| e.table)
    }

    /// [`Self::transport`] for an IPv4 destination: the per-packet case, on plain integers.
    #[inline]
    #[must_use]
    pub fn transport_v4(&self, dst: Ipv4Addr, proto: u8, port: Option<u16>) -> Option<usize> {
        Self::first_in(&self.v4, dst.to_bits().into(), |e| {
            e.proto == proto && port.is_none_or(|p| e.port_matches(p))
        })
        .map(|e| e.table)
    }

    /// Rule c: the table of the first bind holding `dst`, whatever its protocol or ports (an
    /// ICMP echo request to a VIP).
    #[must_use]
    pub fn address(&self, dst: IpAddr) -> Option<usize> {
        self.first(dst, |_| true).map(|e| e.table)
    }

    /// Rule b: an ICMP error about a packet the VIP sent. The bind must hold both the outer
    /// destination and the quoted packet's source (the VIP), and its range the quoted source
    /// port; the quoted protocol is not checked (GLB does not either).
    #[must_use]
    pub fn icmp_error(&self, dst: IpAddr, quoted_src: IpAddr, quoted_src_port: u16) -> Option<usize> {
        if dst.is_ipv4() != quoted_src.is_ipv4() {
            return None;
        }
        self.first(dst, |e| e.contains(quoted_src) && e.port_matches(quoted_src_port)).map(|e| e.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> Vec<u8> {
        crate::build_binary(&crate::config::parse(json).expect("valid").config)
    }

    const KEY: &str = "12345678901234561234567890123456";

    fn table(binds: &str) -> String {
        format!(
            r#"{{"hash_key":"{KEY}","seed":"{KEY}","binds":[{binds}],
            "backends":[{{"ip":"198.51.100.1","state":"active","healthy":true}}]}}"#
        )
    }

    #[test]
    fn first_match_in_file_order_across_prefix_lengths() {
        let a = table(r#"{"ip":"203.0.113.0/24","proto":"tcp","port_start":1000,"port_end":2000}"#);
        let b = table(
            r#"{"ip":"203.0.113.9","proto":"tcp","port":80},{"ip":"203.0.113.9","proto":"udp","port":53},
               {"ip":"2001:db8::/64","proto":"tcp","port":443}"#,
        );
        let bytes = file(&format!(r#"{{"tables":[{a},{b}]}}"#));
        let tf = TableFile::parse(&bytes).expect("valid");
        let c = Classifier::new(&tf);
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        assert_eq!(c.transport(ip("203.0.113.9"), 6, Some(80)), Some(1));
        assert_eq!(c.transport(ip("203.0.113.9"), 6, Some(1500)), Some(0));
        assert_eq!(c.transport(ip("203.0.113.9"), 17, Some(53)), Some(1));
        assert_eq!(c.transport(ip("203.0.113.9"), 17, Some(54)), None);
        assert_eq!(c.transport(ip("203.0.113.10"), 6, Some(80)), None);
        assert_eq!(c.transport(ip("203.0.113.10"), 6, None), Some(0), "fragments ignore ports");
        for (dst, proto, port) in [
            ("203.0.113.9", 6, Some(80)),
            ("203.0.113.9", 6, Some(1500)),
            ("203.0.113.9", 17, Some(53)),
            ("203.0.113.9", 17, Some(54)),
            ("203.0.113.10", 6, Some(80)),
            ("203.0.113.10", 6, None),
            ("192.0.2.1", 6, None),
        ] {
            let v4: Ipv4Addr = dst.parse().expect("address");
            assert_eq!(
                c.transport_v4(v4, proto, port),
                c.transport(ip(dst), proto, port),
                "{dst} {proto} {port:?}"
            );
        }
        assert_eq!(c.address(ip("203.0.113.9")), Some(0), "echo: first table binding the address");
        assert_eq!(c.transport(ip("2001:db8::7"), 6, Some(443)), Some(1));
        assert_eq!(c.transport(ip("2001:db9::7"), 6, Some(443)), None);
        assert_eq!(c.icmp_error(ip("203.0.113.9"), ip("203.0.113.9"), 80), Some(1));
        assert_eq!(c.icmp_error(ip("203.0.113.9"), ip("192.0.2.1"), 80), None, "quoted source outside");
        assert_eq!(c.icmp_error(ip("203.0.113.9"), ip("2001:db8::1"), 80), None);
    }

    #[test]
    fn reversed_range_matches_its_endpoints() {
        let bytes =
            file(&format!(r#"{{"tables":[{}]}}"#, table(r#"{"ip":"203.0.113.1","proto":"tcp","port":0}"#)));
        let mut bytes = bytes;
        // Rewrite the bind's range to 300..250, as GLB's CLI stores a reversed range.
        let bind = 24 + 6152;
        bytes[bind + 22..bind + 24].copy_from_slice(&300u16.to_le_bytes());
        bytes[bind + 24..bind + 26].copy_from_slice(&250u16.to_le_bytes());
        let tf = TableFile::parse(&bytes).expect("GLB files with reversed ranges load");
        let c = Classifier::new(&tf);
        let dst: IpAddr = "203.0.113.1".parse().expect("address");
        let hits: Vec<u16> = [249, 250, 251, 280, 299, 300, 301]
            .into_iter()
            .filter(|&p| c.transport(dst, 6, Some(p)).is_some())
            .collect();
        assert_eq!(hits, [250, 300]);
    }
}
