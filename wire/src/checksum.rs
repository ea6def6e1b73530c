//! The Internet checksum (RFC 1071), computed in software: GLB does not offload it.

use core::net::Ipv4Addr;

/// One's-complement sum of `data` as big-endian 16-bit words (odd trailing byte padded with 0),
/// added to `initial`; not yet folded.
///
/// The words are summed in the machine's little-endian order and the folded result is
/// byte-swapped once at the end (RFC 1071 §2(B): the sum is byte-order independent), so the
/// loop is plain 64-bit loads and adds, with no per-word byte swap.
#[must_use]
#[inline]
pub fn sum(initial: u32, data: &[u8]) -> u32 {
    // Whole 64-bit words into a 128-bit accumulator: one add-with-carry pair per word, the
    // carries kept in the high half (and no vectorised loop whose set-up outweighs the 40- to
    // 80-byte packets of the common case). Four words per iteration and then at most a
    // 16- and an 8-byte step: no remainder loop, whose set-up cost a third of a 44-byte sum.
    let word = |bytes: &[u8; 8]| u128::from(u64::from_le_bytes(*bytes));
    let mut wide = 0u128;
    let mut quads = data.chunks_exact(32);
    for quad in &mut quads {
        for eight in quad.as_chunks::<8>().0 {
            wide += word(eight);
        }
    }
    let mut rest = quads.remainder();
    if let Some((sixteen, more)) = rest.split_first_chunk::<16>() {
        for eight in sixteen.as_chunks::<8>().0 {
            wide += word(eight);
        }
        rest = more;
    }
    if let Some((eight, more)) = rest.split_first_chunk::<8>() {
        wide += word(eight);
        rest = more;
    }
    // 2^64 ≡ 1 (mod 2^16 - 1): the carry count in the high half adds like a plain word.
    let low = u64::try_from(wide & u128::from(u64::MAX)).unwrap_or(u64::MAX);
    let high = u64::try_from(wide >> 64).unwrap_or(u64::MAX);
    let mut acc = (low >> 32) + (low & 0xffff_ffff) + (high >> 32) + (high & 0xffff_ffff);
    // The last 0..=7 bytes in at most three fixed-size reads (a variable-length copy into a
    // zeroed word would be a `memcpy` call and a store-forwarding stall).
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
pub fn fold64(acc: u64) -> u32 {
    // One end-around-carry add, no loop: like repeated folding it keeps a non-zero sum
    // non-zero, so both give the one representative in 1..=u32::MAX.
    let [a0, a1, a2, a3, b0, b1, b2, b3] = acc.to_le_bytes();
    let (sum, carry) =
        u32::from_le_bytes([a0, a1, a2, a3]).overflowing_add(u32::from_le_bytes([b0, b1, b2, b3]));
    sum + u32::from(carry)
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
fn fold16(acc: u32) -> u16 {
    // As `fold64`: one end-around-carry add.
    let [a0, a1, b0, b1] = acc.to_le_bytes();
    let (sum, carry) = u16::from_le_bytes([a0, a1]).overflowing_add(u16::from_le_bytes([b0, b1]));
    sum + u16::from(carry)
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

    // The one-step folds give what folding until the value fits gives (RFC 1071's loop).
    #[test]
    fn folds_equal_repeated_folding() {
        let check = |acc: u64| {
            let mut looped = acc;
            while looped > 0xffff_ffff {
                looped = (looped >> 32) + (looped & 0xffff_ffff);
            }
            assert_eq!(u64::from(fold64(acc)), looped, "fold64({acc:#x})");
            let narrow = fold64(acc);
            let mut looped = narrow;
            while looped > 0xffff {
                looped = (looped >> 16) + (looped & 0xffff);
            }
            assert_eq!(u32::from(fold16(narrow)), looped, "fold16({narrow:#x})");
        };
        for edge in [0, 1, 0xffff, 0x1_0000, 0x1_fffe, 0xffff_ffff, 0x1_0000_0000, 0x1_ffff_fffe] {
            check(edge);
        }
        for edge in [u64::MAX, u64::MAX - 1, 0xffff_fffe_0000_0001, 0x8000_0000_8000_0000, 0xffff_0000_ffff] {
            check(edge);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for acc in [x, x >> 20, x >> 31, x >> 33, x >> 47] {
                check(acc);
            }
        }
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
