//! One named table: [`SHARDS`] independently locked shards of records, and the operations the
//! host functions offer a plugin (get, put, delete, update, scan, count). Every operation
//! names the table schema the caller reads and writes in; a record in another schema is
//! converted through the store's pending conversion the first time it is read (Rubah's lazy
//! transformation), and the converted value replaces it in place.

use super::convert::{key_text, Conversion, RecordFailure};
use super::key::Key;
use super::shard::{shard_of, Record, Shard, SHARDS};
use parking_lot::RwLock;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

/// The conversion a schema change left pending, shared by the store and its tables.
pub(crate) type Pending = RwLock<Option<Arc<Conversion>>>;

/// Records taken out of a shard (values by reference), to use without its lock.
pub(crate) type Batch = Vec<(Key, Record)>;

/// A shard's records taken out for an ordered scan, not visited yet.
type Queue = VecDeque<(Key, Record)>;

/// At most this many records are taken out of a shard under one lock hold.
pub(crate) const BATCH_RECORDS: usize = 256;
/// ... and at most about this many bytes.
pub(crate) const BATCH_BYTES: usize = 1 << 20;

/// What an update does with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Leave it.
    Keep,
    /// Store this value.
    Set(Vec<u8>),
    /// Delete it.
    Delete,
}

/// One table.
pub struct Table {
    name: String,
    pub(crate) shards: Box<[RwLock<Shard>]>,
    pending: Arc<Pending>,
}

impl Table {
    pub(crate) fn new(name: &str, pending: Arc<Pending>, tracking: bool) -> Table {
        let shards = (0..SHARDS)
            .map(|_| {
                RwLock::new(Shard {
                    dirty: tracking.then(HashSet::new),
                    ..Shard::default()
                })
            })
            .collect();
        Table {
            name: name.to_owned(),
            shards,
            pending,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn shard(&self, key: &[u8]) -> &RwLock<Shard> {
        &self.shards[shard_of(key)]
    }

    /// `record` converted to schema `want` through the pending conversion.
    fn convert(&self, key: &[u8], record: &Record, want: u32) -> Result<Vec<u8>, RecordFailure> {
        let pending = self.pending.read().clone();
        match pending {
            Some(c) if c.from == record.schema && c.to == want => c.run(&self.name, key, &record.value),
            _ => Err(RecordFailure {
                table: self.name.clone(),
                key: key_text(key),
                from: record.schema,
                to: want,
                by: "the host".to_owned(),
                message: "no conversion between these schemas is pending".to_owned(),
            }),
        }
    }

    /// Converts the record of `key` (if any) to `want` in place; the shard is write-locked.
    fn convert_locked(&self, shard: &mut Shard, key: &[u8], want: u32) -> Result<(), RecordFailure> {
        if let Some(record) = shard.get(key) {
            if record.schema != want {
                let value = self.convert(key, record, want)?;
                shard.replace(
                    key,
                    Record {
                        schema: want,
                        value: value.into(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Runs `f` on the value of `key` in schema `want`, in place; `None` when absent.
    pub fn get<R>(
        &self,
        key: &[u8],
        want: u32,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, RecordFailure> {
        let shard = self.shard(key);
        {
            let guard = shard.read();
            match guard.get(key) {
                None => return Ok(None),
                Some(record) if record.schema == want => return Ok(Some(f(&record.value))),
                Some(_) => {}
            }
        }
        let mut guard = shard.write();
        self.convert_locked(&mut guard, key, want)?;
        Ok(guard.get(key).map(|record| f(&record.value)))
    }

    /// Stores `value` (in schema `schema`) under `key`; returns whether the key is new.
    pub fn put(&self, key: &[u8], schema: u32, value: &[u8]) -> bool {
        let record = Record {
            schema,
            value: value.into(),
        };
        self.shard(key).write().insert(key, record)
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, key: &[u8]) -> bool {
        self.shard(key).write().remove(key)
    }

    /// Reads and rewrites the record of `key` under its shard's write lock; returns whether it
    /// existed. `f` sees the value in schema `want`.
    pub fn update(
        &self,
        key: &[u8],
        want: u32,
        f: impl FnOnce(Option<&[u8]>) -> Change,
    ) -> Result<bool, RecordFailure> {
        let mut guard = self.shard(key).write();
        self.convert_locked(&mut guard, key, want)?;
        let old = guard.get(key).map(|record| &record.value[..]);
        let existed = old.is_some();
        match f(old) {
            Change::Keep => {}
            Change::Set(value) => {
                guard.insert(
                    key,
                    Record {
                        schema: want,
                        value: value.into(),
                    },
                );
            }
            Change::Delete => {
                guard.remove(key);
            }
        }
        Ok(existed)
    }

    /// The number of records.
    pub fn count(&self) -> u64 {
        self.shards.iter().map(|s| s.read().map.len() as u64).sum()
    }

    /// The sum of key and value lengths.
    pub fn bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.read().bytes as u64).sum()
    }

    /// Up to a batch of records of shard `shard` after `after` (from the start when `None`)
    /// and up to `until` (to the end when `None`), taken under one read lock: keys copied, values
    /// shared.
    pub(crate) fn batch(&self, shard: usize, after: Option<&[u8]>, until: Option<&[u8]>) -> Batch {
        let guard = self.shards[shard].read();
        let start = match after {
            Some(key) => Bound::Excluded(key),
            None => Bound::Unbounded,
        };
        let end = match until {
            Some(key) => Bound::Included(key),
            None => Bound::Unbounded,
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        for (key, record) in guard.map.range::<[u8], _>((start, end)) {
            bytes += key.len() + record.value.len();
            batch.push((key.clone(), record.clone()));
            if batch.len() >= BATCH_RECORDS || bytes >= BATCH_BYTES {
                break;
            }
        }
        batch
    }

    /// Calls `f` with every batch of every shard, in turn, until it returns `true` (stop).
    ///
    /// Each shard's pass ends at the last key the shard held when the pass began, so writers
    /// that keep adding keys behind the cursor cannot make a pass chase them for ever (a full
    /// validation under an unpaced write load did exactly that). Keys added past that end
    /// during the pass are not visited: a validation tracks them as written keys; a snapshot
    /// holds the shard as it was when its pass began, plus what was written in its range.
    pub(crate) fn batches(&self, mut f: impl FnMut(Batch) -> bool) {
        for shard in 0..SHARDS {
            let Some(until) = self.shards[shard]
                .read()
                .map
                .last_key_value()
                .map(|(k, _)| k.clone())
            else {
                continue;
            };
            let mut after: Option<Key> = None;
            loop {
                let batch = self.batch(shard, after.as_deref(), Some(until.as_slice()));
                let Some((last, _)) = batch.last() else { break };
                after = Some(last.clone());
                if f(batch) {
                    return;
                }
            }
        }
    }

    /// Calls `visit` with every record in schema `want`, a batch at a time (no lock held while
    /// `visit` runs), until it returns `true` (stop). `ordered`: ascending key order, merged
    /// across shards; otherwise shard by shard.
    pub fn scan(
        &self,
        want: u32,
        ordered: bool,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), RecordFailure> {
        let value_of = |key: &[u8], record: &Record| -> Result<Option<Vec<u8>>, RecordFailure> {
            if record.schema == want {
                Ok(None)
            } else {
                self.convert(key, record, want).map(Some)
            }
        };
        if !ordered {
            let mut outcome = Ok(());
            self.batches(|batch| {
                for (key, record) in &batch {
                    match value_of(key, record) {
                        Ok(converted) => {
                            if visit(key, converted.as_deref().unwrap_or(&record.value)) {
                                return true;
                            }
                        }
                        Err(e) => {
                            outcome = Err(e);
                            return true;
                        }
                    }
                }
                false
            });
            return outcome;
        }
        // Ordered: one cursor per shard, merged by a heap of each shard's next key.
        let mut buffers: Vec<Queue> = (0..SHARDS).map(|_| VecDeque::new()).collect();
        let mut after: Vec<Option<Key>> = vec![None; SHARDS];
        let mut done = [false; SHARDS];
        let mut heap = BinaryHeap::new();
        let mut refill = |shard: usize, buffers: &mut Vec<Queue>| {
            if buffers[shard].is_empty() && !done[shard] {
                let batch = self.batch(shard, after[shard].as_deref(), None);
                match batch.last() {
                    Some((last, _)) => after[shard] = Some(last.clone()),
                    None => done[shard] = true,
                }
                buffers[shard].extend(batch);
            }
            buffers[shard].front().map(|(key, _)| key.clone())
        };
        for shard in 0..SHARDS {
            if let Some(key) = refill(shard, &mut buffers) {
                heap.push(Reverse((key, shard)));
            }
        }
        while let Some(Reverse((_, shard))) = heap.pop() {
            let Some((key, record)) = buffers[shard].pop_front() else {
                continue;
            };
            let converted = value_of(&key, &record)?;
            if visit(&key, converted.as_deref().unwrap_or(&record.value)) {
                return Ok(());
            }
            if let Some(next) = refill(shard, &mut buffers) {
                heap.push(Reverse((next, shard)));
            }
        }
        Ok(())
    }

    /// Starts or stops tracking written keys in every shard.
    pub(crate) fn track(&self, on: bool) {
        for shard in self.shards.iter() {
            shard.write().dirty = on.then(HashSet::new);
        }
    }

    /// The keys written since the last call (or since tracking began); tracking goes on.
    pub(crate) fn take_dirty(&self) -> Vec<Box<[u8]>> {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            if let Some(dirty) = &mut shard.write().dirty {
                keys.extend(dirty.drain());
            }
        }
        keys
    }

    /// The record of `key`, copied.
    pub(crate) fn record(&self, key: &[u8]) -> Option<Record> {
        self.shard(key).read().get(key).cloned()
    }

    /// Replaces the record of `key` by `record` if it is still `expected` (a background
    /// conversion that raced with no write).
    pub(crate) fn replace_if(&self, key: &[u8], expected: &Record, record: Record) {
        let mut guard = self.shard(key).write();
        if guard.get(key) == Some(expected) {
            guard.replace(key, record);
        }
    }

    /// Stores a record as read from a snapshot (no tracking, no conversion).
    pub(crate) fn restore(&self, key: &[u8], record: Record) {
        self.shard(key).write().insert(key, record);
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("records", &self.count())
            .finish_non_exhaustive()
    }
}
