//! Bind classification: which table owns a packet (glb-director.md §7.1, decisions.md §4).
//!
//! GLB compiles binds into DPDK ACL rules and lets the ACL pick among overlapping binds of
//! different tables. We pick the first matching bind **in file order** — deterministic, and the
//! only case where it differs from GLB (overlaps across tables) is one our CLI refuses to build.
//!
//! Binds are grouped by prefix length; each group is a sorted array of network addresses, so a
//! lookup is one binary search per distinct prefix length (usually one or two), not a scan over
//! up to 256 binds × tables. Built once per table load; queries never allocate.

use crate::binary::TableFile;
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
    /// The prefix as a mask of [`bits`]: `key(addr, prefix_len) == bits(addr) & mask`, computed
    /// once here instead of per packet.
    mask: u128,
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
    /// [`BindEntry::mask`] of every entry.
    mask: u128,
    /// Sorted by network, then file order.
    entries: Vec<BindEntry>,
}

/// Binds of one family at most this many are scanned in file order rather than searched:
/// for a handful, one masked compare each costs less than a binary search per prefix length.
const SCAN_MAX: usize = 8;

/// The binds of one address family.
#[derive(Debug)]
enum Index {
    /// At most [`SCAN_MAX`] binds, in file order.
    Scan(Vec<BindEntry>),
    /// Grouped by prefix length.
    Search(Vec<Group>),
}

impl Default for Index {
    fn default() -> Self {
        Self::Scan(Vec::new())
    }
}

impl Index {
    /// Indexes `binds`, given in file order.
    fn new(binds: Vec<BindEntry>) -> Self {
        if binds.len() <= SCAN_MAX {
            return Self::Scan(binds);
        }
        let mut groups: Vec<Group> = Vec::new();
        for entry in binds {
            match groups.iter_mut().find(|g| g.prefix_len == entry.prefix_len) {
                Some(group) => group.entries.push(entry),
                None => groups.push(Group {
                    prefix_len: entry.prefix_len,
                    mask: entry.mask,
                    entries: vec![entry],
                }),
            }
        }
        for group in &mut groups {
            group.entries.sort_by_key(|e| (e.network, e.order));
        }
        Self::Search(groups)
    }

    /// The first entry in file order whose prefix holds `dst` (as [`bits`]) and that `accept`s.
    /// `accept` must not depend on which entries it was shown before (it is a filter).
    #[inline]
    fn first(&self, dst: u128, accept: impl FnMut(&BindEntry) -> bool) -> Option<&BindEntry> {
        match self {
            Self::Scan(entries) => Self::scan(entries, dst, accept),
            Self::Search(groups) => Self::search(groups, dst, accept),
        }
    }

    #[inline(always)]
    fn scan(
        entries: &[BindEntry],
        dst: u128,
        mut accept: impl FnMut(&BindEntry) -> bool,
    ) -> Option<&BindEntry> {
        entries.iter().find(|e| dst & e.mask == e.network && accept(e))
    }

    /// Out of line: the searched case is the rarer one, and its code would crowd the
    /// per-packet path the scan is inlined into.
    #[inline(never)]
    fn search(groups: &[Group], dst: u128, mut accept: impl FnMut(&BindEntry) -> bool) -> Option<&BindEntry> {
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
}

/// The binds of every table of a file, indexed for per-packet matching.
#[derive(Debug, Default)]
pub struct Classifier {
    v4: Index,
    v6: Index,
}

impl Classifier {
    /// Indexes the binds of `file`.
    #[must_use]
    pub fn new(file: &TableFile<'_>) -> Self {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let mut order = 0;
        for table in file.tables() {
            for bind in table.binds() {
                let all_ones = if bind.address.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::from_bits(u32::MAX))
                } else {
                    IpAddr::V6(Ipv6Addr::from_bits(u128::MAX))
                };
                let entry = BindEntry {
                    table: table.index(),
                    order,
                    proto: bind.proto,
                    port_start: bind.port_start,
                    port_end: bind.port_end,
                    prefix_len: bind.prefix_len,
                    mask: key(all_ones, bind.prefix_len),
                    network: key(bind.address, bind.prefix_len),
                };
                if bind.address.is_ipv4() { &mut v4 } else { &mut v6 }.push(entry);
                order += 1;
            }
        }
        Self { v4: Index::new(v4), v6: Index::new(v6) }
    }

    /// The first bind in file order whose prefix holds `dst` and that satisfies `accept`.
    pub fn first(&self, dst: IpAddr, accept: impl FnMut(&BindEntry) -> bool) -> Option<&BindEntry> {
        let index = if dst.is_ipv4() { &self.v4 } else { &self.v6 };
        index.first(bits(dst), accept)
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
        self.v4
            .first(dst.to_bits().into(), |e| e.proto == proto && port.is_none_or(|p| e.port_matches(p)))
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
    use crate::binary::{BindInfo, layout};
    use zerocopy::FromBytes;

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

    /// The table of the first bind in file order holding `dst` that `accept`s, straight from
    /// the file: what every classifier query must answer, however the binds are indexed.
    fn reference(file: &TableFile<'_>, dst: IpAddr, accept: impl Fn(&BindInfo) -> bool) -> Option<usize> {
        let holds = |b: &BindInfo| {
            b.address.is_ipv4() == dst.is_ipv4() && mask(b.address, b.prefix_len) == mask(dst, b.prefix_len)
        };
        file.tables().find(|t| t.binds().any(|b| holds(&b) && accept(&b))).map(|t| t.index())
    }

    /// Whether `port` is in the bind's range (a reversed range matches its endpoints).
    fn port_ok(b: &BindInfo, port: u16) -> bool {
        if b.port_start <= b.port_end {
            (b.port_start..=b.port_end).contains(&port)
        } else {
            port == b.port_start || port == b.port_end
        }
    }

    /// Every query of `c` over a grid of destinations, protocols and ports equals [`reference`].
    fn check_against_reference(bytes: &[u8]) {
        let tf = TableFile::parse(bytes).expect("valid");
        let c = Classifier::new(&tf);
        let mut dsts: Vec<IpAddr> = (0..=40u8).map(|h| IpAddr::V4(Ipv4Addr::new(192, 0, 2, h))).collect();
        dsts.extend((0..=12u8).map(|h| IpAddr::V4(Ipv4Addr::new(203, 0, 113, h))));
        dsts.extend(
            ["198.51.100.9", "2001:db8::1", "2001:db8:0:1::1", "2001:db8:1::5"]
                .map(|a| a.parse::<IpAddr>().expect("address")),
        );
        for dst in dsts {
            for proto in [1, 6, 17] {
                for port in [None, Some(1), Some(53), Some(80), Some(81), Some(443), Some(1500), Some(65535)]
                {
                    let expected =
                        reference(&tf, dst, |b| b.proto == proto && port.is_none_or(|p| port_ok(b, p)));
                    assert_eq!(c.transport(dst, proto, port), expected, "transport {dst} {proto} {port:?}");
                    if let IpAddr::V4(v4) = dst {
                        assert_eq!(
                            c.transport_v4(v4, proto, port),
                            expected,
                            "transport_v4 {dst} {proto} {port:?}"
                        );
                    }
                }
            }
            assert_eq!(c.address(dst), reference(&tf, dst, |_| true), "address {dst}");
            for port in [80, 443, 1000] {
                let expected = reference(&tf, dst, |b| port_ok(b, port));
                assert_eq!(c.icmp_error(dst, dst, port), expected, "icmp_error {dst} {port}");
            }
        }
    }

    // Many binds (searched by prefix length) and few (scanned) answer like the file read in
    // order, including binds of different tables that overlap (as a GLB-built file may have).
    #[test]
    fn searched_and_scanned_binds_answer_in_file_order() {
        let many: Vec<String> =
            (10..22).map(|h| format!(r#"{{"ip":"192.0.2.{h}","proto":"tcp","port":80}}"#)).collect();
        let a = table(&format!(
            r#"{},{{"ip":"203.0.113.0/28","proto":"udp","port":53}},{{"ip":"2001:db8::/64","proto":"tcp","port":443}}"#,
            many.join(",")
        ));
        let b = table(
            r#"{"ip":"198.51.100.0/24","proto":"tcp","port_start":1,"port_end":65535},
               {"ip":"203.0.113.4/30","proto":"tcp","port_start":1000,"port_end":2000},
               {"ip":"2001:db8:1::/48","proto":"tcp","port":443}"#,
        );
        // Table 1's first bind is pointed at 192.0.2.0/26, all TCP ports: it overlaps table 0's
        // binds, which come first in the file.
        let overlapped = |mut bytes: Vec<u8>| {
            let at = layout::HEADER_LEN + layout::BLOCK_LEN + layout::BINDS_OFFSET;
            let slot = layout::BindSlot::mut_from_bytes(&mut bytes[at..at + size_of::<layout::BindSlot>()])
                .expect("a bind slot");
            slot.address[..4].copy_from_slice(&[192, 0, 2, 0]);
            slot.ip_bits.set(26);
            bytes
        };
        let searched = overlapped(file(&format!(r#"{{"tables":[{a},{b}]}}"#)));
        check_against_reference(&searched);
        let tf = TableFile::parse(&searched).expect("valid");
        assert!(matches!(Classifier::new(&tf).v4, Index::Search(_)), "15 IPv4 binds are searched");

        let scanned = overlapped(file(&format!(r#"{{"tables":[{},{b}]}}"#, table(&many[..3].join(",")))));
        check_against_reference(&scanned);
        let tf = TableFile::parse(&scanned).expect("valid");
        assert!(matches!(Classifier::new(&tf).v4, Index::Scan(_)), "5 IPv4 binds are scanned");
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
