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

/// Longest packet-hash input: two IPv6 addresses and two ports.
pub const SHORT_MAX: usize = 36;

/// A packet-hash input under assembly, as [`siphash_short`] reads it: a length and whole
/// 8-byte blocks. [`ShortInput`] holds any flow's input; [`SmallInput`] an IPv4 flow's.
pub trait HashInput {
    /// Empties the input.
    fn clear(&mut self);
    /// Appends `bytes`; returns `false`, appending nothing, if they do not fit.
    fn push(&mut self, bytes: &[u8]) -> bool;
    /// The input's length in bytes.
    fn byte_len(&self) -> usize;
    /// Input block `index` (bytes `8 * index..8 * index + 8`) as a little-endian word, zero
    /// past the end of the input.
    fn block(&self, index: usize) -> u64;
}

/// A packet-hash input of at most [`SHORT_MAX`] bytes, zero-padded to whole 8-byte blocks so
/// that SipHash reads it as words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortInput {
    /// The input, then zeros (an invariant the hashing relies on: the last block is read whole).
    bytes: [u8; 40],
    len: usize,
}

impl Default for ShortInput {
    fn default() -> Self {
        Self::new()
    }
}

impl ShortInput {
    /// The empty input.
    #[must_use]
    pub const fn new() -> Self {
        Self { bytes: [0; 40], len: 0 }
    }

    /// Empties the input (and restores the zero padding).
    #[inline]
    pub fn clear(&mut self) {
        self.bytes = [0; 40];
        self.len = 0;
    }

    /// Appends `bytes`; returns `false`, appending nothing, if they do not fit in
    /// [`SHORT_MAX`].
    #[inline]
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + bytes.len();
        match self.bytes.get_mut(self.len..end) {
            Some(dst) if end <= SHORT_MAX => {
                dst.copy_from_slice(bytes);
                self.len = end;
                true
            }
            _ => false,
        }
    }

    /// The input bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl HashInput for ShortInput {
    #[inline]
    fn clear(&mut self) {
        ShortInput::clear(self);
    }

    #[inline]
    fn push(&mut self, bytes: &[u8]) -> bool {
        ShortInput::push(self, bytes)
    }

    #[inline]
    fn byte_len(&self) -> usize {
        self.len
    }

    #[inline]
    fn block(&self, index: usize) -> u64 {
        let mut word = [0u8; 8];
        if let Some(bytes) = self.bytes.get(index * 8..index * 8 + 8) {
            word.copy_from_slice(bytes);
        }
        u64::from_le_bytes(word)
    }
}

/// A packet-hash input of at most 16 bytes — any IPv4 flow's (12 at most) — held as one
/// integer, byte `i` in bits `8 i..8 i + 8`.
///
/// Plain integer fields stay in registers: a byte array written field by field and read back
/// as words would go through memory, and the wide read of narrower stores stalls store-to-load
/// forwarding right before the hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmallInput {
    bits: u128,
    len: usize,
}

impl SmallInput {
    /// Bytes it holds at most.
    pub const MAX: usize = 16;

    /// The empty input.
    #[must_use]
    pub const fn new() -> Self {
        Self { bits: 0, len: 0 }
    }
}

impl HashInput for SmallInput {
    #[inline]
    fn clear(&mut self) {
        *self = Self::new();
    }

    #[inline]
    fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + bytes.len();
        if end > Self::MAX {
            return false;
        }
        let mut word = [0u8; Self::MAX];
        word[..bytes.len()].copy_from_slice(bytes);
        // `len < 16` whenever `bytes` is not empty; an empty push shifts nothing in.
        self.bits |= u128::from_le_bytes(word)
            .checked_shl(8 * u32::try_from(self.len).unwrap_or(u32::MAX))
            .unwrap_or(0);
        self.len = end;
        true
    }

    #[inline]
    fn byte_len(&self) -> usize {
        self.len
    }

    #[inline]
    fn block(&self, index: usize) -> u64 {
        let [b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15] = self.bits.to_le_bytes();
        match index {
            0 => u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
            1 => u64::from_le_bytes([b8, b9, b10, b11, b12, b13, b14, b15]),
            _ => 0,
        }
    }
}

/// SipHash-2-4 of a [`ShortInput`] or [`SmallInput`]: `siphash(key, bytes)` of its bytes,
/// bit for bit.
///
/// The input is already in whole zero-padded blocks, so each block is one word load and the
/// last one needs no tail assembly: about half the instructions of the general byte-stream
/// hasher for the 4- to 36-byte inputs of packet hashing.
#[inline(always)]
#[must_use]
pub fn siphash_short(key: &Key, input: &impl HashInput) -> u64 {
    let half = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&key[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let (k0, k1) = (half(0), half(8));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let len = input.byte_len();
    let last = len / 8;
    for block in 0..last {
        compress(&mut v, input.block(block));
    }
    // The last block: the tail bytes (zero-padded, as SipHash pads) under the length byte.
    compress(&mut v, input.block(last) | ((len as u64) << 56));
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[inline(always)]
fn compress(v: &mut [u64; 4], m: u64) {
    v[3] ^= m;
    round(v);
    round(v);
    v[0] ^= m;
}

#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
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

    #[test]
    fn short_input_rejects_overflow() {
        let mut input = ShortInput::new();
        assert!(input.push(&[1; 16]) && input.push(&[2; 16]) && input.push(&[3, 4]));
        assert!(input.push(&[5, 6]), "36 bytes fit");
        assert!(!input.push(&[7]), "37 do not");
        assert_eq!(input.as_bytes().len(), SHORT_MAX);
        assert_eq!(input.as_bytes()[32..], [3, 4, 5, 6]);
    }

    // Every length from 0 to 36 under several keys: the word-wise hash equals siphasher's.
    #[test]
    fn short_equals_siphasher_for_every_length() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut byte = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        };
        for round in 0..20 {
            let key: Key = core::array::from_fn(|_| byte());
            for len in 0..=SHORT_MAX {
                let bytes: Vec<u8> = (0..len).map(|_| byte()).collect();
                let mut input = ShortInput::new();
                assert!(input.push(&bytes[..len / 2]) && input.push(&bytes[len / 2..]));
                assert_eq!(siphash_short(&key, &input), siphash(&key, &bytes), "round {round}, length {len}");
                input.clear();
                assert!(input.push(&bytes));
                assert_eq!(siphash_short(&key, &input), siphash(&key, &bytes), "after clear, length {len}");
            }
        }
    }

    // Every split of every IPv4-sized input: SmallInput hashes what ShortInput hashes.
    #[test]
    fn small_input_equals_short_input() {
        let key: Key = *b"0123456789abcdef";
        let bytes: [u8; 16] = core::array::from_fn(|i| u8::try_from(i * 13 + 5).expect("small"));
        for len in 0..=SmallInput::MAX {
            for cut in 0..=len {
                let (mut small, mut short) = (SmallInput::new(), ShortInput::new());
                for part in [&bytes[..cut], &bytes[cut..len]] {
                    assert!(HashInput::push(&mut small, part) && short.push(part));
                }
                assert_eq!(small.byte_len(), len);
                for block in 0..3 {
                    assert_eq!(small.block(block), short.block(block), "length {len}, cut {cut}");
                }
                assert_eq!(siphash_short(&key, &small), siphash(&key, &bytes[..len]), "length {len}");
            }
        }
        let mut full = SmallInput::new();
        assert!(HashInput::push(&mut full, &bytes) && HashInput::push(&mut full, &[]));
        assert!(!HashInput::push(&mut full, &[1]), "17 bytes do not fit");
        assert_eq!(full.byte_len(), 16);
    }

    // glb-director.md §7.3: key 12345678901234561234567890123456, src 10.11.12.13 → 008972f1657a5cbd.
    #[test]
    fn packet_hash_matches_upstream_vector() {
        let key: Key = *b"\x12\x34\x56\x78\x90\x12\x34\x56\x12\x34\x56\x78\x90\x12\x34\x56";
        assert_eq!(siphash(&key, &[10, 11, 12, 13]), 0x0089_72f1_657a_5cbd);
    }
}
