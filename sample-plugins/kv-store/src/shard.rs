//! One shard of the map, the hash that picks it, and what it stores per key.

use crate::blob::Blob;
use crate::hasher::Seeded;
use std::collections::HashMap;

/// Number of shards the map is split into.
pub const SHARDS: usize = 16;

/// FNV-1a, then murmur3's 64-bit finaliser: cheap and deterministic. The finaliser matters:
/// FNV alone leaves its middle bits poorly mixed for short similar keys (`k0` … `k9999` fell
/// into 10 of the 16 shards, from 200 to 1,900 keys each), which made some shards long and
/// others idle.
pub fn shard_of(key: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    (hash >> 60) as usize % SHARDS
}

/// What a shard stores per key: a value, and optionally a count the shard sums up.
pub trait Entry {
    /// The entry a first write of `value` creates.
    fn new(value: Blob) -> Self;
    /// The value.
    fn value(&self) -> &[u8];
    /// Replaces the value (a write to an existing key).
    fn replace(&mut self, value: Blob);
    /// This entry's share of the shard's tally (0 when the entry counts nothing).
    fn tally(&self) -> u128 {
        0
    }
}

/// A bare value: an entry that counts nothing.
impl Entry for Blob {
    fn new(value: Blob) -> Self {
        value
    }
    fn value(&self) -> &[u8] {
        self.as_bytes()
    }
    fn replace(&mut self, value: Blob) {
        *self = value;
    }
}

/// One shard: its part of the map and the totals it holds, kept in step under its lock. Keys
/// are UTF-8 (checked on the way in) kept as [`Blob`]s, searched by their bytes.
pub struct Shard<V> {
    map: HashMap<Blob, V, Seeded>,
    key_bytes: usize,
    value_bytes: usize,
    /// Sum of the entries' tallies.
    tally: u128,
}

impl<V: Entry> Default for Shard<V> {
    fn default() -> Self {
        Shard::with_capacity(0)
    }
}

impl<V: Entry> Shard<V> {
    /// An empty shard with room for `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Shard {
            map: HashMap::with_capacity_and_hasher(capacity, Seeded::default()),
            key_bytes: 0,
            value_bytes: 0,
            tally: 0,
        }
    }

    /// The map.
    pub fn map(&self) -> &HashMap<Blob, V, Seeded> {
        &self.map
    }

    /// Sum of the key lengths.
    pub fn key_bytes(&self) -> usize {
        self.key_bytes
    }

    /// Sum of the value lengths.
    pub fn value_bytes(&self) -> usize {
        self.value_bytes
    }

    /// Sum of the entries' tallies.
    pub fn tally(&self) -> u128 {
        self.tally
    }

    /// Makes room for about `keys` keys in all.
    pub fn reserve_total(&mut self, keys: usize) {
        let more = keys.saturating_sub(self.map.len());
        self.map.reserve(more);
    }

    /// Inserts or replaces; returns whether the key is new.
    pub fn put(&mut self, key: &str, value: Vec<u8>) -> bool {
        let value = Blob::from(value);
        match self.map.get_mut(key.as_bytes()) {
            Some(old) => {
                self.value_bytes = self.value_bytes - old.value().len() + value.len();
                self.tally -= old.tally();
                old.replace(value);
                self.tally += old.tally();
                false
            }
            None => {
                self.insert_new(key, V::new(value));
                true
            }
        }
    }

    /// Inserts an entry for a key known to be absent.
    pub fn insert_new(&mut self, key: &str, entry: V) {
        self.key_bytes += key.len();
        self.value_bytes += entry.value().len();
        self.tally += entry.tally();
        self.map.insert(Blob::from(key), entry);
    }

    /// Inserts an entry for `key` (UTF-8, checked by the caller); `Err` gives the entry back,
    /// changing nothing, when the key is there already.
    pub fn insert_unique(&mut self, key: Blob, entry: V) -> Result<(), (Blob, V)> {
        use std::collections::hash_map::Entry as Slot;
        match self.map.entry(key) {
            Slot::Occupied(slot) => Err((slot.key().clone(), entry)),
            Slot::Vacant(slot) => {
                self.key_bytes += slot.key().len();
                self.value_bytes += entry.value().len();
                self.tally += entry.tally();
                slot.insert(entry);
                Ok(())
            }
        }
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&mut self, key: &str) -> bool {
        match self.map.remove(key.as_bytes()) {
            Some(old) => {
                self.key_bytes -= key.len();
                self.value_bytes -= old.value().len();
                self.tally -= old.tally();
                true
            }
            None => false,
        }
    }

    /// Absorbs a peer's entry: inserted when the key is absent here, else `settle` decides
    /// what stays in `mine` given `theirs` (the totals follow).
    pub fn absorb(&mut self, key: Blob, theirs: V, settle: impl FnOnce(&str, &mut V, V)) {
        match self.map.get_mut(key.as_bytes()) {
            Some(mine) => {
                self.value_bytes -= mine.value().len();
                self.tally -= mine.tally();
                settle(&String::from_utf8_lossy(key.as_bytes()), mine, theirs);
                self.value_bytes += mine.value().len();
                self.tally += mine.tally();
            }
            None => {
                let _ = self.insert_unique(key, theirs);
            }
        }
    }

    /// The entries, taken.
    pub fn into_entries(self) -> impl Iterator<Item = (Blob, V)> {
        self.map.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_keys_spread_evenly_over_the_shards() {
        let mut counts = [0u32; SHARDS];
        for i in 0..16_000 {
            counts[shard_of(format!("k{i}").as_bytes())] += 1;
        }
        assert!(counts.iter().all(|&n| (850..1150).contains(&n)), "{counts:?}");
    }
}
