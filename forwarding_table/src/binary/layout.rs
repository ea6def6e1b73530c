//! Byte layout of the binary table. GLB writes raw packed x86 structs; these mirror them with
//! explicit endianness so the layout is the same on any host.

use crate::{MAX_BACKENDS, MAX_BINDS, TABLE_ENTRIES};
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `"GLBD"`: the magic word (the little-endian u32 0x44424C47).
pub const MAGIC: [u8; 4] = *b"GLBD";
/// The only format version GLB and we read and write.
pub const VERSION: u32 = 2;
/// `family` value of an IPv4 slot.
pub const FAMILY_IPV4: u32 = 1;
/// `family` value of an IPv6 slot.
pub const FAMILY_IPV6: u32 = 2;

/// The 24-byte file header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct FileHeader {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// [`VERSION`].
    pub version: U32,
    /// Number of table blocks that follow.
    pub num_tables: U32,
    /// Rows per table: 65 536.
    pub table_entries: U32,
    /// Backend slots per table: 256.
    pub max_num_backends: U32,
    /// Bind slots per table: 256.
    pub max_num_binds: U32,
}

/// One backend slot (24 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct BackendSlot {
    /// [`FAMILY_IPV4`], [`FAMILY_IPV6`], or 0 in unused slots.
    pub family: U32,
    /// Network-order address; IPv4 uses the first 4 bytes, the rest are zero.
    pub address: [u8; 16],
    /// 0 filling, 1 active, 2 draining or inactive.
    pub state: U16,
    /// 1 healthy, 0 not.
    pub health: U16,
}

/// One bind slot (28 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct BindSlot {
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: U32,
    /// Network-order address, encoded like [`BackendSlot::address`].
    pub address: [u8; 16],
    /// Prefix length.
    pub ip_bits: U16,
    /// First destination port.
    pub port_start: U16,
    /// Last destination port (inclusive).
    pub port_end: U16,
    /// IP protocol number (6, 17; GLB's loader also accepts 1).
    pub proto: u8,
    /// Always 0.
    pub reserved: u8,
}

/// One row: backend slot indices.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct RowSlot {
    /// Primary backend slot.
    pub primary: U32,
    /// Secondary backend slot.
    pub secondary: U32,
}

/// One table block (537 624 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug)]
#[repr(C)]
pub struct TableBlock {
    /// Number of backends (the JSON array's length; must be 1..=256 to load).
    pub num_backends: U32,
    /// Backend slots; the first `num_backends` are used.
    pub backends: [BackendSlot; MAX_BACKENDS],
    /// Number of binds (must be 1..=256 to load).
    pub num_binds: U32,
    /// Bind slots; the first `num_binds` are used.
    pub binds: [BindSlot; MAX_BINDS],
    /// Per-packet SipHash key.
    pub hash_key: [u8; 16],
    /// The rows.
    pub rows: [RowSlot; TABLE_ENTRIES],
}

/// Size of [`FileHeader`].
pub const HEADER_LEN: usize = size_of::<FileHeader>();
/// Size of [`TableBlock`].
pub const BLOCK_LEN: usize = size_of::<TableBlock>();
/// Offset of `backends` in a block.
pub const BACKENDS_OFFSET: usize = 4;
/// Offset of `num_binds` in a block.
pub const NUM_BINDS_OFFSET: usize = BACKENDS_OFFSET + MAX_BACKENDS * size_of::<BackendSlot>();
/// Offset of `binds` in a block.
pub const BINDS_OFFSET: usize = NUM_BINDS_OFFSET + 4;
/// Offset of `hash_key` in a block.
pub const HASH_KEY_OFFSET: usize = BINDS_OFFSET + MAX_BINDS * size_of::<BindSlot>();
/// Offset of `rows` in a block.
pub const ROWS_OFFSET: usize = HASH_KEY_OFFSET + 16;

const _: () = {
    assert!(HEADER_LEN == 24);
    assert!(size_of::<BackendSlot>() == 24);
    assert!(size_of::<BindSlot>() == 28);
    assert!(size_of::<RowSlot>() == 8);
    assert!(ROWS_OFFSET == 13_336);
    assert!(BLOCK_LEN == 537_624);
};

/// The size of a file with `num_tables` tables.
#[must_use]
pub fn file_len(num_tables: usize) -> usize {
    HEADER_LEN + BLOCK_LEN * num_tables
}
