//! kv v1: a concurrent in-memory key-value store, the sample app molt's benchmarks use to
//! measure how the swap pause grows with the size of the state.
//!
//! ## Routes
//! - `PUT /kv/{key}` with the value as the body → `201 Created` for a new key, `200 OK` when it
//!   replaced a value
//! - `GET /kv/{key}` → `200` with the value (`application/octet-stream`), `404` when absent
//! - `DELETE /kv/{key}` → `204 No Content`, `404` when absent
//! - `GET /stats` → `{"keys":N,"key_bytes":K,"value_bytes":V,"bytes":K+V}` (JSON)
//! - `POST /preload?keys=N&size=BYTES` → fills keys `k0` .. `k{N-1}` with `BYTES`-byte values in
//!   one call (replacing what they held) and answers with the stats. The content is
//!   deterministic: byte `j` of the value of key `k{i}` is `b'a' + (i + j) % 26`. The state can
//!   be sized from a few bytes to gigabytes without one request per key; `N × (BYTES + key)` is
//!   capped at [`PRELOAD_LIMIT`] (`413` above it), values at `u32::MAX` bytes.
//!
//! A key is one path segment (no `/`), taken as is (no percent-decoding).
//!
//! ## Merge (a handoff from a departing peer)
//! Schema 1: the union of the keys; a key both hold keeps this (the live) pod's value. The
//! peer's state is decoded whole before anything is applied.
//!
//! ## Concurrency
//! The map is split into [`SHARDS`] shards, each a `RwLock<HashMap>` chosen by an FNV-1a hash (finalised)
//! of the key: reads of one shard run in parallel, writes contend only within one shard. The
//! store itself is the `kv-store` crate, shared with kv v2.
//!
//! ## State schema 1
//! All integers little-endian: `u64` number of entries, then per entry `u32` key length, the
//! UTF-8 key, `u32` value length, the value. The order of entries is unspecified. Export
//! writes it in one pass straight into the supervisor's buffer (`export_into`); import reads it
//! in one pass and, during a swap, keeps that buffer, pointing each key and value into it
//! (`import_shared`: no allocation or copy per entry, see [`kv_store::Blob`]). Truncated input,
//! trailing bytes, non-UTF-8 or duplicate keys are refused with an error (never a panic).

use kv_store::{json, Blob, Store};
use molt_abi::{App, AppError, Request, Response, StateBuf, StateWriter, Tables};

pub use kv_store::{preload_value, Stats, PRELOAD_LIMIT, SHARDS};

/// The store: [`SHARDS`] independently locked shards of plain values.
pub struct Kv {
    store: Store<Blob>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv").field("stats", &self.stats()).finish()
    }
}

impl Kv {
    /// The value of `key`, copied.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.store.get(key)
    }

    /// Stores `value` under `key`; returns whether the key is new.
    pub fn put(&self, key: &str, value: Vec<u8>) -> bool {
        self.store.put(key, value)
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, key: &str) -> bool {
        self.store.delete(key)
    }

    /// Counts of keys and bytes, summed shard by shard.
    pub fn stats(&self) -> Stats {
        self.store.totals().0
    }

    /// Fills keys `k0..k{keys-1}` with deterministic `size`-byte values ([`preload_value`]),
    /// the shards in parallel.
    pub fn preload(&self, keys: u64, size: usize) {
        self.store.preload(keys, size);
    }
}

impl App for Kv {
    const NAME: &'static str = "kv";
    const SCHEMA: u32 = 1;

    fn create() -> Result<Self, AppError> {
        Ok(Kv {
            store: Store::default(),
        })
    }

    fn handle(&self, req: &Request<'_>) -> Response {
        let mut segments = req.segments();
        let route = (segments.next(), segments.next(), segments.next());
        match (req.method(), route) {
            (_, (Some("kv"), Some(key), None)) => self.store.handle_key(req, key),
            ("GET", (Some("stats"), None, None)) => json(200, self.stats().json()),
            ("POST", (Some("preload"), None, None)) => match self.store.handle_preload(req) {
                Ok(()) => json(200, self.stats().json()),
                Err(resp) => resp,
            },
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, _schema: u32) -> Result<Vec<u8>, AppError> {
        // Schema 1 is the shared encoding with nothing after each value.
        self.store.export(0, |_, _| {})
    }

    /// The same bytes, written straight into the supervisor's buffer.
    fn export_into(&self, _schema: u32, out: &mut StateWriter<'_>) -> Result<(), AppError> {
        self.store.export_into(out, 0, |_, _| {})
    }

    fn import_state(schema: u32, state: &[u8]) -> Result<Self, AppError> {
        let store = Store::import(schema, state, 0, |_, _, _, value| Ok(value))?;
        Ok(Kv { store })
    }

    /// Keeps the supervisor's buffer: keys and values point into it (no copy per entry).
    fn import_shared(_tables: Tables, schema: u32, state: StateBuf) -> Result<Self, AppError> {
        let store = Store::import_shared(schema, state, 0, |_, _, _, value| Ok(value))?;
        Ok(Kv { store })
    }

    const MERGES: &'static [u32] = &[1];

    /// The union of the keys; a key both pods hold keeps the live pod's value (v1 keeps no
    /// history that could say which write was later).
    fn merge_state(&mut self, schema: u32, state: &[u8]) -> Result<(), AppError> {
        let peer = Self::import_state(schema, state)?.store;
        self.store.absorb(peer, |_, _mine, _theirs| {});
        Ok(())
    }
}

molt_abi::export_app!(Kv);

#[cfg(test)]
mod tests;
