//! counter v2: per-key counters, upgraded in place from counter v1.
//!
//! - `POST /incr/{key}` → that key's new value; `GET /count/{key}` → its value
//! - v1's routes still work: `POST /incr` increments key `default`, `GET /count` is the sum
//!
//! State schema 2: `u32 LE` number of keys, then for each key `u32 LE` length, the UTF-8 key,
//! `u64 LE` value. It imports schema 1 (the v1 total becomes key `default`) and exports
//! schema 1 (the sum) so a rollback to v1 keeps the total.
//!
//! Merge (a handoff from a departing peer) accepts schemas 2 and 1: each of the peer's keys is
//! added to the same key here (a v1 peer's total to key `default`). Nothing is applied unless
//! all of it decodes and no sum overflows.

use molt_abi::{App, AppError, Request, Response};
use parking::Mutex;
use std::collections::BTreeMap;

mod parking {
    //! A poison-tolerant mutex: a panic in one request must not wedge every later one.
    pub struct Mutex<T>(std::sync::Mutex<T>);
    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }
        pub fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}

/// The key v1's single counter becomes.
pub const DEFAULT_KEY: &str = "default";

/// Per-key counters behind one lock: increments are serialised, never lost.
pub struct Counter {
    keys: Mutex<BTreeMap<String, u64>>,
}

impl Counter {
    fn incr(&self, key: &str) -> u64 {
        let mut keys = self.keys.lock();
        let value = keys.entry(key.to_owned()).or_insert(0);
        *value += 1;
        *value
    }

    /// The sum over all keys: what v1 calls the total.
    pub fn sum(&self) -> u64 {
        self.keys.lock().values().sum()
    }

    /// One key's value (0 when absent).
    pub fn get(&self, key: &str) -> u64 {
        self.keys.lock().get(key).copied().unwrap_or(0)
    }
}

impl App for Counter {
    const NAME: &'static str = "counter";
    const SCHEMA: u32 = 2;
    const IMPORTS: &'static [u32] = &[1, 2];
    const EXPORTS: &'static [u32] = &[2, 1];

    fn create() -> Result<Self, AppError> {
        Ok(Counter {
            keys: Mutex::new(BTreeMap::new()),
        })
    }

    fn handle(&self, req: &Request<'_>) -> Response {
        let segments: Vec<&str> = req.segments().collect();
        match (req.method(), segments.as_slice()) {
            ("POST", ["incr"]) => Response::ok(self.incr(DEFAULT_KEY).to_string()),
            ("POST", ["incr", key]) => Response::ok(self.incr(key).to_string()),
            ("GET", ["count"]) => Response::ok(self.sum().to_string()),
            ("GET", ["count", key]) => Response::ok(self.get(key).to_string()),
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, schema: u32) -> Result<Vec<u8>, AppError> {
        let keys = self.keys.lock();
        if schema == 1 {
            return Ok(keys.values().sum::<u64>().to_le_bytes().to_vec());
        }
        let mut out = Vec::with_capacity(4 + keys.keys().map(|k| 12 + k.len()).sum::<usize>());
        out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
        for (key, value) in keys.iter() {
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        Ok(out)
    }

    fn import_state(schema: u32, state: &[u8]) -> Result<Self, AppError> {
        Ok(Counter {
            keys: Mutex::new(decode(schema, state)?),
        })
    }

    const MERGES: &'static [u32] = &[2, 1];

    fn merge_state(&mut self, schema: u32, state: &[u8]) -> Result<(), AppError> {
        let peer = decode(schema, state)?;
        let keys = self.keys.get_mut();
        let mut sums = Vec::with_capacity(peer.len());
        for (key, value) in &peer {
            let mine = keys.get(key).copied().unwrap_or(0);
            let sum = mine
                .checked_add(*value)
                .ok_or_else(|| AppError(format!("merging key {key:?}: {mine} + {value} overflows a u64")))?;
            sums.push(sum);
        }
        for ((key, _), sum) in peer.into_iter().zip(sums) {
            keys.insert(key, sum);
        }
        Ok(())
    }
}

/// The keys of a state in `schema` (1: one total, which becomes key `default`; 2: per key).
fn decode(schema: u32, state: &[u8]) -> Result<BTreeMap<String, u64>, AppError> {
    match schema {
        1 => {
            let total: [u8; 8] = state
                .try_into()
                .map_err(|_| AppError(format!("counter schema 1 is 8 bytes, got {}", state.len())))?;
            Ok(BTreeMap::from([(
                DEFAULT_KEY.to_owned(),
                u64::from_le_bytes(total),
            )]))
        }
        _ => decode_v2(state).ok_or_else(|| AppError::new("counter schema 2 state is malformed")),
    }
}

fn decode_v2(mut state: &[u8]) -> Option<BTreeMap<String, u64>> {
    fn take<'a>(state: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (state.get(..n)?, state.get(n..)?);
        *state = rest;
        Some(head)
    }
    let count = u32::from_le_bytes(take(&mut state, 4)?.try_into().ok()?);
    let mut keys = BTreeMap::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(take(&mut state, 4)?.try_into().ok()?) as usize;
        let key = std::str::from_utf8(take(&mut state, len)?).ok()?.to_owned();
        let value = u64::from_le_bytes(take(&mut state, 8)?.try_into().ok()?);
        keys.insert(key, value);
    }
    state.is_empty().then_some(keys)
}

molt_abi::export_app!(Counter);

#[cfg(test)]
mod tests {
    use super::*;
    use molt_abi::testing::{call, merge, round_trip};

    #[test]
    fn per_key_counts_and_v1_routes() {
        let app = Counter::create().unwrap();
        assert_eq!(call(&app, "POST", "/incr/a", b"").text(), "1");
        assert_eq!(call(&app, "POST", "/incr/a", b"").text(), "2");
        assert_eq!(call(&app, "POST", "/incr", b"").text(), "1");
        assert_eq!(call(&app, "GET", "/count/a", b"").text(), "2");
        assert_eq!(call(&app, "GET", "/count", b"").text(), "3");
        let restored = round_trip(&app).unwrap();
        assert_eq!(call(&restored, "GET", "/count/a", b"").text(), "2");
    }

    #[test]
    fn imports_schema_1_and_exports_it_back() {
        let app = Counter::import_state(1, &41u64.to_le_bytes()).unwrap();
        assert_eq!(call(&app, "POST", "/incr", b"").text(), "42");
        call(&app, "POST", "/incr/b", b"");
        assert_eq!(app.export_state(1).unwrap(), 43u64.to_le_bytes());
        assert!(
            Counter::import_state(2, &[1, 0, 0, 0, 9]).is_err(),
            "truncated schema 2 is refused"
        );
    }

    #[test]
    fn merge_adds_key_by_key_from_either_schema() {
        let live = Counter::create().unwrap();
        call(&live, "POST", "/incr/a", b"");
        call(&live, "POST", "/incr", b"");
        let peer = Counter::create().unwrap();
        for target in ["/incr/a", "/incr/a", "/incr/b"] {
            call(&peer, "POST", target, b"");
        }
        let merged = merge(&live, &peer).unwrap();
        assert_eq!(
            (merged.get("a"), merged.get("b"), merged.get(DEFAULT_KEY)),
            (3, 1, 1)
        );
        assert_eq!(live.sum(), 2, "the running instance is untouched");

        // What a v1 peer exports: its total, which goes to `default`.
        let mut merged = round_trip(&live).unwrap();
        merged.merge_state(1, &10u64.to_le_bytes()).unwrap();
        assert_eq!(
            (merged.get(DEFAULT_KEY), merged.get("a")),
            (11, 1),
            "a v1 total goes to default"
        );

        let mut copy = round_trip(&live).unwrap();
        let overflow = [(DEFAULT_KEY, u64::MAX)];
        let mut bytes = (overflow.len() as u32).to_le_bytes().to_vec();
        for (key, value) in overflow {
            bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        assert!(copy.merge_state(2, &bytes).is_err());
        assert!(copy.merge_state(2, &[1, 0, 0, 0, 9]).is_err());
        assert_eq!(copy.sum(), 2, "a refused merge changed nothing");
    }
}
