//! Paged KV-cache block manager with vLLM-style prefix caching.
//!
//! Blocks are counted, not materialised: only blocks that carry a prefix hash have an identity. Free
//! blocks (never-used, freed anonymous blocks, and evictable cached blocks) sit in one FIFO free queue in
//! the order they were freed, as in vLLM v1: allocation takes from the head, and taking a cached block
//! evicts its hash (LRU). A sequence frees its blocks tail first, so a prompt's last blocks are evicted
//! before its first ones. A cached block that is hit again while free leaves the queue (lazily: its queue
//! entry goes stale).
//!
//! An optional host tier ([`HostTier`]) models KV offloading to CPU memory (vLLM's
//! `--kv-offloading-size`, LMCache, TensorRT-LLM's `host_cache_size`, SGLang's hierarchical cache): a
//! cached block evicted from the GPU is kept there (LRU), and a preempted sequence's KV may be parked
//! there instead of being recomputed; loading either back costs PCIe time, which the replica charges.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Hasher for keys that are already hashes.
#[derive(Default, Clone, Copy)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        let y = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = y ^ (y >> 29);
    }
}

type PrehashedMap<V> = HashMap<u64, V, BuildHasherDefault<PrehashedHasher>>;

const IN_USE: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct CachedBlock {
    refs: u32,
    /// Free-queue stamp while evictable, `IN_USE` while referenced.
    stamp: u64,
}

#[derive(Debug, Clone, Copy)]
enum FreeEntry {
    Anon(u64),
    Cached { hash: u64, stamp: u64 },
}

/// Block manager of one replica.
#[derive(Debug, Clone)]
pub struct KvCache {
    capacity: u64,
    num_free: u64,
    free_q: VecDeque<FreeEntry>,
    map: PrehashedMap<CachedBlock>,
    next_stamp: u64,
    /// Blocks evicted from the prefix cache.
    pub evictions: u64,
    pub host: HostTier,
}

/// The second, slower KV tier in host memory: evicted prefix blocks (LRU) and the parked KV of
/// preempted sequences share its capacity. Capacity 0 is no tier.
#[derive(Debug, Clone, Default)]
pub struct HostTier {
    capacity: u64,
    /// Hash → stamp of its newest queue entry.
    cached: PrehashedMap<u64>,
    queue: VecDeque<(u64, u64)>,
    next_stamp: u64,
    /// Blocks parked by preempted sequences.
    parked: u64,
}

impl HostTier {
    pub fn new(capacity: u64) -> HostTier {
        HostTier {
            capacity,
            ..HostTier::default()
        }
    }

    fn used(&self) -> u64 {
        self.cached.len() as u64 + self.parked
    }

    /// Blocks the tier holds (0: no tier).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Blocks parked by sequences still waiting.
    pub fn parked(&self) -> u64 {
        self.parked
    }

    /// Drops least recently used cached blocks until `n` more blocks fit; false if they cannot.
    fn make_room(&mut self, n: u64) -> bool {
        if n > self.capacity.saturating_sub(self.parked) {
            return false;
        }
        while self.used() + n > self.capacity {
            let (hash, stamp) = self.queue.pop_front().expect("used > 0 has queue entries");
            if self.cached.get(&hash) == Some(&stamp) {
                self.cached.remove(&hash);
            }
        }
        true
    }

    /// Keeps (or refreshes) a block evicted from the GPU.
    fn put(&mut self, hash: u64) {
        if self.capacity == 0 || (!self.cached.contains_key(&hash) && !self.make_room(1)) {
            return;
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.cached.insert(hash, stamp);
        self.queue.push_back((hash, stamp));
    }

    /// Of `hashes`, the leading run present in the tier.
    pub fn hits(&self, hashes: &[u64]) -> u32 {
        hashes
            .iter()
            .take_while(|h| self.cached.contains_key(h))
            .count() as u32
    }

    /// Marks `hashes` (found by [`HostTier::hits`]) used by a load.
    pub fn touch(&mut self, hashes: &[u64]) {
        for &h in hashes {
            self.put(h);
        }
    }

    /// Parks `n` blocks of a preempted sequence; false (nothing parked) when they do not fit.
    pub fn park(&mut self, n: u64) -> bool {
        let fits = n > 0 && self.make_room(n);
        if fits {
            self.parked += n;
        }
        fits
    }

    /// Frees `n` parked blocks (loaded back, or their sequence ended).
    pub fn unpark(&mut self, n: u64) {
        self.parked -= n;
    }
}

impl KvCache {
    /// A GPU cache of `capacity` blocks with a host tier of `host_blocks` (0: none).
    pub fn new(capacity: u64, host_blocks: u64) -> KvCache {
        let mut free_q = VecDeque::new();
        if capacity > 0 {
            free_q.push_back(FreeEntry::Anon(capacity));
        }
        KvCache {
            capacity,
            num_free: capacity,
            free_q,
            map: PrehashedMap::default(),
            next_stamp: 0,
            evictions: 0,
            host: HostTier::new(host_blocks),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Free blocks, including evictable cached ones.
    pub fn num_free(&self) -> u64 {
        self.num_free
    }

    /// Blocks referenced by at least one sequence.
    pub fn used(&self) -> u64 {
        self.capacity - self.num_free
    }

    /// Longest run of leading `hashes` present in the cache (at most `max_blocks`), and how many of
    /// those are currently free (hitting them takes them off the free queue).
    pub fn lookup(&self, hashes: &[u64], max_blocks: usize) -> (u32, u32) {
        let mut hit = 0;
        let mut evictable = 0;
        for h in hashes.iter().take(max_blocks) {
            match self.map.get(h) {
                Some(b) => {
                    hit += 1;
                    if b.refs == 0 {
                        evictable += 1;
                    }
                }
                None => break,
            }
        }
        (hit, evictable)
    }

    /// References the first `n` hashes (which [`KvCache::lookup`] found).
    pub fn acquire(&mut self, hashes: &[u64]) {
        for h in hashes {
            let b = self
                .map
                .get_mut(h)
                .expect("acquire of a block lookup did not find");
            if b.refs == 0 {
                self.num_free -= 1;
                b.stamp = IN_USE;
            }
            b.refs += 1;
        }
    }

    /// Takes `n` anonymous blocks from the head of the free queue (evicting cached blocks found there).
    /// The caller checks `n <= num_free()`.
    pub fn allocate(&mut self, n: u64) {
        assert!(
            n <= self.num_free,
            "KV allocation of {n} blocks with {} free",
            self.num_free
        );
        self.num_free -= n;
        let mut rem = n;
        while rem > 0 {
            let front = self
                .free_q
                .front_mut()
                .expect("free queue shorter than num_free");
            match front {
                FreeEntry::Anon(c) => {
                    let take = (*c).min(rem);
                    *c -= take;
                    rem -= take;
                    if *c == 0 {
                        self.free_q.pop_front();
                    }
                }
                FreeEntry::Cached { hash, stamp } => {
                    let (hash, stamp) = (*hash, *stamp);
                    self.free_q.pop_front();
                    if let Some(b) = self.map.get(&hash)
                        && b.refs == 0
                        && b.stamp == stamp
                    {
                        self.map.remove(&hash);
                        self.host.put(hash);
                        self.evictions += 1;
                        rem -= 1;
                    }
                }
            }
        }
    }

    /// Gives a block the sequence already holds (anonymous) the identity `hash`, so later requests can
    /// hit it. Returns false (block stays anonymous) when another block already carries that hash.
    pub fn register(&mut self, hash: u64) -> bool {
        use std::collections::hash_map::Entry;
        match self.map.entry(hash) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(CachedBlock {
                    refs: 1,
                    stamp: IN_USE,
                });
                true
            }
        }
    }

    /// Frees a sequence's blocks: `anon` anonymous blocks and the cached blocks `hashes` (in chain
    /// order), tail first.
    pub fn release(&mut self, hashes: &[u64], anon: u64) {
        if anon > 0 {
            self.num_free += anon;
            match self.free_q.back_mut() {
                Some(FreeEntry::Anon(c)) => *c += anon,
                _ => self.free_q.push_back(FreeEntry::Anon(anon)),
            }
        }
        for &h in hashes.iter().rev() {
            let b = self
                .map
                .get_mut(&h)
                .expect("release of an unknown cached block");
            b.refs -= 1;
            if b.refs == 0 {
                let stamp = self.next_stamp;
                self.next_stamp += 1;
                b.stamp = stamp;
                self.num_free += 1;
                self.free_q.push_back(FreeEntry::Cached { hash: h, stamp });
            }
        }
        debug_assert!(self.num_free <= self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_prefix_cache() {
        let mut kv = KvCache::new(4, 0);
        // Sequence A: 2 cached blocks + 1 anonymous.
        kv.allocate(3);
        assert!(kv.register(10) && kv.register(11));
        assert!(!kv.register(10));
        assert_eq!(kv.used(), 3);
        kv.release(&[10, 11], 1);
        assert_eq!(kv.used(), 0);
        assert_eq!(kv.lookup(&[10, 11, 12], 8), (2, 2));
        // A new sequence hits the chain: both blocks leave the free queue.
        kv.acquire(&[10, 11]);
        assert_eq!(kv.num_free(), 2);
        // Taking all free blocks consumes the anonymous ones, not the referenced cached ones.
        kv.allocate(2);
        assert_eq!(kv.num_free(), 0);
        assert_eq!(kv.lookup(&[10, 11], 8), (2, 0));
        kv.release(&[10, 11], 2);
        // Tail-first free order: 11 is evicted before 10.
        kv.allocate(3);
        assert_eq!(kv.lookup(&[10], 8), (1, 1));
        assert_eq!(kv.lookup(&[11], 8), (0, 0));
        kv.allocate(1);
        assert_eq!(kv.lookup(&[10], 8), (0, 0));
        assert_eq!(kv.evictions, 2);
        assert_eq!(kv.used(), 4);
    }

    #[test]
    fn host_tier_keeps_evicted_blocks_and_parks_preempted_ones() {
        let mut kv = KvCache::new(2, 3);
        kv.allocate(2);
        assert!(kv.register(1) && kv.register(2));
        kv.release(&[1, 2], 0);
        // Both cached blocks are evicted from the GPU into the host tier.
        kv.allocate(2);
        assert_eq!(kv.lookup(&[1, 2], 8), (0, 0));
        assert_eq!(kv.host.hits(&[1, 2, 3]), 2);
        kv.host.touch(&[1, 2]);
        // Parking two blocks evicts the least recently used cached block (1, touched before 2).
        assert!(kv.host.park(2));
        assert_eq!(kv.host.hits(&[1]), 0);
        assert_eq!(kv.host.hits(&[2]), 1);
        // Parked blocks are never evicted: four more do not fit.
        assert!(!kv.host.park(4));
        kv.host.unpark(2);
        assert!(kv.host.park(3));
        assert_eq!(kv.host.hits(&[2]), 0);
    }
}
