//! The store: [`SHARDS`] independently locked shards, and the one-pass state encoding the
//! schemas share (`u64` count, then per entry `u32` key length, key, `u32` value length,
//! value, then whatever the entry type adds).

use crate::blob::Blob;
use crate::lock::Lock;
use crate::reader::Reader;
use crate::shard::{shard_of, Entry, Shard, SHARDS};
use crate::Stats;
use molt_abi::{AppError, StateBuf, StateWriter};
use std::sync::{Arc, RwLockReadGuard};

/// [`SHARDS`] independently locked shards of entries `V`.
pub struct Store<V> {
    shards: Box<[Lock<Shard<V>>]>,
}

impl<V: Entry> Default for Store<V> {
    fn default() -> Self {
        Store::from_shards((0..SHARDS).map(|_| Shard::default()).collect())
    }
}

impl<V: Entry> Store<V> {
    /// A store of the given shards, which must be [`SHARDS`] filled by [`shard_of`].
    pub fn from_shards(shards: Vec<Shard<V>>) -> Self {
        debug_assert_eq!(shards.len(), SHARDS);
        Store {
            shards: shards.into_iter().map(Lock::new).collect(),
        }
    }

    pub(crate) fn lock(&self, shard: usize) -> &Lock<Shard<V>> {
        &self.shards[shard]
    }

    /// Runs `f` on the entry of `key` under its shard's read lock.
    pub fn read<R>(&self, key: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        self.lock(shard_of(key.as_bytes()))
            .read()
            .map()
            .get(key.as_bytes())
            .map(f)
    }

    /// The value of `key`, copied.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.read(key, |entry| entry.value().to_vec())
    }

    /// Stores `value` under `key`; returns whether the key is new.
    pub fn put(&self, key: &str, value: Vec<u8>) -> bool {
        self.lock(shard_of(key.as_bytes())).write().put(key, value)
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, key: &str) -> bool {
        self.lock(shard_of(key.as_bytes())).write().delete(key)
    }

    /// Counts of keys and bytes, and the sum of the tallies, summed shard by shard.
    pub fn totals(&self) -> (Stats, u128) {
        self.shards
            .iter()
            .fold((Stats::default(), 0), |(acc, tally), shard| {
                let shard = shard.read();
                let stats = Stats {
                    keys: acc.keys + shard.map().len(),
                    key_bytes: acc.key_bytes + shard.key_bytes(),
                    value_bytes: acc.value_bytes + shard.value_bytes(),
                };
                (stats, tally + shard.tally())
            })
    }

    /// Every shard's read lock, held together: one consistent snapshot.
    pub fn read_all(&self) -> Vec<RwLockReadGuard<'_, Shard<V>>> {
        self.shards.iter().map(Lock::read).collect()
    }

    /// Encodes every entry in one pass into a pre-sized buffer: `extra_len` bytes per entry
    /// are written by `extra` after the value. See [`Store::export_into`].
    pub fn export(
        &self,
        extra_len: usize,
        extra: impl FnMut(&V, &mut StateWriter<'_>),
    ) -> Result<Vec<u8>, AppError> {
        let mut out = Vec::new();
        self.export_into(&mut StateWriter::new(&mut out), extra_len, extra)?;
        Ok(out)
    }

    /// Encodes every entry in one pass into `out` (the supervisor's buffer during a swap or
    /// a snapshot, pre-faulted and sized from the last export: no buffer of the store's own),
    /// reserving the whole size first: `extra_len` bytes per entry are written by `extra`
    /// after the value.
    ///
    /// Shards are encoded one at a time, each under its own read lock, because the export may
    /// run while requests are served (a snapshot does not pause traffic): a write waits for at
    /// most one shard's encoding, never for the whole export. Each shard is consistent in
    /// itself (its entries with their tallies), which is all the state promises across
    /// shards anyway. During a swap no request runs, and the result is exact.
    pub fn export_into(
        &self,
        out: &mut StateWriter<'_>,
        extra_len: usize,
        mut extra: impl FnMut(&V, &mut StateWriter<'_>),
    ) -> Result<(), AppError> {
        let (stats, _) = self.totals();
        let start = out.len();
        out.reserve(8 + stats.keys * (8 + extra_len) + stats.key_bytes + stats.value_bytes);
        out.extend_from_slice(&0u64.to_le_bytes());
        let mut count = 0u64;
        for shard in self.shards.iter() {
            let shard = shard.read();
            // What this shard adds, reserved at once (writes since the totals may have grown it).
            out.reserve(shard.map().len() * (8 + extra_len) + shard.key_bytes() + shard.value_bytes());
            for (key, entry) in shard.map().iter() {
                let (key, value) = (key.as_bytes(), entry.value());
                let value_len = u32::try_from(value.len()).map_err(|_| {
                    AppError(format!(
                        "kv: the value of {:?} is over u32::MAX bytes",
                        String::from_utf8_lossy(key)
                    ))
                })?;
                out.put_u32_le(key.len() as u32);
                out.extend_from_slice(key);
                out.put_u32_le(value_len);
                out.extend_from_slice(value);
                extra(entry, out);
                count += 1;
            }
        }
        out.written_mut()[start..start + 8].copy_from_slice(&count.to_le_bytes());
        Ok(())
    }

    /// Decodes what [`Store::export`] wrote, in one pass, copying each key and value:
    /// `entry` reads whatever follows each value (at least `extra_len` bytes) and builds the
    /// entry from the value. Refuses truncated input, trailing bytes, non-UTF-8 or duplicate
    /// keys with an error naming `schema`.
    pub fn import(
        schema: u32,
        state: &[u8],
        extra_len: usize,
        entry: impl FnMut(&mut Reader<'_>, u64, &Blob, Blob) -> Result<V, AppError>,
    ) -> Result<Self, AppError> {
        Self::decode(schema, state, extra_len, |part: &[u8]| Blob::from(part), entry)
    }

    /// [`Store::import`] that keeps `state` (the supervisor's export buffer, handed over by
    /// `import_shared`) and points every key and value into it: no allocation and no copy
    /// per entry (see [`Blob`]).
    pub fn import_shared(
        schema: u32,
        state: StateBuf,
        extra_len: usize,
        entry: impl FnMut(&mut Reader<'_>, u64, &Blob, Blob) -> Result<V, AppError>,
    ) -> Result<Self, AppError> {
        let state = Arc::new(state);
        Self::decode(
            schema,
            &state,
            extra_len,
            |part| Blob::shared(&state, part),
            entry,
        )
    }

    fn decode(
        schema: u32,
        state: &[u8],
        extra_len: usize,
        blob: impl Fn(&[u8]) -> Blob,
        mut entry: impl FnMut(&mut Reader<'_>, u64, &Blob, Blob) -> Result<V, AppError>,
    ) -> Result<Self, AppError> {
        let mut reader = Reader::new(schema, state);
        let count = reader.u64("entry count")?;
        // Each entry takes at least 8 bytes and the extra: a larger count is malformed, and
        // must not size an allocation.
        let min_entry = 8 + extra_len;
        if count > (reader.remaining() / min_entry) as u64 {
            return Err(reader.error(format!(
                "{count} entries cannot fit in {} bytes",
                reader.remaining()
            )));
        }
        // Room for an even spread and a little more, so no shard rehashes on the way.
        let per_shard = count as usize / SHARDS + count as usize / (SHARDS * 16) + 1;
        let mut shards: Vec<Shard<V>> = (0..SHARDS).map(|_| Shard::with_capacity(per_shard)).collect();
        for index in 0..count {
            let key = reader.str(index)?;
            let value = reader.bytes(index, "value")?;
            let key = blob(key.as_bytes());
            let built = entry(&mut reader, index, &key, blob(value))?;
            let shard = &mut shards[shard_of(key.as_bytes())];
            if let Err((key, _)) = shard.insert_unique(key, built) {
                return Err(reader.error(format!("entry {index}: duplicate key {key:?}")));
            }
        }
        if reader.remaining() != 0 {
            return Err(reader.error(format!(
                "{} trailing bytes after {count} entries",
                reader.remaining()
            )));
        }
        Ok(Store::from_shards(shards))
    }

    /// Merges a peer's store (already decoded, so nothing here can fail half way) into this
    /// one: the union of the keys; for a key both hold, `settle(key, mine, theirs)` decides
    /// what stays. Both stores shard keys the same way, so shard `i` merges into shard `i`.
    pub fn absorb(&mut self, peer: Store<V>, mut settle: impl FnMut(&str, &mut V, V)) {
        let peer_shards = Vec::from(peer.shards);
        for (mine, theirs) in self.shards.iter_mut().zip(peer_shards) {
            let mine = mine.get_mut();
            for (key, entry) in theirs.into_inner().into_entries() {
                mine.absorb(key, entry, &mut settle);
            }
        }
    }
}
