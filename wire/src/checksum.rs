//! The Internet checksum (RFC 1071), computed in software: GLB does not offload it.

use core::net::Ipv4Addr;

/// One's-complement sum of `data` as big-endian 16-bit words (odd trailing byte padded with 0),
/// added to `initial`; not yet folded.
///
/// The words are summed in the machine's little-endian order and the folded result is
/// byte-swapped once at the end (RFC 1071 §2(B): the sum is byte-order independent), so the
/// loop is plain 64-bit loads and adds, with no per-word byte swap.
#[must_use]
pub fn sum(initial: u32, data: &[u8]) -> u32 {
    // Whole 64-bit words into a 128-bit accumulator: one add-with-carry pair per word, the
    // carries kept in the high half (and no vectorised loop whose set-up outweighs the 40- to
    // 80-byte packets of the common case).
    let mut wide = 0u128;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        wide += u128::from(u64::from_le_bytes(word));
    }
    // 2^64 ≡ 1 (mod 2^16 - 1): the carry count in the high half adds like a plain word.
    let low = u64::try_from(wide & u128::from(u64::MAX)).unwrap_or(u64::MAX);
    let high = u64::try_from(wide >> 64).unwrap_or(u64::MAX);
    let mut acc = (low >> 32) + (low & 0xffff_ffff) + (high >> 32) + (high & 0xffff_ffff);
    // The last 0..=7 bytes in at most three fixed-size reads (a variable-length copy into a
    // zeroed word would be a `memcpy` call and a store-forwarding stall).
    let mut rest = chunks.remainder();
    let mut shift = 0;
    if let Some((four, more)) = rest.split_first_chunk::<4>() {
        acc += u64::from(u32::from_le_bytes(*four));
        (rest, shift) = (more, 32);
    }
    if let Some((two, more)) = rest.split_first_chunk::<2>() {
        acc += u64::from(u16::from_le_bytes(*two)) << shift;
        (rest, shift) = (more, shift + 16);
    }
    if let [last] = rest {
        acc += u64::from(*last) << shift;
    }
    let big_endian = fold16(fold64(acc)).swap_bytes();
    fold64(u64::from(initial) + u64::from(big_endian))
}

/// Folds a 64-bit one's-complement accumulator to 32 bits (same sum, not yet folded to 16).
#[must_use]
#[inline]
pub fn fold64(mut acc: u64) -> u32 {
    while acc > 0xffff_ffff {
        acc = (acc >> 32) + (acc & 0xffff_ffff);
    }
    u32::try_from(acc).unwrap_or(u32::MAX)
}

/// The two 16-bit words of an IPv4 address, summed (for headers and pseudo-headers built from
/// values instead of bytes).
#[inline]
#[must_use]
pub fn addr_sum(addr: Ipv4Addr) -> u32 {
    let bits = addr.to_bits();
    (bits >> 16) + (bits & 0xffff)
}

/// Folds a sum to 16 bits and complements it: the value to store in a checksum field.
#[must_use]
#[inline]
pub fn finish(acc: u32) -> u16 {
    !fold16(acc)
}

/// Folds a sum to 16 bits, uncomplemented.
#[inline]
fn fold16(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc >> 16) + (acc & 0xffff);
    }
    u16::try_from(acc).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 §3 example bytes: 00 01 f2 03 f4 f5 f6 f7 → sum 0xddf2 (before complement).
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(0, &data)), !0xddf2);
        assert_eq!(
            finish(sum(0, &data[..7])),
            finish(sum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0x00]))
        );
    }

    #[test]
    fn word_sum_equals_naive_sum_for_every_length() {
        let data: [u8; 1600] =
            core::array::from_fn(|i| u8::try_from(i % 251).unwrap_or(0).wrapping_mul(97).wrapping_add(13));
        for (len, initial) in
            (0..80).chain([255, 1499, 1500, 1599]).zip([0, 1, 0xffff, 0x1_2345, u32::MAX - 7].iter().cycle())
        {
            let mut naive = u64::from(*initial);
            for pair in data[..len].chunks(2) {
                naive += u64::from(pair[0]) << 8 | u64::from(*pair.get(1).unwrap_or(&0));
            }
            assert_eq!(
                finish(sum(*initial, &data[..len])),
                finish(fold64(naive)),
                "length {len}, initial {initial}"
            );
        }
        let ones = [0xffu8; 64];
        assert_eq!(finish(sum(0, &ones)), 0, "all-ones words sum to negative zero");
    }
}
