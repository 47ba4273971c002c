//! The client-to-server masking transform (RFC 6455 §5.3).

/// XORs `buf` in place with `mask`, the key's byte `i % 4` applying to byte `i`.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let _ = (buf, mask);
    todo!()
}
