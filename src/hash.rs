//! Stable 64-bit hashing of string ids (std's hasher may change between Rust releases, and results
//! that depend on it would change with them).

/// FNV-1a over the UTF-8 bytes.
pub fn stable_hash64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
