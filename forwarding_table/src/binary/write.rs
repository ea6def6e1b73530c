//! Config → GLBD v2 bytes.

use super::layout::{self, BackendSlot, BindSlot, FileHeader, TableBlock};
use crate::config::{BackendState, Config, Table};
use crate::generate;
use crate::{MAX_BACKENDS, MAX_BINDS, TABLE_ENTRIES};
use std::net::IpAddr;
use zerocopy::FromBytes;

/// Builds the complete binary file for `config`, rows included.
#[must_use]
pub fn build_binary(config: &Config) -> Vec<u8> {
    let tables = config.tables();
    let mut out = vec![0u8; layout::file_len(tables.len())];
    let (header, blocks) = FileHeader::mut_from_prefix(&mut out).expect("the buffer is sized for the header");
    *header = FileHeader {
        magic: layout::MAGIC,
        version: layout::VERSION.into(),
        num_tables: count(tables.len()).into(),
        table_entries: count(TABLE_ENTRIES).into(),
        max_num_backends: count(MAX_BACKENDS).into(),
        max_num_binds: count(MAX_BINDS).into(),
    };
    let blocks = <[TableBlock]>::mut_from_bytes(blocks).expect("the buffer is sized for whole table blocks");
    for (block, table) in blocks.iter_mut().zip(tables) {
        write_table(block, table);
    }
    out
}

fn count(n: usize) -> u32 {
    u32::try_from(n).expect("validated counts fit in u32")
}

fn write_table(block: &mut TableBlock, table: &Table) {
    block.num_backends = count(table.backends().len()).into();
    for (slot, backend) in block.backends.iter_mut().zip(table.backends()) {
        let state: u16 = match backend.state {
            BackendState::Filling => 0,
            BackendState::Active => 1,
            BackendState::Draining | BackendState::Inactive => 2,
        };
        *slot = BackendSlot {
            family: layout::FAMILY_IPV4.into(),
            address: encode(IpAddr::V4(backend.address)).1,
            state: state.into(),
            health: u16::from(backend.healthy).into(),
        };
    }
    block.num_binds = count(table.binds().len()).into();
    for (slot, bind) in block.binds.iter_mut().zip(table.binds()) {
        let (family, address) = encode(bind.prefix.addr());
        *slot = BindSlot {
            family: family.into(),
            address,
            ip_bits: u16::from(bind.prefix.prefix_len()).into(),
            port_start: bind.ports.start().into(),
            port_end: bind.ports.end().into(),
            proto: bind.proto.number(),
            reserved: 0,
        };
    }
    block.hash_key = *table.hash_key();
    for (slot, row) in block.rows.iter_mut().zip(generate::rows(table)) {
        slot.primary = u32::from(row.primary).into();
        slot.secondary = u32::from(row.secondary).into();
    }
}

/// Family code and the 16-byte address field (IPv4 in the first 4 bytes, zero-padded).
fn encode(addr: IpAddr) -> (u32, [u8; 16]) {
    let mut bytes = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            bytes[..4].copy_from_slice(&a.octets());
            (layout::FAMILY_IPV4, bytes)
        }
        IpAddr::V6(a) => (layout::FAMILY_IPV6, a.octets()),
    }
}
