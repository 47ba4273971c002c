//! The client-to-server masking transform (RFC 6455 §5.3).

/// XORs `buf` in place with `mask`, the key's byte `i % 4` applying to byte `i`.
///
/// Works on 8 bytes at a time: a 4-byte key repeated twice lines up with every 8-byte chunk,
/// so the tail after the last whole chunk starts again at key byte 0.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    apply_mask_bytewise(chunks.into_remainder(), mask);
}

/// The plain definition of §5.3: `transformed-octet-i = original-octet-i XOR masking-key-octet-(i MOD 4)`.
fn apply_mask_bytewise(buf: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_equals_bytewise_at_every_length_and_offset() {
        let masks = [
            [0x37, 0xfa, 0x21, 0x3d],
            [0, 0, 0, 0],
            [0xff, 0x01, 0x80, 0x7f],
        ];
        let original: Vec<u8> = (0..80u32)
            .map(|i| (i.wrapping_mul(73) ^ 0x5a) as u8)
            .collect();
        for mask in masks {
            for offset in 0..8 {
                for len in 0..=64 {
                    let mut fast = original.clone();
                    let mut slow = original.clone();
                    apply_mask(&mut fast[offset..offset + len], mask);
                    apply_mask_bytewise(&mut slow[offset..offset + len], mask);
                    assert_eq!(fast, slow, "mask {mask:?} offset {offset} len {len}");
                }
            }
        }
    }

    #[test]
    fn masking_twice_is_identity() {
        let mut buf = b"Hello, masking".to_vec();
        apply_mask(&mut buf, [1, 2, 3, 4]);
        assert_ne!(&buf, b"Hello, masking");
        apply_mask(&mut buf, [1, 2, 3, 4]);
        assert_eq!(&buf, b"Hello, masking");
    }

    #[test]
    fn rfc_example_hello() {
        // RFC 6455 §5.7: masked "Hello" payload with key 37 fa 21 3d.
        let mut buf = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(&buf, b"Hello");
    }
}
