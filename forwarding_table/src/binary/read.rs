//! Zero-copy, fully validated reading of GLBD v2 files.
//!
//! Validation covers everything GLB's loader checks (glb-director.md §5), in the same order, plus
//! what GLB leaves to chance: `max_num_binds`, every bind's prefix length, backend state and health
//! codes, and that every row names a used backend slot (GLB would tunnel to 0.0.0.0). Files that
//! GLB's CLI wrote from JSON our CLI refuses (reversed port ranges, IPv6 backends, overlapping
//! binds, host bits) still load: the director must run GLB-built tables (decisions.md §4).

use super::layout::{
    self, BACKENDS_OFFSET, BINDS_OFFSET, BLOCK_LEN, BackendSlot, BindSlot, FileHeader, HEADER_LEN,
    NUM_BINDS_OFFSET, ROWS_OFFSET, RowSlot, TableBlock,
};
use crate::{MAX_BACKENDS, MAX_BINDS};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;
use zerocopy::FromBytes;

/// Why a binary table was rejected. Offsets are from the start of the file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BinaryError {
    /// Shorter than the header.
    #[error("file is {len} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// File length.
        len: usize,
    },
    /// Not a GLB table at all.
    #[error("invalid magic word {found:02x?} at offset 0, expected \"GLBD\"")]
    Magic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A header field has a value this format version does not allow.
    #[error("invalid {field} at offset {offset}: expected {expected}, got {found}")]
    Header {
        /// Field name.
        field: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// The only accepted value.
        expected: u32,
        /// What the file holds.
        found: u32,
    },
    /// Truncated or extended.
    #[error("file is {found} bytes, expected {expected} for {num_tables} table(s) (24 + 537624 per table)")]
    Size {
        /// Header's table count.
        num_tables: u32,
        /// Size implied by the header.
        expected: u64,
        /// Actual size.
        found: usize,
    },
    /// The header declares no tables.
    #[error("file has 0 tables, expected at least 1")]
    NoTables,
    /// A field inside a table block is invalid.
    #[error("table {table}: {field} at offset {offset}: {problem}")]
    Field {
        /// Table index.
        table: usize,
        /// Field, e.g. `binds[3].proto` or `rows[123].secondary`.
        field: String,
        /// Byte offset of the field in the file.
        offset: usize,
        /// What is wrong and what is expected.
        problem: String,
    },
}

/// A validated binary table file borrowed from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct TableFile<'a> {
    blocks: &'a [TableBlock],
}

impl<'a> TableFile<'a> {
    /// Validates `bytes` completely and returns a view of it.
    ///
    /// # Errors
    /// The first problem found, naming the table, field and byte offset.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BinaryError> {
        let Ok((header, rest)) = FileHeader::ref_from_prefix(bytes) else {
            return Err(BinaryError::TooShort { len: bytes.len() });
        };
        if header.magic != layout::MAGIC {
            return Err(BinaryError::Magic { found: header.magic });
        }
        let fields = [
            ("version", 4, layout::VERSION, header.version.get()),
            ("table_entries", 12, 65_536, header.table_entries.get()),
            ("max_num_backends", 16, 256, header.max_num_backends.get()),
            ("max_num_binds", 20, 256, header.max_num_binds.get()),
        ];
        for (field, offset, expected, found) in fields {
            if found != expected {
                return Err(BinaryError::Header { field, offset, expected, found });
            }
        }
        let num_tables = header.num_tables.get();
        let expected = HEADER_LEN as u64 + BLOCK_LEN as u64 * u64::from(num_tables);
        if bytes.len() as u64 != expected {
            return Err(BinaryError::Size { num_tables, expected, found: bytes.len() });
        }
        if num_tables == 0 {
            return Err(BinaryError::NoTables);
        }
        let blocks = <[TableBlock]>::ref_from_bytes(rest).map_err(|_| BinaryError::Size {
            num_tables,
            expected,
            found: bytes.len(),
        })?;
        for (index, block) in blocks.iter().enumerate() {
            validate_block(index, block)?;
        }
        Ok(Self { blocks })
    }

    /// Re-views bytes that [`Self::parse`] already accepted, without re-validating them.
    pub(crate) fn revalidated(bytes: &'a [u8]) -> Self {
        let blocks = <[TableBlock]>::ref_from_bytes(&bytes[HEADER_LEN..])
            .expect("the bytes were accepted by TableFile::parse when the table was loaded");
        Self { blocks }
    }

    /// Number of tables (at least 1).
    #[must_use]
    pub fn num_tables(&self) -> usize {
        self.blocks.len()
    }

    /// Table `index`, if it exists.
    #[must_use]
    pub fn table(&self, index: usize) -> Option<TableView<'a>> {
        self.blocks.get(index).map(|block| TableView { index, block })
    }

    /// All tables, in file order.
    pub fn tables(&self) -> impl ExactSizeIterator<Item = TableView<'a>> + 'a {
        self.blocks.iter().enumerate().map(|(index, block)| TableView { index, block })
    }
}

fn validate_block(table: usize, block: &TableBlock) -> Result<(), BinaryError> {
    let base = HEADER_LEN + table * BLOCK_LEN;
    let err = |field: String, offset: usize, problem: String| BinaryError::Field {
        table,
        field,
        offset: base + offset,
        problem,
    };
    let num_backends = to_usize(block.num_backends.get());
    let num_binds = to_usize(block.num_binds.get());
    if !(1..=MAX_BACKENDS).contains(&num_backends) {
        return Err(err("num_backends".into(), 0, format!("expected 1..=256, got {num_backends}")));
    }
    if !(1..=MAX_BINDS).contains(&num_binds) {
        return Err(err("num_binds".into(), NUM_BINDS_OFFSET, format!("expected 1..=256, got {num_binds}")));
    }
    for (i, slot) in block.binds[..num_binds].iter().enumerate() {
        let offset = BINDS_OFFSET + i * size_of::<BindSlot>();
        let max_bits = match slot.family.get() {
            layout::FAMILY_IPV4 => 32,
            layout::FAMILY_IPV6 => 128,
            f => {
                return Err(err(
                    format!("binds[{i}].family"),
                    offset,
                    format!("expected 1 (IPv4) or 2 (IPv6), got {f}"),
                ));
            }
        };
        if slot.ip_bits.get() > max_bits {
            let got = slot.ip_bits.get();
            return Err(err(
                format!("binds[{i}].ip_bits"),
                offset + 20,
                format!("expected 0..={max_bits}, got {got}"),
            ));
        }
        if !matches!(slot.proto, 1 | 6 | 17) {
            let got = slot.proto;
            return Err(err(
                format!("binds[{i}].proto"),
                offset + 26,
                format!("expected 1, 6 or 17, got {got}"),
            ));
        }
    }
    for (i, slot) in block.backends[..num_backends].iter().enumerate() {
        let offset = BACKENDS_OFFSET + i * size_of::<BackendSlot>();
        let family = slot.family.get();
        if family != layout::FAMILY_IPV4 && family != layout::FAMILY_IPV6 {
            return Err(err(
                format!("backends[{i}].family"),
                offset,
                format!("expected 1 (IPv4) or 2 (IPv6), got {family}"),
            ));
        }
        if slot.state.get() > 2 {
            let got = slot.state.get();
            return Err(err(
                format!("backends[{i}].state"),
                offset + 20,
                format!("expected 0, 1 or 2, got {got}"),
            ));
        }
        if slot.health.get() > 1 {
            let got = slot.health.get();
            return Err(err(
                format!("backends[{i}].health"),
                offset + 22,
                format!("expected 0 or 1, got {got}"),
            ));
        }
    }
    for (r, row) in block.rows.iter().enumerate() {
        let offset = ROWS_OFFSET + r * size_of::<RowSlot>();
        for (name, index, at) in [("primary", row.primary.get(), 0), ("secondary", row.secondary.get(), 4)] {
            if to_usize(index) >= num_backends {
                return Err(err(
                    format!("rows[{r}].{name}"),
                    offset + at,
                    format!("backend index {index} is not below num_backends {num_backends}"),
                ));
            }
        }
    }
    Ok(())
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// One validated table of a [`TableFile`].
#[derive(Debug, Clone, Copy)]
pub struct TableView<'a> {
    index: usize,
    block: &'a TableBlock,
}

impl<'a> TableView<'a> {
    /// Position of this table in the file.
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// The per-packet SipHash key.
    #[must_use]
    pub fn hash_key(&self) -> &'a [u8; 16] {
        &self.block.hash_key
    }

    /// The used backend slots (1..=256).
    #[must_use]
    pub fn backend_slots(&self) -> &'a [BackendSlot] {
        &self.block.backends[..to_usize(self.block.num_backends.get())]
    }

    /// The used bind slots (1..=256).
    #[must_use]
    pub fn bind_slots(&self) -> &'a [BindSlot] {
        &self.block.binds[..to_usize(self.block.num_binds.get())]
    }

    /// Decoded backends, in slot order.
    pub fn backends(&self) -> impl ExactSizeIterator<Item = BackendInfo> + 'a {
        self.backend_slots().iter().map(BackendInfo::from_slot)
    }

    /// Decoded binds, in slot order.
    pub fn binds(&self) -> impl ExactSizeIterator<Item = BindInfo> + 'a {
        self.bind_slots().iter().map(BindInfo::from_slot)
    }

    /// Backend slot indices of row `row`: (primary, secondary), each below the backend count.
    #[must_use]
    pub fn row(&self, row: u16) -> (usize, usize) {
        let slot = &self.block.rows[usize::from(row)];
        (to_usize(slot.primary.get()), to_usize(slot.secondary.get()))
    }

    /// The slot of row `row` (what [`Self::row`] reads), e.g. to prefetch it.
    #[must_use]
    pub fn row_slot(&self, row: u16) -> &'a RowSlot {
        &self.block.rows[usize::from(row)]
    }

    /// All rows as (primary, secondary) slot indices.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = (usize, usize)> + 'a {
        self.block.rows.iter().map(|r| (to_usize(r.primary.get()), to_usize(r.secondary.get())))
    }

    /// The tunnel address for backend slot `index`: the first 4 bytes of its address field
    /// (GLB does this even for IPv6 backends, glb-director.md §7.3).
    #[must_use]
    pub fn hop(&self, index: usize) -> Ipv4Addr {
        let a = &self.block.backends[index].address;
        Ipv4Addr::new(a[0], a[1], a[2], a[3])
    }
}

/// A backend's state as the binary records it (draining and inactive share a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// Code 0.
    Filling,
    /// Code 1.
    Active,
    /// Code 2.
    DrainingOrInactive,
}

impl SlotState {
    /// Human name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Filling => "filling",
            Self::Active => "active",
            Self::DrainingOrInactive => "draining/inactive",
        }
    }
}

/// A decoded backend slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendInfo {
    /// The backend's address.
    pub address: IpAddr,
    /// Its recorded state.
    pub state: SlotState,
    /// Its recorded health.
    pub healthy: bool,
}

impl BackendInfo {
    fn from_slot(slot: &BackendSlot) -> Self {
        Self {
            address: decode(slot.family.get(), &slot.address),
            state: match slot.state.get() {
                0 => SlotState::Filling,
                1 => SlotState::Active,
                _ => SlotState::DrainingOrInactive,
            },
            healthy: slot.health.get() == 1,
        }
    }
}

/// A decoded bind slot, as stored (host bits possibly set, range possibly reversed in GLB files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindInfo {
    /// The address as stored.
    pub address: IpAddr,
    /// Prefix length (validated against the family).
    pub prefix_len: u8,
    /// First port.
    pub port_start: u16,
    /// Last port.
    pub port_end: u16,
    /// IP protocol number: 1, 6 or 17.
    pub proto: u8,
}

impl BindInfo {
    fn from_slot(slot: &BindSlot) -> Self {
        Self {
            address: decode(slot.family.get(), &slot.address),
            prefix_len: u8::try_from(slot.ip_bits.get()).unwrap_or(u8::MAX),
            port_start: slot.port_start.get(),
            port_end: slot.port_end.get(),
            proto: slot.proto,
        }
    }
}

fn decode(family: u32, address: &[u8; 16]) -> IpAddr {
    if family == layout::FAMILY_IPV6 {
        IpAddr::V6(Ipv6Addr::from(*address))
    } else {
        IpAddr::V4(Ipv4Addr::new(address[0], address[1], address[2], address[3]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_must_name_used_slots() {
        let json = r#"{"tables":[{"hash_key":"12345678901234561234567890123456","seed":"12345678901234561234567890123456",
            "binds":[{"ip":"192.0.2.1","proto":"tcp","port":80}],
            "backends":[{"ip":"198.51.100.1","state":"active","healthy":true},{"ip":"198.51.100.2","state":"active","healthy":true}]}]}"#;
        let config = crate::config::parse(json).expect("valid").config;
        let mut bytes = crate::build_binary(&config);
        assert!(TableFile::parse(&bytes).is_ok());
        let at = HEADER_LEN + ROWS_OFFSET + 8 * 7 + 4;
        bytes[at] = 2;
        let err = TableFile::parse(&bytes).expect_err("row 7 names slot 2 of 2");
        assert_eq!(
            err.to_string(),
            format!("table 0: rows[7].secondary at offset {at}: backend index 2 is not below num_backends 2")
        );
    }
}
