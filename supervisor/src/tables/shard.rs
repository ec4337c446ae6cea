//! One shard of a table: an ordered map of records behind its own lock, and the keys written
//! since a schema migration started tracking them.

use super::key::Key;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// How many shards a table has. A hot key locks only its shard; the others go on.
pub const SHARDS: usize = 64;

/// The shard of `key`: FNV-1a, 64-bit.
pub fn shard_of(key: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % SHARDS as u64) as usize
}

/// One value and the table schema it is encoded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The table schema of `value` (records carry it: a schema change converts them lazily).
    pub schema: u32,
    /// The value. Shared, so that a snapshot's batch takes the values of a shard by reference
    /// under its read lock (no allocation or copy while the lock is held) and writes them
    /// with no lock held.
    pub value: Arc<[u8]>,
}

/// The records of one shard.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub(crate) map: BTreeMap<Key, Record>,
    /// Sum of key and value lengths.
    pub(crate) bytes: usize,
    /// Keys written since tracking began (a schema migration in progress), or `None`.
    pub(crate) dirty: Option<HashSet<Box<[u8]>>>,
}

impl Shard {
    /// The record of `key`. A short key is looked up as a [`Key`], whose comparisons need no
    /// `memcmp`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Record> {
        match Key::inline(key) {
            Some(inline) => self.map.get(&inline),
            None => self.map.get(key),
        }
    }

    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Record> {
        match Key::inline(key) {
            Some(inline) => self.map.get_mut(&inline),
            None => self.map.get_mut(key),
        }
    }

    /// Stores `record` under `key`; returns whether the key is new.
    pub(crate) fn insert(&mut self, key: &[u8], record: Record) -> bool {
        self.touch(key);
        self.bytes += record.value.len();
        match self.get_mut(key) {
            Some(old) => {
                let old_len = old.value.len();
                *old = record;
                self.bytes -= old_len;
                false
            }
            None => {
                self.bytes += key.len();
                self.map.insert(Key::new(key), record);
                true
            }
        }
    }

    /// Replaces the record of a key that exists (a conversion): not a write of the app's.
    pub(crate) fn replace(&mut self, key: &[u8], record: Record) {
        let added = record.value.len();
        if let Some(old) = self.get_mut(key) {
            let removed = old.value.len();
            *old = record;
            self.bytes = self.bytes - removed + added;
        }
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn remove(&mut self, key: &[u8]) -> bool {
        let removed = match Key::inline(key) {
            Some(inline) => self.map.remove(&inline),
            None => self.map.remove(key),
        };
        match removed {
            Some(old) => {
                self.touch(key);
                self.bytes -= key.len() + old.value.len();
                true
            }
            None => false,
        }
    }

    fn touch(&mut self, key: &[u8]) {
        if let Some(dirty) = &mut self.dirty {
            if !dirty.contains(key) {
                dirty.insert(key.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_tracks_writes() {
        let mut shard = Shard::default();
        let rec = |v: &[u8]| Record {
            schema: 1,
            value: v.into(),
        };
        assert!(shard.insert(b"ab", rec(b"xyz")));
        assert_eq!(shard.bytes, 5);
        shard.dirty = Some(HashSet::new());
        assert!(!shard.insert(b"ab", rec(b"x")));
        assert_eq!(shard.bytes, 3);
        shard.replace(b"ab", rec(b"xxxx"));
        assert_eq!(shard.bytes, 6);
        assert!(shard.remove(b"ab") && !shard.remove(b"ab"));
        assert_eq!(shard.bytes, 0);
        assert_eq!(shard.dirty.unwrap().len(), 1, "one key written, twice");
        assert!(shard_of(b"k1") < SHARDS);
        assert_ne!(
            (0..64).map(|i| shard_of(format!("k{i}").as_bytes())).max(),
            Some(0)
        );
    }
}
