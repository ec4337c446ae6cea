//! kv v2: the kv store of v1 plus a per-key write counter, upgraded in place from kv v1 (and
//! rolled back to it).
//!
//! ## Routes
//! v1's routes, unchanged in shape:
//! - `PUT /kv/{key}` with the value as the body → `201 Created` for a new key, `200 OK` when it
//!   replaced a value; either way the key's write counter goes up by one
//! - `GET /kv/{key}` → `200` with the value (`application/octet-stream`), `404` when absent
//! - `DELETE /kv/{key}` → `204 No Content`, `404` when absent (the counter goes with the key:
//!   a key written again after a delete starts from 1)
//! - `GET /stats` → `{"keys":N,"key_bytes":K,"value_bytes":V,"bytes":K+V,"writes":W}` (JSON;
//!   `writes` is the sum of the counters, the one field v1 does not have)
//! - `POST /preload?keys=N&size=BYTES` → fills keys `k0` .. `k{N-1}` with `BYTES`-byte values
//!   (each counts as one write) and answers with the stats. Byte `j` of the value of key `k{i}`
//!   is `b'a' + (i + j) % 26`, as in v1. `N × (BYTES + key)` is capped at [`PRELOAD_LIMIT`]
//!   (`413` above it), values at `u32::MAX` bytes.
//!
//! and one new route:
//! - `GET /kv/{key}/writes` → how many times the key was written (decimal text), `404` when
//!   absent
//!
//! A key is one path segment (no `/`), taken as is (no percent-decoding).
//!
//! ## Concurrency
//! As in v1: [`SHARDS`] shards, each a `RwLock<HashMap>` chosen by an FNV-1a hash (finalised) of the key
//! (the `kv-store` crate both versions share).
//!
//! ## State schemas
//! All integers little-endian; the order of entries is unspecified.
//! - **Schema 2** (kept): `u64` number of entries, then per entry `u32` key length, the UTF-8
//!   key, `u32` value length, the value, `u64` write counter.
//! - **Schema 1** (kv v1's): the same without the counter: `u64` count, then `u32` key length,
//!   key, `u32` value length, value.
//!
//! v2 **imports** schemas 1 and 2: a v1 state becomes entries whose counter is 1 (each key was
//! written at least once; v1 kept no history). It **exports** schema 2 and, for a rollback to
//! v1, schema 1, which **drops the write counters**: the keys and values survive the rollback,
//! the counters do not, and an upgrade again after the rollback restarts them at 1.
//!
//! **Merge** (a handoff from a departing peer) takes schemas 2 and 1: the union of the keys;
//! a key both hold keeps the value written more times (a tie keeps this, the live, pod's) and
//! the sum of the write counters. The peer's state is decoded whole before anything is applied.
//!
//! Export writes in one pass straight into the supervisor's buffer; import reads it in one
//! pass and, during a swap, keeps that buffer (keys and values point into it, as in kv v1),
//! and refuses truncated input, trailing bytes, non-UTF-8 or duplicate keys, or a zero
//! counter, with an error (never a panic).

use kv_store::{json, Blob, Store};
use molt_abi::{App, AppError, Request, Response, StateBuf, StateWriter, Tables};

pub use kv_store::{preload_value, PRELOAD_LIMIT, SHARDS};

/// A value and how many times its key was written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counted {
    value: Blob,
    writes: u64,
}

impl kv_store::Entry for Counted {
    /// A first write.
    fn new(value: Blob) -> Self {
        Counted { value, writes: 1 }
    }

    fn value(&self) -> &[u8] {
        self.value.as_bytes()
    }

    fn replace(&mut self, value: Blob) {
        self.value = value;
        // A counter imported at u64::MAX stays there rather than wrap.
        self.writes = self.writes.saturating_add(1);
    }

    /// The shard sums the counters (in u128: a sum of u64 counters cannot overflow it).
    fn tally(&self) -> u128 {
        u128::from(self.writes)
    }
}

/// The store: [`SHARDS`] independently locked shards of counted values.
pub struct Kv {
    store: Store<Counted>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv").field("stats", &self.stats()).finish()
    }
}

/// What `GET /stats` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of keys.
    pub keys: usize,
    /// Sum of the key lengths.
    pub key_bytes: usize,
    /// Sum of the value lengths.
    pub value_bytes: usize,
    /// Sum of the write counters.
    pub writes: u128,
}

impl Stats {
    fn json(&self) -> String {
        let common = kv_store::Stats {
            keys: self.keys,
            key_bytes: self.key_bytes,
            value_bytes: self.value_bytes,
        };
        common.json_with(&format!(",\"writes\":{}", self.writes))
    }
}

impl Kv {
    /// The value of `key`, copied.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.store.get(key)
    }

    /// How many times `key` was written.
    pub fn writes(&self, key: &str) -> Option<u64> {
        self.store.read(key, |e| e.writes)
    }

    /// Stores `value` under `key`, counting one write; returns whether the key is new.
    pub fn put(&self, key: &str, value: Vec<u8>) -> bool {
        self.store.put(key, value)
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, key: &str) -> bool {
        self.store.delete(key)
    }

    /// Counts of keys, bytes and writes, summed shard by shard.
    pub fn stats(&self) -> Stats {
        let (common, writes) = self.store.totals();
        Stats {
            keys: common.keys,
            key_bytes: common.key_bytes,
            value_bytes: common.value_bytes,
            writes,
        }
    }

    /// Fills keys `k0..k{keys-1}` with deterministic `size`-byte values ([`preload_value`]),
    /// one write each, the shards in parallel.
    pub fn preload(&self, keys: u64, size: usize) {
        self.store.preload(keys, size);
    }
}

impl App for Kv {
    const NAME: &'static str = "kv";
    const SCHEMA: u32 = 2;
    const IMPORTS: &'static [u32] = &[1, 2];
    const EXPORTS: &'static [u32] = &[2, 1];

    fn create() -> Result<Self, AppError> {
        Ok(Kv {
            store: Store::default(),
        })
    }

    fn handle(&self, req: &Request<'_>) -> Response {
        let mut segments = req.segments();
        let route = (segments.next(), segments.next(), segments.next(), segments.next());
        match (req.method(), route) {
            (method, (Some("kv"), Some(key), Some("writes"), None)) => match (method, self.writes(key)) {
                ("GET", Some(writes)) => Response::ok(writes.to_string()),
                ("GET", None) => Response::not_found(),
                _ => Response::new(405, "method not allowed\n").with_header("allow", "GET"),
            },
            (_, (Some("kv"), Some(key), None, None)) => self.store.handle_key(req, key),
            ("GET", (Some("stats"), None, None, None)) => json(200, self.stats().json()),
            ("POST", (Some("preload"), None, None, None)) => match self.store.handle_preload(req) {
                Ok(()) => json(200, self.stats().json()),
                Err(resp) => resp,
            },
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, schema: u32) -> Result<Vec<u8>, AppError> {
        let mut out = Vec::new();
        self.export_into(schema, &mut StateWriter::new(&mut out))?;
        Ok(out)
    }

    fn export_into(&self, schema: u32, out: &mut StateWriter<'_>) -> Result<(), AppError> {
        // Schema 1 is schema 2 without the counters (the rollback path: they are dropped).
        if schema == 2 {
            self.store
                .export_into(out, 8, |entry, out| out.put_u64_le(entry.writes))
        } else {
            self.store.export_into(out, 0, |_, _| {})
        }
    }

    const MERGES: &'static [u32] = &[2, 1];

    /// The union of the keys; for a key both pods hold, the value written more times wins (a
    /// tie keeps the live pod's) and the write counters add up. A schema 1 peer's keys count
    /// one write each, as on import.
    fn merge_state(&mut self, schema: u32, state: &[u8]) -> Result<(), AppError> {
        let peer = Self::import_state(schema, state)?.store;
        self.store.absorb(peer, |_, mine, theirs| {
            let writes = mine.writes.saturating_add(theirs.writes);
            if theirs.writes > mine.writes {
                mine.value = theirs.value;
            }
            mine.writes = writes;
        });
        Ok(())
    }

    fn import_state(schema: u32, state: &[u8]) -> Result<Self, AppError> {
        let store = Store::import(schema, state, extra_len(schema), |reader, entry, key, value| {
            counted(schema, reader, entry, key, value)
        })?;
        Ok(Kv { store })
    }

    /// Keeps the supervisor's buffer: keys and values point into it (no copy per entry).
    fn import_shared(_tables: Tables, schema: u32, state: StateBuf) -> Result<Self, AppError> {
        let store = Store::import_shared(schema, state, extra_len(schema), |reader, entry, key, value| {
            counted(schema, reader, entry, key, value)
        })?;
        Ok(Kv { store })
    }
}

/// Bytes after each value in `schema`: schema 2's write counter.
fn extra_len(schema: u32) -> usize {
    if schema == 2 {
        8
    } else {
        0
    }
}

/// One imported entry. Schema 1 (kv v1) has no counters: each of its keys was written at
/// least once.
fn counted(
    schema: u32,
    reader: &mut kv_store::Reader<'_>,
    entry: u64,
    key: &Blob,
    value: Blob,
) -> Result<Counted, AppError> {
    let writes = if schema == 2 {
        match reader.entry_u64(entry, "write counter")? {
            0 => return Err(reader.error(format!("entry {entry}: key {key:?} has a zero write counter"))),
            n => n,
        }
    } else {
        1
    };
    Ok(Counted { value, writes })
}

// This crate's unit tests link kv v1 too (a dev-dependency, for the migration test); each
// crate's entry symbol has its own name (`molt_app_descriptor_<crate>`), so the two do not clash.
molt_abi::export_app!(Kv);

#[cfg(test)]
mod tests;
