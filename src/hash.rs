//! Stable 64-bit hashing of string ids (std's hasher may change between Rust releases, and results
//! that depend on it would change with them).

/// FNV-1a over the UTF-8 bytes.
pub fn stable_hash64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A hasher for keys that are already well-mixed 64-bit ids (block hashes, hashes of string ids)
/// or small integers: one SplitMix finalisation per word instead of SipHash's rounds, which made
/// counting ten million prefix ids the slowest part of the workloads stage. Not DoS-resistant;
/// the keys come from the user's own lake.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = crate::rng::hash64(self.0 ^ n);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;
pub type IdSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<IdHasher>>;

/// The values that occur more than once, found by sorting (in parallel): for tens of millions of
/// ids this beats counting them in a hash map with one entry per distinct id.
pub fn repeated<T: Ord + Copy + Send + std::hash::Hash>(mut values: Vec<T>) -> IdSet<T> {
    use rayon::slice::ParallelSliceMut;
    values.par_sort_unstable();
    values
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect()
}
