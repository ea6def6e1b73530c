//! The Internet checksum (RFC 1071), computed in software: GLB does not offload it.

/// One's-complement sum of `data` as big-endian 16-bit words (odd trailing byte padded with 0),
/// added to `initial`; not yet folded.
#[must_use]
pub fn sum(initial: u32, data: &[u8]) -> u32 {
    let mut acc = u64::from(initial);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_be_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        // Add the two 32-bit halves so carries are kept in the upper bits of the u64.
        acc += (word >> 32) + (word & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for pair in &mut pairs {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc > 0xffff_ffff {
        acc = (acc >> 32) + (acc & 0xffff_ffff);
    }
    u32::try_from(acc).unwrap_or(u32::MAX)
}

/// Folds a sum to 16 bits and complements it: the value to store in a checksum field.
#[must_use]
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc >> 16) + (acc & 0xffff);
    }
    !u16::try_from(acc).unwrap_or(u16::MAX)
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
        let data: [u8; 37] =
            core::array::from_fn(|i| u8::try_from(i).unwrap_or(0).wrapping_mul(97).wrapping_add(13));
        for len in 0..data.len() {
            let mut naive: u32 = 0;
            for pair in data[..len].chunks(2) {
                naive += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
            }
            assert_eq!(finish(sum(0, &data[..len])), finish(naive), "length {len}");
        }
    }
}
