//! SipHash-2-4, the one hash GLB uses for both row generation and per-packet lookup.
//!
//! GLB treats SipHash output in two byte orders, and mixing them up silently breaks compatibility,
//! so both readings live here and nowhere else:
//! - the *digest* is the little-endian encoding of the 64-bit result; a row seed is that digest;
//! - a rendezvous *score* reads the digest big-endian; a packet hash reads it little-endian.

use siphasher::sip::SipHasher24;
use std::hash::Hasher;

/// A 16-byte SipHash key (`hash_key` or `seed` in the JSON).
pub type Key = [u8; 16];

/// SipHash-2-4 of `bytes`, as the little-endian `u64` (GLB's `pkt_hash`).
#[inline]
#[must_use]
pub fn siphash(key: &Key, bytes: &[u8]) -> u64 {
    SipHasher24::new_with_key(key).hash(bytes)
}

/// The 8-byte row seed of row `row`: the digest of the row number as 4 big-endian bytes.
#[must_use]
pub fn row_seed(seed: &Key, row: u32) -> [u8; 8] {
    siphash(seed, &row.to_be_bytes()).to_le_bytes()
}

/// Scores candidates of one row: `SipHash(seed, row_seed ‖ address)` read big-endian.
///
/// The row seed is exactly one SipHash block, so it is absorbed once per row and the hasher state
/// is copied per candidate; only the address block and finalisation run per candidate.
#[derive(Clone, Copy, Debug)]
pub struct RowScorer {
    after_seed: SipHasher24,
}

impl RowScorer {
    /// Prepares the scorer for `row` of a table built with `seed`.
    #[must_use]
    pub fn new(seed: &Key, row: u32) -> Self {
        let mut after_seed = SipHasher24::new_with_key(seed);
        after_seed.write(&row_seed(seed, row));
        Self { after_seed }
    }

    /// The rendezvous score of an IPv4 backend address; lower ranks first.
    #[inline]
    #[must_use]
    pub fn score(&self, address: [u8; 4]) -> u64 {
        let mut hasher = self.after_seed;
        // `write_u32(i)` appends `i.to_ne_bytes()` (the `Hasher` contract), i.e. exactly the
        // address bytes, through siphasher's short-write path: a quarter faster than `write`.
        hasher.write_u32(u32::from_ne_bytes(address));
        hasher.finish().swap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_SEED: Key = *b"\x49\xa3\xd8\x61\xd6\x61\xae\x5a\xb0\x6e\xd9\x32\x68\x71\xa2\xf5";

    // Vectors from GLB's tests/test_rendezvous_table.py (glb-director.md §4).
    #[test]
    fn row_seeds_match_upstream_vectors() {
        assert_eq!(row_seed(&DOC_SEED, 0), 0x491c_53a7_2df4_c837_u64.to_be_bytes());
        assert_eq!(row_seed(&DOC_SEED, 0xffff), 0xf223_c0cc_6516_1620_u64.to_be_bytes());
    }

    #[test]
    fn scores_order_hosts_like_upstream() {
        let order = |row: u32| {
            let scorer = RowScorer::new(&DOC_SEED, row);
            let mut hosts: Vec<u8> = vec![1, 2, 3, 4];
            hosts.sort_by_key(|&h| scorer.score([1, 1, 1, h]));
            hosts
        };
        assert_eq!(order(0), [4, 3, 2, 1]);
        assert_eq!(order(0xffff), [1, 2, 4, 3]);
        assert_eq!(order(0xbb44), [4, 1, 2, 3]);
    }

    #[test]
    fn scorer_equals_one_shot_hash_of_concatenation() {
        let scorer = RowScorer::new(&DOC_SEED, 77);
        let mut input = row_seed(&DOC_SEED, 77).to_vec();
        input.extend_from_slice(&[192, 0, 2, 77]);
        assert_eq!(scorer.score([192, 0, 2, 77]), siphash(&DOC_SEED, &input).swap_bytes());
    }

    // glb-director.md §7.3: key 12345678901234561234567890123456, src 10.11.12.13 → 008972f1657a5cbd.
    #[test]
    fn packet_hash_matches_upstream_vector() {
        let key: Key = *b"\x12\x34\x56\x78\x90\x12\x34\x56\x12\x34\x56\x78\x90\x12\x34\x56";
        assert_eq!(siphash(&key, &[10, 11, 12, 13]), 0x0089_72f1_657a_5cbd);
    }
}
