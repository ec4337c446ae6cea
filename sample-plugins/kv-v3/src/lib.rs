//! kv v3: kv v1's store kept in a table the supervisor owns (molt ABI version 2), so a swap
//! to another build with the same record schema moves nothing, whatever the size.
//!
//! ## Routes
//! kv v1's, answered alike: `PUT`, `GET`, `DELETE /kv/{key}`; `GET /stats` (a scan of the
//! table: it costs a pass over every record); `POST /preload?keys=N&size=BYTES`.
//!
//! ## State
//! - **Table `kv`, record schema 1**: the record of a key is its value, as is.
//! - **Bytes, state schema 3**: empty (everything is in the table). v3 also **imports** kv
//!   v1's schema 1 and v2's schema 2: an upgrade from those moves every entry into the table
//!   (v2's write counters are dropped: record schema 1 has none). It exports only schema 3:
//!   the records stay in the supervisor's tables, which kv v1 and v2 cannot read, so a swap
//!   back to them is refused rather than drop them.

use kv_store::tabled::{stats_response, Records, TableKv};
use molt_abi::{App, AppError, Request, Response, Tables};
use std::borrow::Cow;

/// Record schema 1: the value.
pub struct Plain;

impl Records for Plain {
    const READS_OLD: bool = false;

    fn value(record: &[u8]) -> &[u8] {
        record
    }

    fn write<'v>(_old: Option<&[u8]>, value: &'v [u8]) -> Cow<'v, [u8]> {
        Cow::Borrowed(value)
    }

    fn imported(value: &[u8], _writes: u64) -> Vec<u8> {
        value.to_vec()
    }
}

/// The kv app on the table `kv`.
pub struct Kv {
    kv: TableKv<Plain>,
}

impl Kv {
    /// The store.
    pub fn store(&self) -> &TableKv<Plain> {
        &self.kv
    }
}

impl App for Kv {
    const NAME: &'static str = "kv";
    const SCHEMA: u32 = 3;
    const IMPORTS: &'static [u32] = &[1, 2, 3];
    const TABLE_SCHEMA: u32 = 1;

    fn create() -> Result<Self, AppError> {
        Err(AppError::new(
            "kv v3 keeps its state in tables: it needs a supervisor speaking molt ABI 2",
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
        let route = (segments.next(), segments.next(), segments.next());
        match (req.method(), route) {
            (_, (Some("kv"), Some(key), None)) => self.kv.handle_key(req, key),
            ("GET", (Some("stats"), None, None)) => stats_response(self.kv.stats(|_| {}), ""),
            ("POST", (Some("preload"), None, None)) => self
                .kv
                .handle_preload(req, || stats_response(self.kv.stats(|_| {}), "")),
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, _schema: u32) -> Result<Vec<u8>, AppError> {
        Ok(Vec::new())
    }

    fn import_state(_schema: u32, _state: &[u8]) -> Result<Self, AppError> {
        Self::create()
    }
}

molt_abi::export_app!(Kv);

#[cfg(test)]
mod tests;
