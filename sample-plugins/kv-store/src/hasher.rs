//! The shards' hasher: a seeded multiply-rotate hash over 8-byte words with a murmur3
//! finaliser, several times cheaper than std's SipHash on short keys (an import hashes every
//! key once, inside the pause).
//!
//! The seed is random per process (taken from std's `RandomState`), so which keys collide is
//! not known in advance; this is not a keyed cryptographic hash like SipHash, though, and a
//! client that could observe timings long enough might still find colliding keys. For the
//! sample app that trade is the point being measured; a store exposed to hostile clients
//! would keep SipHash.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Builds [`WordHasher`]s with this process's seed.
#[derive(Clone, Copy, Debug)]
pub struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        Seeded(*SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x6d6f_6c74u64)))
    }
}

impl BuildHasher for Seeded {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.0)
    }
}

/// The running hash.
#[derive(Clone, Copy, Debug)]
pub struct WordHasher(u64);

impl WordHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(K).rotate_left(29);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.mix(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn finish(&self) -> u64 {
        // murmur3's fmix64: every input bit reaches every output bit (the map uses both the
        // low bits, for the bucket, and the high ones, for its control bytes).
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bytes_hash_equal_and_neighbours_spread() {
        let s = Seeded::default();
        assert_eq!(s.hash_one(&b"k12"[..]), s.hash_one(&b"k12"[..]));
        let mut buckets = [0u32; 64];
        for i in 0..64_000 {
            buckets[(s.hash_one(format!("k{i}").as_bytes()) % 64) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| (800..1200).contains(&n)), "{buckets:?}");
        assert_ne!(s.hash_one(&b"ab"[..]), s.hash_one(&b"ab\0"[..]));
    }
}
