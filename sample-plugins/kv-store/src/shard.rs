//! One shard of the map, the hash that picks it, and what it stores per key.

use std::collections::HashMap;

/// Number of shards the map is split into.
pub const SHARDS: usize = 16;

/// FNV-1a: cheap, deterministic, good enough to spread keys over shards.
pub fn shard_of(key: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 32) as usize % SHARDS
}

/// What a shard stores per key: a value, and optionally a count the shard sums up.
pub trait Entry {
    /// The entry a first write of `value` creates.
    fn new(value: Vec<u8>) -> Self;
    /// The value.
    fn value(&self) -> &[u8];
    /// Replaces the value (a write to an existing key).
    fn replace(&mut self, value: Vec<u8>);
    /// This entry's share of the shard's tally (0 when the entry counts nothing).
    fn tally(&self) -> u128 {
        0
    }
}

/// A bare value: an entry that counts nothing.
impl Entry for Vec<u8> {
    fn new(value: Vec<u8>) -> Self {
        value
    }
    fn value(&self) -> &[u8] {
        self
    }
    fn replace(&mut self, value: Vec<u8>) {
        *self = value;
    }
}

/// One shard: its part of the map and the totals it holds, kept in step under its lock.
pub struct Shard<V> {
    map: HashMap<String, V>,
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
            map: HashMap::with_capacity(capacity),
            key_bytes: 0,
            value_bytes: 0,
            tally: 0,
        }
    }

    /// The map.
    pub fn map(&self) -> &HashMap<String, V> {
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
        match self.map.get_mut(key) {
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
        self.map.insert(key.to_owned(), entry);
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
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
    pub fn absorb(&mut self, key: String, theirs: V, settle: impl FnOnce(&str, &mut V, V)) {
        match self.map.get_mut(&key) {
            Some(mine) => {
                self.value_bytes -= mine.value().len();
                self.tally -= mine.tally();
                settle(&key, mine, theirs);
                self.value_bytes += mine.value().len();
                self.tally += mine.tally();
            }
            None => self.insert_new(&key, theirs),
        }
    }

    /// The entries, taken.
    pub fn into_entries(self) -> impl Iterator<Item = (String, V)> {
        self.map.into_iter()
    }
}
