//! Any bytes → `TableFile::parse`, the director's loader for GLBD v2 files.
//!
//! Two input modes:
//! - an input starting with `GLBD` is the file itself (the oracle's tables seed this mode);
//! - anything else is a list of patches applied to a valid two-table file built in-process, so
//!   the fuzzer reaches the header, counts, bind and backend slots and rows of a file that is
//!   otherwise well formed. A patch is `[region, offset lo, offset hi, n, n bytes…]`: region 0 is
//!   the header and the start of table 0, 1 the start of table 1, 2 table 0's rows, 3 the end of
//!   the file; a patch past the end is cut short. A last patch byte `0xff` truncates or extends
//!   the file by `offset` bytes instead.
//!
//! Must hold: the reader never panics; an accepted file has every row index below its table's
//! backend count and bind prefix lengths within the family; `LoadedTable::from_bytes`, the
//! classifier and `select` never panic on it, and every hop `select` returns is a backend.
#![no_main]

use forwarding_table::binary::layout::{BLOCK_LEN, HEADER_LEN, ROWS_OFFSET};
use forwarding_table::{FlowKey, HashFields, LoadedTable, TableFile};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

const BASE_JSON: &str = r#"{"tables": [
  {"hash_key": "0123456789abcdef0123456789abcdef", "seed": "fedcba9876543210fedcba9876543210",
   "binds": [
     {"ip": "192.0.2.10", "proto": "tcp", "port": 80},
     {"ip": "198.51.100.0/24", "proto": "udp", "port_start": 8000, "port_end": 8100},
     {"ip": "2001:db8::/64", "proto": "tcp", "port": 443}
   ],
   "backends": [
     {"ip": "203.0.113.1", "state": "active", "healthy": true},
     {"ip": "203.0.113.2", "state": "draining", "healthy": true},
     {"ip": "203.0.113.3", "state": "filling", "healthy": false}
   ]},
  {"hash_key": "00112233445566778899aabbccddeeff", "seed": "ffeeddccbbaa99887766554433221100",
   "binds": [{"ip": "192.0.2.20", "proto": "tcp", "port_start": 1000, "port_end": 2000}],
   "backends": [{"ip": "203.0.113.11", "state": "active", "healthy": true}]}
]}"#;

fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let validated = forwarding_table::config::parse(BASE_JSON).expect("the base table is valid");
        forwarding_table::build_binary(&validated.config)
    })
}

fn patched(patches: &[u8]) -> Vec<u8> {
    let mut bytes = base().to_vec();
    let mut rest = patches;
    while let [region, lo, hi, n, tail @ ..] = rest {
        let offset = usize::from(u16::from_le_bytes([*lo, *hi]));
        if *n == 0xff {
            // Resize: odd offsets shrink, even ones grow.
            let new_len =
                if offset % 2 == 1 { bytes.len().saturating_sub(offset) } else { bytes.len() + offset };
            bytes.resize(new_len, 0);
            rest = tail;
            continue;
        }
        let n = usize::from(*n).min(tail.len());
        let start = match region % 4 {
            0 => offset,
            1 => HEADER_LEN + BLOCK_LEN + offset,
            2 => HEADER_LEN + ROWS_OFFSET + offset * 8,
            _ => bytes.len().saturating_sub(offset),
        };
        for (i, &byte) in tail[..n].iter().enumerate() {
            if let Some(slot) = bytes.get_mut(start + i) {
                *slot = byte;
            }
        }
        rest = &tail[n..];
    }
    bytes
}

fuzz_target!(|data: &[u8]| {
    let bytes = if data.starts_with(b"GLBD") { data.to_vec() } else { patched(data) };
    let Ok(file) = TableFile::parse(&bytes) else {
        return;
    };
    assert!(file.num_tables() >= 1);
    assert_eq!(bytes.len(), HEADER_LEN + BLOCK_LEN * file.num_tables());
    for view in file.tables() {
        let backends = view.backend_slots().len();
        assert!((1..=256).contains(&backends) && (1..=256).contains(&view.bind_slots().len()));
        for (primary, secondary) in view.rows() {
            assert!(primary < backends && secondary < backends, "row index past the backend count");
        }
        for bind in view.binds() {
            let max = if bind.address.is_ipv4() { 32 } else { 128 };
            assert!(bind.prefix_len <= max && matches!(bind.proto, 1 | 6 | 17));
        }
        for backend in view.backends() {
            std::hint::black_box((backend.state.name(), backend.healthy));
        }
    }
    assert!(file.table(file.num_tables()).is_none());

    let len = bytes.len();
    let loaded = LoadedTable::from_bytes(bytes).expect("a table the reader accepted loads");
    assert_eq!(loaded.bytes().len(), len);
    let file = loaded.file();
    let classifier = loaded.classifier();
    let fields = [
        HashFields::default(),
        HashFields::new(true, true, true, true).expect("fields chosen"),
        HashFields::new(false, false, false, true).expect("fields chosen"),
    ];
    let mut destinations = vec![
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    for view in file.tables() {
        destinations.extend(view.binds().take(8).map(|b| b.address));
    }
    for &dst in &destinations {
        for (proto, port) in [(6, Some(80)), (17, Some(8000)), (1, None), (6, None), (6, Some(0))] {
            if let Some(table) = classifier.transport(dst, proto, port) {
                assert!(table < file.num_tables(), "classifier named a missing table");
            }
        }
        if let Some(table) = classifier.address(dst) {
            assert!(table < file.num_tables());
        }
        if let Some(table) = classifier.icmp_error(dst, dst, 443) {
            assert!(table < file.num_tables());
        }
        let src = match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        };
        let flow = FlowKey { src, dst, src_port: 40_000, dst_port: 80 };
        for view in file.tables() {
            let hops: Vec<Ipv4Addr> = (0..view.backend_slots().len()).map(|i| view.hop(i)).collect();
            for (i, &main) in fields.iter().enumerate() {
                let alt = i.checked_sub(1).map(|j| fields[j]);
                let selection = view.select(&flow, main, alt);
                assert_eq!(selection.hops.as_slice().len(), if alt.is_some() { 4 } else { 2 });
                assert_eq!(selection.row, u16::try_from(selection.pkt_hash & 0xffff).expect("masked"));
                assert_eq!((selection.primary, selection.secondary), view.row(selection.row));
                for hop in selection.hops.as_slice() {
                    assert!(hops.contains(hop), "select returned a hop that is not a backend");
                }
            }
        }
    }
});
