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
//! As in v1: [`SHARDS`] shards, each a `RwLock<HashMap>` chosen by an FNV-1a hash of the key.
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
//! Export pre-sizes its buffer and writes it in one pass; import reads it in one pass,
//! allocating only each key and value, and refuses truncated input, trailing bytes, non-UTF-8
//! or duplicate keys, or a zero counter, with an error (never a panic).

use molt_abi::{App, AppError, Request, Response};
use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Number of shards the map is split into.
pub const SHARDS: usize = 16;

/// Upper bound, in bytes, of what one `POST /preload` may create (keys and values).
pub const PRELOAD_LIMIT: u64 = 64 << 30;

/// A value and how many times its key was written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: Vec<u8>,
    writes: u64,
}

/// One shard: its part of the map and the totals it holds, kept in step under its lock.
#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry>,
    key_bytes: usize,
    value_bytes: usize,
    /// Sum of the counters (u128: a sum of u64 counters cannot overflow it).
    writes: u128,
}

impl Shard {
    /// Inserts or replaces, counting one write; returns whether the key is new.
    fn put(&mut self, key: &str, value: Vec<u8>) -> bool {
        match self.map.get_mut(key) {
            Some(old) => {
                self.value_bytes = self.value_bytes - old.value.len() + value.len();
                old.value = value;
                // A counter imported at u64::MAX stays there rather than wrap.
                let writes = old.writes.saturating_add(1);
                self.writes += u128::from(writes - old.writes);
                old.writes = writes;
                false
            }
            None => {
                self.insert_new(key, Entry { value, writes: 1 });
                true
            }
        }
    }

    /// Inserts an entry for a key known to be absent.
    fn insert_new(&mut self, key: &str, entry: Entry) {
        self.key_bytes += key.len();
        self.value_bytes += entry.value.len();
        self.writes += u128::from(entry.writes);
        self.map.insert(key.to_owned(), entry);
    }

    fn delete(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(old) => {
                self.key_bytes -= key.len();
                self.value_bytes -= old.value.len();
                self.writes -= u128::from(old.writes);
                true
            }
            None => false,
        }
    }
}

/// A poison-tolerant `RwLock`: a panic in one request must not wedge every later one.
#[derive(Default)]
struct Lock<T>(RwLock<T>);

impl<T> Lock<T> {
    fn new(value: T) -> Self {
        Lock(RwLock::new(value))
    }
    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The store: [`SHARDS`] independently locked shards.
pub struct Kv {
    shards: Box<[Lock<Shard>]>,
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
        format!(
            "{{\"keys\":{},\"key_bytes\":{},\"value_bytes\":{},\"bytes\":{},\"writes\":{}}}\n",
            self.keys,
            self.key_bytes,
            self.value_bytes,
            self.key_bytes + self.value_bytes,
            self.writes
        )
    }
}

/// FNV-1a: cheap, deterministic, good enough to spread keys over shards.
fn shard_of(key: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 32) as usize % SHARDS
}

/// The deterministic value `POST /preload` stores under key `k{index}`.
pub fn preload_value(index: u64, size: usize) -> Vec<u8> {
    let start = (index % 26) as usize;
    (0..size).map(|j| b'a' + ((start + j) % 26) as u8).collect()
}

impl Kv {
    fn from_shards(shards: Vec<Shard>) -> Self {
        Kv {
            shards: shards.into_iter().map(Lock::new).collect(),
        }
    }

    fn shard(&self, key: &str) -> &Lock<Shard> {
        &self.shards[shard_of(key.as_bytes())]
    }

    /// The value of `key`, copied.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.shard(key).read().map.get(key).map(|e| e.value.clone())
    }

    /// How many times `key` was written.
    pub fn writes(&self, key: &str) -> Option<u64> {
        self.shard(key).read().map.get(key).map(|e| e.writes)
    }

    /// Stores `value` under `key`, counting one write; returns whether the key is new.
    pub fn put(&self, key: &str, value: Vec<u8>) -> bool {
        self.shard(key).write().put(key, value)
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, key: &str) -> bool {
        self.shard(key).write().delete(key)
    }

    /// Counts of keys and bytes, summed shard by shard.
    pub fn stats(&self) -> Stats {
        self.shards.iter().fold(Stats::default(), |acc, shard| {
            let shard = shard.read();
            Stats {
                keys: acc.keys + shard.map.len(),
                key_bytes: acc.key_bytes + shard.key_bytes,
                value_bytes: acc.value_bytes + shard.value_bytes,
                writes: acc.writes + shard.writes,
            }
        })
    }

    /// Fills keys `k0..k{keys-1}` with deterministic `size`-byte values ([`preload_value`]),
    /// one write each.
    ///
    /// The values are built from one template (a copy per key, no per-byte work), and the
    /// shards are filled in parallel by scoped threads, all joined before this returns.
    pub fn preload(&self, keys: u64, size: usize) {
        let template: Vec<u8> = preload_value(0, size + 26);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, SHARDS);
        std::thread::scope(|scope| {
            for worker in 0..workers {
                let template = &template;
                scope.spawn(move || {
                    let mine: Vec<usize> = (worker..SHARDS).step_by(workers).collect();
                    let mut guards: Vec<_> = mine.iter().map(|&s| self.shards[s].write()).collect();
                    // Shard number → index in `guards`, for the shards this worker fills.
                    let mut slot = [usize::MAX; SHARDS];
                    for (i, &s) in mine.iter().enumerate() {
                        slot[s] = i;
                    }
                    for guard in guards.iter_mut() {
                        let more = (keys as usize / SHARDS).saturating_sub(guard.map.len());
                        guard.map.reserve(more);
                    }
                    let mut name = String::with_capacity(24);
                    for i in 0..keys {
                        name.clear();
                        name.push('k');
                        push_decimal(&mut name, i);
                        if let Some(guard) = guards.get_mut(slot[shard_of(name.as_bytes())]) {
                            let start = (i % 26) as usize;
                            guard.put(&name, template[start..start + size].to_vec());
                        }
                    }
                });
            }
        });
    }

    fn handle_preload(&self, req: &Request<'_>) -> Response {
        let param = |name: &str| -> Result<u64, Response> {
            req.query_param(name)
                .ok_or_else(|| Response::new(400, format!("missing query parameter {name}\n")))?
                .parse::<u64>()
                .map_err(|e| Response::new(400, format!("bad {name}: {e}\n")))
        };
        let (keys, size) = match (param("keys"), param("size")) {
            (Ok(keys), Ok(size)) => (keys, size),
            (Err(resp), _) | (_, Err(resp)) => return resp,
        };
        if size > u64::from(u32::MAX) {
            return Response::new(413, "size is over u32::MAX bytes\n");
        }
        // Each key name is at most 21 bytes (`k` and 20 digits).
        let total = keys.checked_mul(size + 21);
        if !matches!(total, Some(t) if t <= PRELOAD_LIMIT) {
            return Response::new(413, format!("preload over the limit of {PRELOAD_LIMIT} bytes\n"));
        }
        self.preload(keys, size as usize);
        json(200, self.stats().json())
    }
}

/// Appends the decimal digits of `n` without allocating.
fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(d as char);
    }
}

fn json(status: u16, body: String) -> Response {
    Response::new(status, body).with_header("content-type", "application/json")
}

impl App for Kv {
    const NAME: &'static str = "kv";
    const SCHEMA: u32 = 2;
    const IMPORTS: &'static [u32] = &[1, 2];
    const EXPORTS: &'static [u32] = &[2, 1];

    fn create() -> Result<Self, AppError> {
        Ok(Kv::from_shards((0..SHARDS).map(|_| Shard::default()).collect()))
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
            (method, (Some("kv"), Some(key), None, None)) => match method {
                "GET" => match self.get(key) {
                    Some(value) => {
                        Response::new(200, value).with_header("content-type", "application/octet-stream")
                    }
                    None => Response::not_found(),
                },
                "PUT" => {
                    if req.body().len() > u32::MAX as usize {
                        return Response::new(413, "values are at most u32::MAX bytes\n");
                    }
                    if self.put(key, req.body().to_vec()) {
                        Response::new(201, "created\n")
                    } else {
                        Response::ok("replaced\n")
                    }
                }
                "DELETE" if self.delete(key) => Response::new(204, Vec::new()),
                "DELETE" => Response::not_found(),
                _ => Response::new(405, "method not allowed\n").with_header("allow", "GET, PUT, DELETE"),
            },
            ("GET", (Some("stats"), None, None, None)) => json(200, self.stats().json()),
            ("POST", (Some("preload"), None, None, None)) => self.handle_preload(req),
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, schema: u32) -> Result<Vec<u8>, AppError> {
        // Schema 1 is schema 2 without the counters (the rollback path: they are dropped).
        let with_writes = schema == 2;
        // Hold every shard's read lock for the whole export: one consistent snapshot.
        let shards: Vec<_> = self.shards.iter().map(Lock::read).collect();
        let count: usize = shards.iter().map(|s| s.map.len()).sum();
        let entry_overhead = if with_writes { 16 } else { 8 };
        let size =
            8 + count * entry_overhead + shards.iter().map(|s| s.key_bytes + s.value_bytes).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&(count as u64).to_le_bytes());
        for (key, entry) in shards.iter().flat_map(|s| s.map.iter()) {
            let value_len = u32::try_from(entry.value.len())
                .map_err(|_| AppError(format!("kv: the value of {key:?} is over u32::MAX bytes")))?;
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&value_len.to_le_bytes());
            out.extend_from_slice(&entry.value);
            if with_writes {
                out.extend_from_slice(&entry.writes.to_le_bytes());
            }
        }
        debug_assert_eq!(out.len(), size);
        Ok(out)
    }

    fn import_state(schema: u32, state: &[u8]) -> Result<Self, AppError> {
        // Schema 1 (kv v1) has no counters: each of its keys was written at least once.
        let with_writes = schema == 2;
        let mut reader = Reader::new(schema, state);
        let count = reader.u64("entry count")?;
        // Each entry takes at least 8 (schema 1) or 16 (schema 2) bytes: a larger count is
        // malformed, and must not size an allocation.
        let min_entry = if with_writes { 16 } else { 8 };
        if count > (reader.remaining() / min_entry) as u64 {
            return Err(reader.error(format!(
                "{count} entries cannot fit in {} bytes",
                reader.remaining()
            )));
        }
        let per_shard = count as usize / SHARDS + 1;
        let mut shards: Vec<Shard> = (0..SHARDS)
            .map(|_| Shard {
                map: HashMap::with_capacity(per_shard),
                ..Shard::default()
            })
            .collect();
        for entry in 0..count {
            let key = reader.str(entry)?;
            let value = reader.bytes(entry, "value")?;
            let writes = if with_writes {
                match reader.u64(&format!("entry {entry}: write counter"))? {
                    0 => {
                        return Err(
                            reader.error(format!("entry {entry}: key {key:?} has a zero write counter"))
                        )
                    }
                    n => n,
                }
            } else {
                1
            };
            let shard = &mut shards[shard_of(key.as_bytes())];
            if shard.map.contains_key(key) {
                return Err(reader.error(format!("entry {entry}: duplicate key {key:?}")));
            }
            shard.insert_new(
                key,
                Entry {
                    value: value.to_vec(),
                    writes,
                },
            );
        }
        if reader.remaining() != 0 {
            return Err(reader.error(format!(
                "{} trailing bytes after {count} entries",
                reader.remaining()
            )));
        }
        Ok(Kv::from_shards(shards))
    }
}

/// Reads the little-endian encoding, refusing anything truncated with a message.
struct Reader<'a> {
    schema: u32,
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(schema: u32, bytes: &'a [u8]) -> Self {
        Reader {
            schema,
            rest: bytes,
            offset: 0,
        }
    }

    fn error(&self, message: String) -> AppError {
        AppError(format!("kv schema {}: {message}", self.schema))
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], AppError> {
        if self.rest.len() < n {
            return Err(self.error(format!(
                "truncated at byte {}: {what} needs {n} bytes, {} left",
                self.offset,
                self.rest.len()
            )));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        self.offset += n;
        Ok(head)
    }

    fn u64(&mut self, what: &str) -> Result<u64, AppError> {
        let bytes = self.take(8, what)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("took 8 bytes")))
    }

    fn u32(&mut self, what: &str) -> Result<u32, AppError> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("took 4 bytes")))
    }

    /// A length-prefixed byte string.
    fn bytes(&mut self, entry: u64, what: &str) -> Result<&'a [u8], AppError> {
        let len = self.u32(&format!("entry {entry}: {what} length"))? as usize;
        self.take(len, &format!("entry {entry}: {what}"))
    }

    /// A length-prefixed UTF-8 key.
    fn str(&mut self, entry: u64) -> Result<&'a str, AppError> {
        let offset = self.offset;
        let bytes = self.bytes(entry, "key")?;
        std::str::from_utf8(bytes)
            .map_err(|e| self.error(format!("entry {entry} at byte {offset}: key is not UTF-8: {e}")))
    }
}

// Not in this crate's own unit-test build: that test binary also links kv v1 (a
// dev-dependency, for the migration test), whose entry symbol has the same name. The cdylib and
// the rlib other crates link are built without `cfg(test)` and export it as usual.
#[cfg(not(test))]
molt_abi::export_app!(Kv);

#[cfg(test)]
mod tests;
