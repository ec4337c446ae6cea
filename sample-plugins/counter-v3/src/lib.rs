//! counter v3: per-key counters that also count their updates, and increments by more than
//! one. Upgraded in place from counter v2, and rolled back to it.
//!
//! - `POST /incr/{key}` adds 1, `POST /incr/{key}/{n}` adds `n`; both answer the new value
//! - `GET /count/{key}` → the value; `GET /updates/{key}` → how many increments changed it
//! - v1's routes still work: `POST /incr` increments key `default`, `GET /count` is the sum
//!
//! State schema 3: `u32 LE` number of keys, then for each key `u32 LE` length, the UTF-8 key,
//! `u64 LE` value, `u64 LE` updates. It imports schema 2 (each key's updates start at its
//! value: v2 only ever added 1) and exports schema 2 (the values; the update counts are what
//! a rollback to v2 gives up, and v2 cannot hold them). It does not import schema 1: an app on
//! v1 goes through v2 first, and a push of v3 over v1 is refused before anything pauses.

use molt_abi::{App, AppError, Request, Response};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// The key v1's single counter became in v2.
pub const DEFAULT_KEY: &str = "default";

/// One key's counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// The count.
    pub value: u64,
    /// How many increments changed it.
    pub updates: u64,
}

/// Per-key counters behind one lock.
pub struct Counter {
    keys: Mutex<BTreeMap<String, Entry>>,
}

impl Counter {
    /// The map; a panic in one request must not wedge every later one.
    fn keys(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn incr(&self, key: &str, by: u64) -> u64 {
        let mut keys = self.keys();
        let entry = keys.entry(key.to_owned()).or_default();
        entry.value = entry.value.saturating_add(by);
        entry.updates += 1;
        entry.value
    }

    /// One key's counter (zero when absent).
    pub fn get(&self, key: &str) -> Entry {
        self.keys().get(key).copied().unwrap_or_default()
    }

    /// The sum over all keys.
    pub fn sum(&self) -> u64 {
        self.keys().values().map(|e| e.value).sum()
    }
}

impl App for Counter {
    const NAME: &'static str = "counter";
    const SCHEMA: u32 = 3;
    const IMPORTS: &'static [u32] = &[2, 3];
    const EXPORTS: &'static [u32] = &[3, 2];

    fn create() -> Result<Self, AppError> {
        Ok(Counter {
            keys: Mutex::new(BTreeMap::new()),
        })
    }

    fn handle(&self, req: &Request<'_>) -> Response {
        let segments: Vec<&str> = req.segments().collect();
        match (req.method(), segments.as_slice()) {
            ("POST", ["incr"]) => Response::ok(self.incr(DEFAULT_KEY, 1).to_string()),
            ("POST", ["incr", key]) => Response::ok(self.incr(key, 1).to_string()),
            ("POST", ["incr", key, n]) => match n.parse::<u64>() {
                Ok(n) => Response::ok(self.incr(key, n).to_string()),
                Err(_) => Response::new(400, format!("{n:?} is not a count\n")),
            },
            ("GET", ["count"]) => Response::ok(self.sum().to_string()),
            ("GET", ["count", key]) => Response::ok(self.get(key).value.to_string()),
            ("GET", ["updates", key]) => Response::ok(self.get(key).updates.to_string()),
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, schema: u32) -> Result<Vec<u8>, AppError> {
        let keys = self.keys();
        let with_updates = match schema {
            2 => false,
            3 => true,
            other => return Err(AppError(format!("counter v3 cannot export schema {other}"))),
        };
        let mut out = Vec::with_capacity(4 + keys.keys().map(|k| 20 + k.len()).sum::<usize>());
        out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
        for (key, entry) in keys.iter() {
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&entry.value.to_le_bytes());
            if with_updates {
                out.extend_from_slice(&entry.updates.to_le_bytes());
            }
        }
        Ok(out)
    }

    fn import_state(schema: u32, state: &[u8]) -> Result<Self, AppError> {
        let keys = decode(state, schema == 3)
            .ok_or_else(|| AppError(format!("counter schema {schema} state is malformed")))?;
        Ok(Counter {
            keys: Mutex::new(keys),
        })
    }
}

/// Decodes schema 2 (`with_updates` false: updates start at the value) or schema 3.
fn decode(mut state: &[u8], with_updates: bool) -> Option<BTreeMap<String, Entry>> {
    fn take<'a>(state: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (state.get(..n)?, state.get(n..)?);
        *state = rest;
        Some(head)
    }
    fn u64_at(state: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(state, 8)?.try_into().ok()?))
    }
    let count = u32::from_le_bytes(take(&mut state, 4)?.try_into().ok()?);
    let mut keys = BTreeMap::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(take(&mut state, 4)?.try_into().ok()?) as usize;
        let key = std::str::from_utf8(take(&mut state, len)?).ok()?.to_owned();
        let value = u64_at(&mut state)?;
        let updates = if with_updates { u64_at(&mut state)? } else { value };
        keys.insert(key, Entry { value, updates });
    }
    state.is_empty().then_some(keys)
}

molt_abi::export_app!(Counter);

#[cfg(test)]
mod tests {
    use super::*;
    use molt_abi::testing::{call, round_trip};

    #[test]
    fn increments_by_n_and_counts_updates() {
        let app = Counter::create().unwrap();
        assert_eq!(call(&app, "POST", "/incr/a", b"").text(), "1");
        assert_eq!(call(&app, "POST", "/incr/a/10", b"").text(), "11");
        assert_eq!(call(&app, "GET", "/updates/a", b"").text(), "2");
        assert_eq!(call(&app, "POST", "/incr/a/x", b"").status, 400);
        assert_eq!(call(&app, "POST", "/incr", b"").text(), "1");
        assert_eq!(call(&app, "GET", "/count", b"").text(), "12");
        let restored = round_trip(&app).unwrap();
        assert_eq!(
            restored.get("a"),
            Entry {
                value: 11,
                updates: 2
            }
        );
    }

    #[test]
    fn imports_schema_2_and_exports_it_back() {
        // v2's encoding of {a: 5}.
        let mut v2 = 1u32.to_le_bytes().to_vec();
        v2.extend_from_slice(&1u32.to_le_bytes());
        v2.extend_from_slice(b"a");
        v2.extend_from_slice(&5u64.to_le_bytes());
        let app = Counter::import_state(2, &v2).unwrap();
        assert_eq!(app.get("a"), Entry { value: 5, updates: 5 });
        assert_eq!(call(&app, "POST", "/incr/a/3", b"").text(), "8");
        let mut back = 1u32.to_le_bytes().to_vec();
        back.extend_from_slice(&1u32.to_le_bytes());
        back.extend_from_slice(b"a");
        back.extend_from_slice(&8u64.to_le_bytes());
        assert_eq!(app.export_state(2).unwrap(), back);
        assert!(
            Counter::import_state(3, &v2).is_err(),
            "schema 2 bytes are not schema 3"
        );
        assert!(Counter::export_state(&app, 1).is_err());
    }
}
