//! The GLBD v2 reader (glb-director.md §3 and §5, decisions.md §1): every malformed field is
//! rejected with a message naming the table, field and byte offset; no mutation of a valid file
//! makes it panic; and a written file reads back as the configuration it was built from.
//!
//! Offsets are spelled out from the spec's tables rather than taken from the crate's layout
//! module, so a layout mistake cannot hide behind itself.

use forwarding_table::binary::{BackendInfo, BindInfo, SlotState};
use forwarding_table::config::{self, BackendState, Config};
use forwarding_table::{BinaryError, FlowKey, HashFields, TableFile, TableView, build_binary, generate};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

// ---------------------------------------------------------------------------------------------
// Layout, from glb-director.md §3
// ---------------------------------------------------------------------------------------------

const HEADER: usize = 24;
const BLOCK: usize = 537_624;
const BACKENDS: usize = 4;
const BACKEND_SLOT: usize = 24;
const NUM_BINDS: usize = 6148;
const BINDS: usize = 6152;
const BIND_SLOT: usize = 28;
const HASH_KEY: usize = 13_320;
const ROWS: usize = 13_336;
const ROW_COUNT: usize = 65_536;

fn block(table: usize) -> usize {
    HEADER + table * BLOCK
}

fn backend_at(table: usize, i: usize) -> usize {
    block(table) + BACKENDS + i * BACKEND_SLOT
}

fn bind_at(table: usize, i: usize) -> usize {
    block(table) + BINDS + i * BIND_SLOT
}

fn row_at(table: usize, row: usize) -> usize {
    block(table) + ROWS + 8 * row
}

fn put_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u16(bytes: &mut [u8], offset: usize, value: u16) {
    bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes(bytes[offset..offset + 2].try_into().expect("2 bytes"))
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).expect("u32 fits in usize")
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("fits in u32")
}

// ---------------------------------------------------------------------------------------------
// Valid inputs (documentation addresses only)
// ---------------------------------------------------------------------------------------------

const TABLE_0: &str = r#"{
    "name": "zero",
    "hash_key": "00112233445566778899aabbccddeeff",
    "seed": "0123456789abcdef0123456789abcdef",
    "binds": [
        {"ip": "192.0.2.10", "proto": "tcp", "port": 80},
        {"ip": "198.51.100.77/26", "proto": "udp", "port_start": 5000, "port_end": 5100},
        {"ip": "2001:db8::1", "proto": "tcp", "port": 443}
    ],
    "backends": [
        {"ip": "198.18.0.1", "state": "active", "healthy": true},
        {"ip": "198.18.0.2", "state": "filling", "healthy": true},
        {"ip": "198.18.0.3", "state": "draining", "healthy": true},
        {"ip": "198.18.0.4", "state": "inactive", "healthy": false},
        {"ip": "192.0.2.200", "state": "active", "healthy": false}
    ]
}"#;

const TABLE_1: &str = r#"{
    "name": "one",
    "hash_key": "f0e1d2c3b4a5968778695a4b3c2d1e0f",
    "seed": "fedcba9876543210fedcba9876543210",
    "binds": [
        {"ip": "203.0.113.0/24", "proto": "tcp", "port_start": 80, "port_end": 90},
        {"ip": "2001:db8:1::/48", "proto": "udp", "port": 53}
    ],
    "backends": [
        {"ip": "198.19.255.1", "state": "active", "healthy": true},
        {"ip": "198.19.255.2", "state": "active", "healthy": true},
        {"ip": "198.51.100.9", "state": "filling", "healthy": true}
    ]
}"#;

fn config(tables: &[&str]) -> Config {
    let json = format!(r#"{{"tables": [{}]}}"#, tables.join(","));
    config::parse(&json).expect("the test JSON is valid").config
}

static CONFIG_1: LazyLock<Config> = LazyLock::new(|| config(&[TABLE_0]));
static CONFIG_2: LazyLock<Config> = LazyLock::new(|| config(&[TABLE_0, TABLE_1]));
static ONE_TABLE: LazyLock<Vec<u8>> = LazyLock::new(|| build_binary(&CONFIG_1));
static TWO_TABLES: LazyLock<Vec<u8>> = LazyLock::new(|| build_binary(&CONFIG_2));

fn one_table() -> Vec<u8> {
    ONE_TABLE.clone()
}

fn two_tables() -> Vec<u8> {
    TWO_TABLES.clone()
}

/// The reader's message for `bytes`, which must be rejected.
fn rejection(bytes: &[u8]) -> String {
    match TableFile::parse(bytes) {
        Ok(_) => panic!("a malformed file of {} bytes was accepted", bytes.len()),
        Err(e) => e.to_string(),
    }
}

fn assert_accepted(bytes: &[u8]) {
    if let Err(e) = TableFile::parse(bytes) {
        panic!("a valid file was rejected: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Size and header
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_files_are_accepted_and_have_the_documented_size() {
    assert_eq!(ONE_TABLE.len(), 537_648);
    assert_eq!(TWO_TABLES.len(), 1_075_272);
    assert_eq!(TableFile::parse(&ONE_TABLE).map(|f| f.num_tables()), Ok(1));
    assert_eq!(TableFile::parse(&TWO_TABLES).map(|f| f.num_tables()), Ok(2));
}

#[test]
fn truncated_files_are_rejected() {
    let bytes = one_table();
    assert_eq!(
        rejection(&bytes[..bytes.len() - 1]),
        "file is 537647 bytes, expected 537648 for 1 table(s) (24 + 537624 per table)"
    );
    let bytes = two_tables();
    assert_eq!(
        rejection(&bytes[..bytes.len() - 1]),
        "file is 1075271 bytes, expected 1075272 for 2 table(s) (24 + 537624 per table)"
    );
    // Exactly one table's worth short: still the size check, not a silent 1-table read.
    assert_eq!(
        rejection(&bytes[..HEADER + BLOCK]),
        "file is 537648 bytes, expected 1075272 for 2 table(s) (24 + 537624 per table)"
    );
    // Only the header.
    assert_eq!(
        rejection(&bytes[..HEADER]),
        "file is 24 bytes, expected 1075272 for 2 table(s) (24 + 537624 per table)"
    );
}

#[test]
fn files_cut_inside_the_header_are_rejected() {
    let bytes = one_table();
    for len in [0, 1, 4, 12, 23] {
        assert_eq!(rejection(&bytes[..len]), format!("file is {len} bytes, shorter than the 24-byte header"));
    }
}

#[test]
fn extended_files_are_rejected() {
    let mut bytes = one_table();
    bytes.push(0);
    assert_eq!(
        rejection(&bytes),
        "file is 537649 bytes, expected 537648 for 1 table(s) (24 + 537624 per table)"
    );
    let mut bytes = two_tables();
    bytes.extend_from_slice(&ONE_TABLE[HEADER..]);
    assert_eq!(
        rejection(&bytes),
        "file is 1612896 bytes, expected 1075272 for 2 table(s) (24 + 537624 per table)"
    );
}

#[test]
fn wrong_magic_is_rejected() {
    let mut bytes = one_table();
    bytes[3] = b'E';
    assert_eq!(rejection(&bytes), r#"invalid magic word [47, 4c, 42, 45] at offset 0, expected "GLBD""#);
    // Byte-swapped (a big-endian writer) is wrong too.
    bytes[..4].copy_from_slice(b"DBLG");
    assert!(rejection(&bytes).starts_with("invalid magic word [44, 42, 4c, 47] at offset 0"));
}

#[test]
fn wrong_version_is_rejected() {
    for version in [0, 1, 3, 0x0200_0000] {
        let mut bytes = one_table();
        put_u32(&mut bytes, 4, version);
        assert_eq!(rejection(&bytes), format!("invalid version at offset 4: expected 2, got {version}"));
    }
}

#[test]
fn wrong_header_limits_are_rejected() {
    let cases = [
        (12, 65_535, "table_entries", 65_536),
        (12, 0, "table_entries", 65_536),
        (16, 255, "max_num_backends", 256),
        (16, 257, "max_num_backends", 256),
        // GLB does not check max_num_binds; we do.
        (20, 0, "max_num_binds", 256),
        (20, 512, "max_num_binds", 256),
    ];
    for (offset, value, field, expected) in cases {
        let mut bytes = two_tables();
        put_u32(&mut bytes, offset, value);
        assert_eq!(
            rejection(&bytes),
            format!("invalid {field} at offset {offset}: expected {expected}, got {value}")
        );
    }
}

#[test]
fn num_tables_must_match_the_size_and_be_positive() {
    let mut header_only = one_table()[..HEADER].to_vec();
    put_u32(&mut header_only, 8, 0);
    assert_eq!(rejection(&header_only), "file has 0 tables, expected at least 1");
    let mut bytes = one_table();
    put_u32(&mut bytes, 8, 0);
    assert_eq!(rejection(&bytes), "file is 537648 bytes, expected 24 for 0 table(s) (24 + 537624 per table)");
    put_u32(&mut bytes, 8, 2);
    assert_eq!(
        rejection(&bytes),
        "file is 537648 bytes, expected 1075272 for 2 table(s) (24 + 537624 per table)"
    );
    // The implied size must not overflow.
    put_u32(&mut bytes, 8, u32::MAX);
    assert_eq!(
        rejection(&bytes),
        format!(
            "file is 537648 bytes, expected {} for 4294967295 table(s) (24 + 537624 per table)",
            24 + 537_624 * u64::from(u32::MAX)
        )
    );
}

#[test]
fn header_checks_run_in_glb_order() {
    // glb-director.md §5: magic, version, table entries, max backends, size, table count.
    let mut bytes = one_table();
    bytes.push(0);
    put_u32(&mut bytes, 16, 1);
    put_u32(&mut bytes, 12, 1);
    put_u32(&mut bytes, 4, 1);
    assert!(rejection(&bytes).starts_with("invalid version at offset 4"));
    put_u32(&mut bytes, 4, 2);
    assert!(rejection(&bytes).starts_with("invalid table_entries at offset 12"));
    put_u32(&mut bytes, 12, 65_536);
    assert!(rejection(&bytes).starts_with("invalid max_num_backends at offset 16"));
    put_u32(&mut bytes, 16, 256);
    assert!(rejection(&bytes).starts_with("file is 537649 bytes"));
    bytes[0] = 0;
    assert!(rejection(&bytes).starts_with("invalid magic word"));
}

// ---------------------------------------------------------------------------------------------
// Table blocks
// ---------------------------------------------------------------------------------------------

#[test]
fn num_backends_must_be_1_to_256() {
    for (table, value) in [(0, 0), (0, 257), (0, u32::MAX), (1, 0), (1, 300)] {
        let mut bytes = two_tables();
        let offset = block(table);
        put_u32(&mut bytes, offset, value);
        assert_eq!(
            rejection(&bytes),
            format!("table {table}: num_backends at offset {offset}: expected 1..=256, got {value}")
        );
    }
    assert_eq!(block(1), 537_648);
}

#[test]
fn num_binds_must_be_1_to_256() {
    for (table, value) in [(0, 0), (0, 257), (1, 0), (1, u32::MAX)] {
        let mut bytes = two_tables();
        let offset = block(table) + NUM_BINDS;
        put_u32(&mut bytes, offset, value);
        assert_eq!(
            rejection(&bytes),
            format!("table {table}: num_binds at offset {offset}: expected 1..=256, got {value}")
        );
    }
    assert_eq!(block(0) + NUM_BINDS, 6172);
}

#[test]
fn maximum_counts_are_accepted_when_rows_stay_valid() {
    let mut bytes = one_table();
    // Slots past the JSON's lists are zero, which is an invalid family once they are "used".
    put_u32(&mut bytes, block(0), 256);
    assert_eq!(
        rejection(&bytes),
        format!(
            "table 0: backends[5].family at offset {}: expected 1 (IPv4) or 2 (IPv6), got 0",
            backend_at(0, 5)
        )
    );
    for i in 5..256 {
        put_u32(&mut bytes, backend_at(0, i), 1);
    }
    put_u32(&mut bytes, block(0) + NUM_BINDS, 256);
    for i in 3..256 {
        put_u32(&mut bytes, bind_at(0, i), 1);
        bytes[bind_at(0, i) + 26] = 6;
    }
    assert_accepted(&bytes);
}

#[test]
fn bad_bind_fields_are_rejected() {
    // (bind, byte offset within the slot, writer, expected problem)
    type Write = fn(&mut [u8], usize);
    let cases: [(usize, usize, Write, &str, &str); 7] = [
        (0, 0, |b, o| put_u32(b, o, 0), "family", "expected 1 (IPv4) or 2 (IPv6), got 0"),
        (2, 0, |b, o| put_u32(b, o, 10), "family", "expected 1 (IPv4) or 2 (IPv6), got 10"),
        (0, 20, |b, o| put_u16(b, o, 33), "ip_bits", "expected 0..=32, got 33"),
        (1, 20, |b, o| put_u16(b, o, 0xffff), "ip_bits", "expected 0..=32, got 65535"),
        (2, 20, |b, o| put_u16(b, o, 129), "ip_bits", "expected 0..=128, got 129"),
        (1, 26, |b, o| b[o] = 0, "proto", "expected 1, 6 or 17, got 0"),
        (2, 26, |b, o| b[o] = 58, "proto", "expected 1, 6 or 17, got 58"),
    ];
    for (bind, within, write, field, problem) in cases {
        let mut bytes = one_table();
        let offset = bind_at(0, bind) + within;
        write(&mut bytes, offset);
        assert_eq!(
            rejection(&bytes),
            format!("table 0: binds[{bind}].{field} at offset {offset}: {problem}")
        );
    }
    // The same in the second table: the offset is the file offset.
    let mut bytes = two_tables();
    let offset = bind_at(1, 1) + 26;
    bytes[offset] = 2;
    assert_eq!(
        rejection(&bytes),
        format!("table 1: binds[1].proto at offset {offset}: expected 1, 6 or 17, got 2")
    );
    assert_eq!(offset, 537_648 + 6152 + 28 + 26);
}

#[test]
fn boundary_bind_values_are_accepted() {
    let mut bytes = one_table();
    put_u16(&mut bytes, bind_at(0, 0) + 20, 32);
    put_u16(&mut bytes, bind_at(0, 1) + 20, 0);
    put_u16(&mut bytes, bind_at(0, 2) + 20, 128);
    // ICMP is accepted by GLB's loader though the CLI never writes it.
    bytes[bind_at(0, 0) + 26] = 1;
    // A reversed range only GLB's CLI writes still loads (decisions.md §4).
    put_u16(&mut bytes, bind_at(0, 1) + 22, 6000);
    assert_accepted(&bytes);
}

#[test]
fn bad_backend_fields_are_rejected() {
    type Write = fn(&mut [u8], usize);
    let cases: [(usize, usize, Write, &str, &str); 6] = [
        (0, 0, |b, o| put_u32(b, o, 0), "family", "expected 1 (IPv4) or 2 (IPv6), got 0"),
        (4, 0, |b, o| put_u32(b, o, 3), "family", "expected 1 (IPv4) or 2 (IPv6), got 3"),
        (1, 20, |b, o| put_u16(b, o, 3), "state", "expected 0, 1 or 2, got 3"),
        (3, 20, |b, o| put_u16(b, o, 0x100), "state", "expected 0, 1 or 2, got 256"),
        (2, 22, |b, o| put_u16(b, o, 2), "health", "expected 0 or 1, got 2"),
        (0, 22, |b, o| put_u16(b, o, 0xffff), "health", "expected 0 or 1, got 65535"),
    ];
    for (backend, within, write, field, problem) in cases {
        let mut bytes = one_table();
        let offset = backend_at(0, backend) + within;
        write(&mut bytes, offset);
        assert_eq!(
            rejection(&bytes),
            format!("table 0: backends[{backend}].{field} at offset {offset}: {problem}")
        );
    }
    let mut bytes = two_tables();
    let offset = backend_at(1, 2) + 22;
    put_u16(&mut bytes, offset, 7);
    assert_eq!(
        rejection(&bytes),
        format!("table 1: backends[2].health at offset {offset}: expected 0 or 1, got 7")
    );
    assert_eq!(offset, 537_648 + 4 + 48 + 22);
}

#[test]
fn ipv6_backend_slots_from_glb_files_load_and_hop_on_their_first_four_bytes() {
    let mut bytes = one_table();
    let at = backend_at(0, 0);
    put_u32(&mut bytes, at, 2);
    let v6: Ipv6Addr = "2001:db8::5".parse().expect("address");
    bytes[at + 4..at + 20].copy_from_slice(&v6.octets());
    let file = TableFile::parse(&bytes).expect("IPv6 backend slots are valid");
    let view = file.table(0).expect("table 0");
    assert_eq!(view.backends().next().map(|b| b.address), Some(IpAddr::V6(v6)));
    assert_eq!(view.hop(0), Ipv4Addr::new(0x20, 0x01, 0x0d, 0xb8));
}

#[test]
fn unused_slots_are_not_validated() {
    let mut bytes = one_table();
    put_u32(&mut bytes, backend_at(0, 5), 9);
    put_u16(&mut bytes, backend_at(0, 255) + 20, 9);
    put_u32(&mut bytes, bind_at(0, 3), 9);
    bytes[bind_at(0, 255) + 26] = 99;
    assert_accepted(&bytes);
}

#[test]
fn row_indices_must_name_used_backend_slots() {
    let n = CONFIG_1.tables()[0].backends().len();
    let last = ROW_COUNT - 1;
    let n32 = to_u32(n);
    for (row, name, within, value) in [
        (0, "primary", 0, n32),
        (0, "secondary", 4, n32),
        (last, "primary", 0, 255),
        (last, "secondary", 4, 256),
        (12_345, "secondary", 4, u32::MAX),
    ] {
        let mut bytes = one_table();
        let offset = row_at(0, row) + within;
        put_u32(&mut bytes, offset, value);
        assert_eq!(
            rejection(&bytes),
            format!(
                "table 0: rows[{row}].{name} at offset {offset}: backend index {value} is not \
                 below num_backends {n}"
            )
        );
    }
    assert_eq!(row_at(0, 0), 13_360);
    // The largest valid index is fine.
    let mut bytes = one_table();
    put_u32(&mut bytes, row_at(0, 7), n32 - 1);
    put_u32(&mut bytes, row_at(0, 7) + 4, 0);
    assert_accepted(&bytes);
    // Second table, whose rows are checked against its own (smaller) count.
    let mut bytes = two_tables();
    let offset = row_at(1, 40_000);
    put_u32(&mut bytes, offset, 3);
    assert_eq!(
        rejection(&bytes),
        format!(
            "table 1: rows[40000].primary at offset {offset}: backend index 3 is not below \
             num_backends 3"
        )
    );
}

#[test]
fn shrinking_num_backends_invalidates_rows_naming_dropped_slots() {
    let mut bytes = one_table();
    put_u32(&mut bytes, block(0), 1);
    let message = rejection(&bytes);
    assert!(
        message.starts_with("table 0: rows[") && message.ends_with("is not below num_backends 1"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

fn hex_key(text: &str) -> [u8; 16] {
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    key
}

fn expected_backends(config: &Config, table: usize) -> Vec<BackendInfo> {
    config.tables()[table]
        .backends()
        .iter()
        .map(|b| BackendInfo {
            address: IpAddr::V4(b.address),
            state: match b.state {
                BackendState::Filling => SlotState::Filling,
                BackendState::Active => SlotState::Active,
                BackendState::Draining | BackendState::Inactive => SlotState::DrainingOrInactive,
            },
            healthy: b.healthy,
        })
        .collect()
}

fn expected_binds(config: &Config, table: usize) -> Vec<BindInfo> {
    config.tables()[table]
        .binds()
        .iter()
        .map(|b| BindInfo {
            address: b.prefix.addr(),
            prefix_len: b.prefix.prefix_len(),
            port_start: b.ports.start(),
            port_end: b.ports.end(),
            proto: b.proto.number(),
        })
        .collect()
}

#[test]
fn written_files_read_back_as_their_config() {
    let file = TableFile::parse(&TWO_TABLES).expect("valid");
    assert_eq!(file.num_tables(), 2);
    for (index, view) in file.tables().enumerate() {
        let table = &CONFIG_2.tables()[index];
        assert_eq!(view.index(), index);
        assert_eq!(view.backends().collect::<Vec<_>>(), expected_backends(&CONFIG_2, index));
        assert_eq!(view.binds().collect::<Vec<_>>(), expected_binds(&CONFIG_2, index));
        assert_eq!(view.hash_key(), table.hash_key());
        let rows: Vec<(usize, usize)> = generate::rows(table)
            .iter()
            .map(|r| (usize::from(r.primary), usize::from(r.secondary)))
            .collect();
        assert!(view.rows().eq(rows.iter().copied()), "table {index} rows differ");
        // Unused slots are all zero (§3.2).
        let base = block(index);
        let used_backends = table.backends().len();
        assert!(TWO_TABLES[backend_at(index, used_backends)..base + NUM_BINDS].iter().all(|&b| b == 0));
        assert!(TWO_TABLES[bind_at(index, table.binds().len())..base + HASH_KEY].iter().all(|&b| b == 0));
    }
    // Header bytes as in glb-director.md §3.3.
    assert_eq!(
        TWO_TABLES[..HEADER],
        [0x47, 0x4c, 0x42, 0x44, 0x02, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    );
}

#[test]
fn round_trip_matches_the_json_literally() {
    let file = TableFile::parse(&ONE_TABLE).expect("valid");
    let view = file.table(0).expect("table 0");
    assert!(file.table(1).is_none());
    assert_eq!(view.hash_key(), &hex_key("00112233445566778899aabbccddeeff"));
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let backend = |address, state, healthy| BackendInfo { address, state, healthy };
    assert_eq!(
        view.backends().collect::<Vec<_>>(),
        [
            backend(v4(198, 18, 0, 1), SlotState::Active, true),
            backend(v4(198, 18, 0, 2), SlotState::Filling, true),
            backend(v4(198, 18, 0, 3), SlotState::DrainingOrInactive, true),
            backend(v4(198, 18, 0, 4), SlotState::DrainingOrInactive, false),
            backend(v4(192, 0, 2, 200), SlotState::Active, false),
        ]
    );
    let bind = |address, prefix_len, port_start, port_end, proto| BindInfo {
        address,
        prefix_len,
        port_start,
        port_end,
        proto,
    };
    assert_eq!(
        view.binds().collect::<Vec<_>>(),
        [
            bind(v4(192, 0, 2, 10), 32, 80, 80, 6),
            bind(v4(198, 51, 100, 64), 26, 5000, 5100, 17),
            bind(IpAddr::V6("2001:db8::1".parse().expect("address")), 128, 443, 443, 6),
        ]
    );
    // Slot bytes exactly as §3.2: family, address + 12 zero bytes, state, health.
    let at = backend_at(0, 2);
    let mut slot = vec![1, 0, 0, 0, 198, 18, 0, 3];
    slot.extend([0; 12]);
    slot.extend([2, 0, 1, 0]);
    assert_eq!(ONE_TABLE[at..at + BACKEND_SLOT], slot[..]);
    // Good backends exist (slots 0 and 1), so every primary is one of them; the inactive slot 3
    // appears nowhere.
    assert!(view.rows().all(|(p, s)| p <= 1 && s != 3));
}

// ---------------------------------------------------------------------------------------------
// Mutations: never panic, and agree with an independent validator
// ---------------------------------------------------------------------------------------------

/// What an independent reading of glb-director.md §5 plus decisions.md §1 says about a file.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    TooShort,
    Magic,
    Header(usize),
    Size,
    NoTables,
    /// Offsets of every invalid field of the first invalid table (the reader may report any).
    Fields(usize, Vec<usize>),
}

fn model(bytes: &[u8]) -> Verdict {
    if bytes.len() < HEADER {
        return Verdict::TooShort;
    }
    if bytes[..4] != *b"GLBD" {
        return Verdict::Magic;
    }
    for (offset, expected) in [(4, 2), (12, 65_536), (16, 256), (20, 256)] {
        if u32_at(bytes, offset) != expected {
            return Verdict::Header(offset);
        }
    }
    let num_tables = u32_at(bytes, 8);
    if u64::try_from(bytes.len()).ok() != Some(24 + 537_624 * u64::from(num_tables)) {
        return Verdict::Size;
    }
    if num_tables == 0 {
        return Verdict::NoTables;
    }
    for table in 0..to_usize(num_tables) {
        let bad = invalid_fields(bytes, table);
        if !bad.is_empty() {
            return Verdict::Fields(table, bad);
        }
    }
    Verdict::Ok
}

fn invalid_fields(bytes: &[u8], table: usize) -> Vec<usize> {
    let base = block(table);
    let num_backends = to_usize(u32_at(bytes, base));
    let num_binds = to_usize(u32_at(bytes, base + NUM_BINDS));
    let mut bad = Vec::new();
    if !(1..=256).contains(&num_backends) {
        bad.push(base);
    }
    if !(1..=256).contains(&num_binds) {
        bad.push(base + NUM_BINDS);
    }
    if !bad.is_empty() {
        return bad;
    }
    for i in 0..num_binds {
        let at = bind_at(table, i);
        match u32_at(bytes, at) {
            1 if u16_at(bytes, at + 20) > 32 => bad.push(at + 20),
            2 if u16_at(bytes, at + 20) > 128 => bad.push(at + 20),
            1 | 2 => {}
            _ => bad.push(at),
        }
        if ![1, 6, 17].contains(&bytes[at + 26]) {
            bad.push(at + 26);
        }
    }
    for i in 0..num_backends {
        let at = backend_at(table, i);
        if !matches!(u32_at(bytes, at), 1 | 2) {
            bad.push(at);
        }
        if u16_at(bytes, at + 20) > 2 {
            bad.push(at + 20);
        }
        if u16_at(bytes, at + 22) > 1 {
            bad.push(at + 22);
        }
    }
    for row in 0..ROW_COUNT {
        let at = row_at(table, row);
        for field in [at, at + 4] {
            if to_usize(u32_at(bytes, field)) >= num_backends {
                bad.push(field);
            }
        }
    }
    bad
}

fn assert_agrees_with_model(bytes: &[u8], result: &Result<TableFile<'_>, BinaryError>) {
    let verdict = model(bytes);
    match (result, &verdict) {
        (Ok(_), Verdict::Ok)
        | (Err(BinaryError::TooShort { .. }), Verdict::TooShort)
        | (Err(BinaryError::Magic { .. }), Verdict::Magic)
        | (Err(BinaryError::Size { .. }), Verdict::Size)
        | (Err(BinaryError::NoTables), Verdict::NoTables) => {}
        (Err(BinaryError::Header { offset, .. }), Verdict::Header(expected)) => {
            assert_eq!(offset, expected);
        }
        (Err(e @ BinaryError::Field { table, offset, .. }), Verdict::Fields(bad_table, offsets)) => {
            assert_eq!(table, bad_table, "{e}");
            assert!(
                offsets.contains(offset),
                "{e}: offset {offset} is not one of the invalid fields {offsets:?}"
            );
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("table {table}: "))
                    && message.contains(&format!(" at offset {offset}: ")),
                "{message}"
            );
        }
        _ => panic!("reader said {result:?}, an independent check says {verdict:?}"),
    }
}

/// Uses every accessor of every table of an accepted file.
fn exercise(file: &TableFile<'_>, tables: usize) {
    assert_eq!(file.num_tables(), tables);
    let flows = [
        FlowKey {
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            src_port: 40_000,
            dst_port: 80,
        },
        FlowKey {
            src: IpAddr::V6("2001:db8:ffff::9".parse().expect("address")),
            dst: IpAddr::V6("2001:db8::1".parse().expect("address")),
            src_port: 0,
            dst_port: 443,
        },
        FlowKey {
            src: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 250)),
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 81)),
            src_port: 65_535,
            dst_port: 81,
        },
    ];
    let all = HashFields::new(true, true, true, true).expect("fields chosen");
    for view in file.tables() {
        exercise_table(&view, &flows, all);
    }
    let classifier = forwarding_table::Classifier::new(file);
    for flow in &flows {
        for proto in [1, 6, 17] {
            for port in [Some(flow.dst_port), None] {
                if let Some(t) = classifier.transport(flow.dst, proto, port) {
                    assert!(t < tables);
                }
            }
        }
        for t in [classifier.address(flow.dst), classifier.icmp_error(flow.dst, flow.src, flow.src_port)] {
            assert!(t.is_none_or(|t| t < tables));
        }
    }
}

fn exercise_table(view: &TableView<'_>, flows: &[FlowKey], all: HashFields) {
    let n = view.backends().len();
    assert!((1..=256).contains(&n));
    assert_eq!(view.backend_slots().len(), n);
    let binds: Vec<BindInfo> = view.binds().collect();
    assert!((1..=256).contains(&binds.len()));
    assert_eq!(view.bind_slots().len(), binds.len());
    for bind in &binds {
        assert!(bind.prefix_len <= if bind.address.is_ipv4() { 32 } else { 128 });
        assert!(matches!(bind.proto, 1 | 6 | 17));
    }
    assert_eq!(view.rows().len(), ROW_COUNT);
    for (p, s) in view.rows() {
        assert!(p < n && s < n, "row ({p}, {s}) with {n} backends");
        let _ = (view.hop(p), view.hop(s));
    }
    for flow in flows {
        for alt in [None, Some(all)] {
            let selection = view.select(flow, HashFields::default(), alt);
            assert_eq!(selection.table, view.index());
            assert_eq!(u64::from(selection.row), selection.pkt_hash & 0xffff);
            assert_eq!(view.row(selection.row), (selection.primary, selection.secondary));
            assert!(selection.primary < n && selection.secondary < n);
            let hops = selection.hops.as_slice();
            assert_eq!(hops.len(), if alt.is_some() { 4 } else { 2 });
            assert_eq!(hops[0], view.hop(selection.primary));
            assert_eq!(hops[1], view.hop(selection.secondary));
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite single bytes.
    Overwrite(Vec<(usize, u8)>),
    /// Cut the file to this length (clamped).
    Truncate(usize),
    /// Append bytes.
    Append(Vec<u8>),
    /// Set `num_tables` and resize to match, padding with copies of table 0.
    Reframe(u32),
}

/// A file offset, biased toward the header, counts, used slots, the hash key and rows.
fn offset(tables: usize, len: usize) -> impl Strategy<Value = usize> {
    let in_block = prop_oneof![
        1 => 0usize..4,
        1 => NUM_BINDS..NUM_BINDS + 4,
        3 => BACKENDS..BACKENDS + 6 * BACKEND_SLOT,
        3 => BINDS..BINDS + 4 * BIND_SLOT,
        2 => HASH_KEY..ROWS,
        8 => (0..ROW_COUNT, 0usize..8).prop_map(|(row, byte)| ROWS + 8 * row + byte),
    ];
    prop_oneof![
        1 => 0..HEADER,
        18 => (0..tables, in_block).prop_map(|(table, within)| block(table) + within),
        2 => 0..len,
    ]
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![2 => any::<u8>(), 4 => 0u8..5, 1 => Just(0xff)]
}

/// Overwrites of 1..=8 bytes, then, in about a third of the cases, a truncation, an append or a
/// change of the table count.
fn mutations(tables: usize, len: usize) -> impl Strategy<Value = Vec<Mutation>> {
    let overwrite = prop::collection::vec((offset(tables, len), byte()), 1..=8).prop_map(Mutation::Overwrite);
    let frame = prop_oneof![
        prop_oneof![0..=len, 0..=HEADER + 8, len - 64..=len].prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Append),
        (0u32..=3).prop_map(Mutation::Reframe),
    ];
    (overwrite, prop::option::weighted(0.3, frame))
        .prop_map(|(overwrite, frame)| std::iter::once(overwrite).chain(frame).collect())
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    match mutation {
        Mutation::Overwrite(writes) => {
            for &(at, value) in writes {
                if let Some(b) = bytes.get_mut(at) {
                    *b = value;
                }
            }
        }
        Mutation::Truncate(len) => bytes.truncate(*len),
        Mutation::Append(extra) => bytes.extend_from_slice(extra),
        Mutation::Reframe(tables) => {
            if bytes.len() >= HEADER + BLOCK {
                let first = bytes[HEADER..HEADER + BLOCK].to_vec();
                let len = HEADER + BLOCK * to_usize(*tables);
                while bytes.len() < len {
                    bytes.extend_from_slice(&first);
                }
                bytes.truncate(len);
                put_u32(bytes, 8, *tables);
            }
        }
    }
}

fn check_mutated(original: &[u8], mutations: &[Mutation]) {
    let mut bytes = original.to_vec();
    for m in mutations {
        apply(&mut bytes, m);
    }
    let result = TableFile::parse(&bytes);
    assert_agrees_with_model(&bytes, &result);
    match result {
        Ok(file) => {
            let tables = to_usize(u32_at(&bytes, 8));
            exercise(&file, tables);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn mutated_one_table_files_never_panic(
        mutations in mutations(1, 537_648),
    ) {
        check_mutated(&ONE_TABLE, &mutations);
    }

    #[test]
    fn mutated_two_table_files_never_panic(
        mutations in mutations(2, 1_075_272),
    ) {
        check_mutated(&TWO_TABLES, &mutations);
    }
}

/// An edit that keeps a file valid.
#[derive(Debug, Clone)]
enum ValidEdit {
    Row { row: u16, primary: u32, secondary: u32 },
    Backend { slot: usize, address: [u8; 4], state: u16, healthy: bool },
    Bind { slot: usize, ip_bits: u16, proto: u8, ports: (u16, u16) },
    HashKey([u8; 16]),
}

/// Valid edits for table `table` of [`TWO_TABLES`].
fn valid_edit(table: usize) -> impl Strategy<Value = ValidEdit> {
    let n = to_u32(CONFIG_2.tables()[table].backends().len());
    let binds = CONFIG_2.tables()[table].binds().len();
    prop_oneof![
        4 => (any::<u16>(), 0..n, 0..n).prop_map(|(row, primary, secondary)| ValidEdit::Row {
            row,
            primary,
            secondary,
        }),
        2 => (0..to_usize(n), any::<[u8; 4]>(), 0u16..=2, any::<bool>()).prop_map(
            |(slot, address, state, healthy)| ValidEdit::Backend {
                slot,
                address,
                state,
                healthy,
            }
        ),
        2 => (0..binds, 0u16..=32, prop::sample::select(vec![1u8, 6, 17]), any::<(u16, u16)>())
            .prop_map(|(slot, ip_bits, proto, ports)| ValidEdit::Bind {
                slot,
                ip_bits,
                proto,
                ports,
            }),
        1 => any::<[u8; 16]>().prop_map(ValidEdit::HashKey),
    ]
}

fn apply_valid(bytes: &mut [u8], table: usize, edit: &ValidEdit) {
    match *edit {
        ValidEdit::Row { row, primary, secondary } => {
            let at = row_at(table, usize::from(row));
            put_u32(bytes, at, primary);
            put_u32(bytes, at + 4, secondary);
        }
        ValidEdit::Backend { slot, address, state, healthy } => {
            let at = backend_at(table, slot);
            put_u32(bytes, at, 1);
            bytes[at + 4..at + 20].fill(0);
            bytes[at + 4..at + 8].copy_from_slice(&address);
            put_u16(bytes, at + 20, state);
            put_u16(bytes, at + 22, u16::from(healthy));
        }
        ValidEdit::Bind { slot, ip_bits, proto, ports: (start, end) } => {
            let at = bind_at(table, slot);
            put_u16(bytes, at + 20, ip_bits);
            put_u16(bytes, at + 22, start);
            put_u16(bytes, at + 24, end);
            bytes[at + 26] = proto;
        }
        ValidEdit::HashKey(key) => {
            let at = block(table) + HASH_KEY;
            bytes[at..at + 16].copy_from_slice(&key);
        }
    }
}

/// Checks that the last edit of each location is what the view reports.
fn assert_visible(view: &TableView<'_>, edits: &[ValidEdit]) {
    let mut seen = std::collections::HashSet::new();
    for edit in edits.iter().rev() {
        match *edit {
            ValidEdit::Row { row, primary, secondary } => {
                if seen.insert(("row", usize::from(row))) {
                    assert_eq!(view.row(row), (to_usize(primary), to_usize(secondary)));
                }
            }
            ValidEdit::Backend { slot, address, state, healthy } => {
                if seen.insert(("backend", slot)) {
                    let info = view.backends().nth(slot).expect("slot is used");
                    assert_eq!(info.address, IpAddr::V4(Ipv4Addr::from(address)));
                    assert_eq!(view.hop(slot), Ipv4Addr::from(address));
                    let expected = [SlotState::Filling, SlotState::Active, SlotState::DrainingOrInactive]
                        [usize::from(state)];
                    assert_eq!(info.state, expected);
                    assert_eq!(info.healthy, healthy);
                }
            }
            ValidEdit::Bind { slot, ip_bits, proto, ports } => {
                if seen.insert(("bind", slot)) {
                    let info = view.binds().nth(slot).expect("slot is used");
                    assert_eq!(u16::from(info.prefix_len), ip_bits);
                    assert_eq!(info.proto, proto);
                    assert_eq!((info.port_start, info.port_end), ports);
                }
            }
            ValidEdit::HashKey(key) => {
                if seen.insert(("hash_key", 0)) {
                    assert_eq!(view.hash_key(), &key);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Edits that keep every field valid are accepted, and the view shows exactly what was written.
    #[test]
    fn valid_edits_are_accepted_and_visible(
        edits_0 in prop::collection::vec(valid_edit(0), 1..=12),
        edits_1 in prop::collection::vec(valid_edit(1), 1..=12),
    ) {
        let mut bytes = two_tables();
        for edit in &edits_0 {
            apply_valid(&mut bytes, 0, edit);
        }
        for edit in &edits_1 {
            apply_valid(&mut bytes, 1, edit);
        }
        let file = match TableFile::parse(&bytes) {
            Ok(file) => file,
            Err(e) => panic!("valid edits were rejected: {e}"),
        };
        assert_visible(&file.table(0).expect("table 0"), &edits_0);
        assert_visible(&file.table(1).expect("table 1"), &edits_1);
        exercise(&file, 2);
    }
}
