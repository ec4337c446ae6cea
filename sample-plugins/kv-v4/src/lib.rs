//! kv v4: kv v3 with a per-key write counter in every record: a change of the record schema
//! of the table, migrated record by record while traffic flows (molt ABI version 2).
//!
//! ## Routes
//! kv v3's, plus what kv v2 had:
//! - `PUT /kv/{key}` → `201` for a new key, `200` when it replaced a value; either way the
//!   key's write counter goes up by one (an atomic update of the record)
//! - `GET /kv/{key}/writes` → how many times the key was written (decimal), `404` when absent
//! - `GET /stats` → kv v1's fields plus `"writes"`, the sum of the counters
//!
//! ## State
//! - **Table `kv`, record schema 2**: `u64` little-endian write counter, then the value.
//! - Record schema 1 (kv v3's): the value. [`App::upgrade_record`] turns one into a record
//!   whose counter is 1 (it was written at least once; v3 kept no history);
//!   [`App::downgrade_record`] drops the counter, for a rollback to v3. A record of schema 2
//!   shorter than its counter is refused by the downgrade hook, naming the key.
//! - **Bytes, state schema 3**: empty, as in v3 (imports kv v1's and v2's bytes like v3, and
//!   keeps v2's counters).

use kv_store::tabled::{stats_response, Records, TableKv};
use molt_abi::{App, AppError, Request, Response, Tables};
use std::borrow::Cow;

/// Record schema 2: the write counter, then the value.
pub struct Counted;

/// The counter of a schema 2 record (0 for a malformed one).
pub fn writes(record: &[u8]) -> u64 {
    record
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// A schema 2 record.
pub fn record(writes: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&writes.to_le_bytes());
    out.extend_from_slice(value);
    out
}

impl Records for Counted {
    const READS_OLD: bool = true;

    fn value(record: &[u8]) -> &[u8] {
        record.get(8..).unwrap_or(&[])
    }

    fn write<'v>(old: Option<&[u8]>, value: &'v [u8]) -> Cow<'v, [u8]> {
        Cow::Owned(record(old.map_or(0, writes).saturating_add(1), value))
    }

    fn imported(value: &[u8], writes: u64) -> Vec<u8> {
        record(writes, value)
    }
}

/// The kv app with write counters, on the table `kv`.
pub struct Kv {
    kv: TableKv<Counted>,
}

impl Kv {
    /// The store.
    pub fn store(&self) -> &TableKv<Counted> {
        &self.kv
    }

    fn stats(&self) -> Response {
        let mut total = 0u128;
        let stats = self.kv.stats(|record| total += u128::from(writes(record)));
        stats_response(stats, &format!(",\"writes\":{total}"))
    }
}

impl App for Kv {
    const NAME: &'static str = "kv";
    const SCHEMA: u32 = 3;
    const IMPORTS: &'static [u32] = &[1, 2, 3];
    const TABLE_SCHEMA: u32 = 2;
    const TABLE_UPGRADES: &'static [u32] = &[1];
    const TABLE_DOWNGRADES: &'static [u32] = &[1];

    fn create() -> Result<Self, AppError> {
        Err(AppError::new(
            "kv v4 keeps its state in tables: it needs a supervisor speaking molt ABI 2",
        ))
    }

    fn create_in(tables: Tables) -> Result<Self, AppError> {
        Ok(Kv {
            kv: TableKv::open(&tables)?,
        })
    }

    fn import_in(tables: Tables, schema: u32, state: &[u8]) -> Result<Self, AppError> {
        let app = Self::create_in(tables)?;
        app.kv.import_bytes(schema, state)?;
        Ok(app)
    }

    fn handle(&self, req: &Request<'_>) -> Response {
        let mut segments = req.segments();
        let route = (segments.next(), segments.next(), segments.next(), segments.next());
        match (req.method(), route) {
            (_, (Some("kv"), Some(key), None, None)) => self.kv.handle_key(req, key),
            ("GET", (Some("kv"), Some(key), Some("writes"), None)) => {
                match self.kv.table().get(key.as_bytes(), writes) {
                    Ok(Some(n)) => Response::ok(n.to_string()),
                    Ok(None) => Response::not_found(),
                    Err(e) => Response::new(500, format!("{e}\n")),
                }
            }
            ("GET", (Some("stats"), None, None, None)) => self.stats(),
            ("POST", (Some("preload"), None, None, None)) => self.kv.handle_preload(req, || self.stats()),
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, _schema: u32) -> Result<Vec<u8>, AppError> {
        Ok(Vec::new())
    }

    fn import_state(_schema: u32, _state: &[u8]) -> Result<Self, AppError> {
        Self::create()
    }

    fn upgrade_record(_table: &str, _from: u32, _key: &[u8], value: &[u8]) -> Result<Vec<u8>, AppError> {
        Ok(record(1, value))
    }

    fn downgrade_record(_table: &str, _to: u32, _key: &[u8], value: &[u8]) -> Result<Vec<u8>, AppError> {
        match value.get(8..) {
            Some(v) => Ok(v.to_vec()),
            None => Err(AppError::new(format!(
                "a schema 2 record is at least 8 bytes, this one is {}",
                value.len()
            ))),
        }
    }
}

molt_abi::export_app!(Kv);

#[cfg(test)]
mod tests;
