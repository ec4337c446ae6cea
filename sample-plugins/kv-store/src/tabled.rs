//! The kv app on host-owned tables (kv v3 and v4, molt ABI version 2): the same routes as
//! v1/v2, served from the table `kv` the supervisor keeps, so a swap moves no state.
//!
//! A version says how it encodes one record ([`Records`]); everything else is shared: the
//! `/kv/{key}` routes, `/stats` (a scan: it costs a pass over the table), `/preload`, and
//! taking over the bytes state of kv v1 or v2 (schemas 1 and 2) into the table.

use crate::preload::preload_value;
use crate::reader::Reader;
use crate::{json, Stats};
use molt_abi::{AppError, Order, Request, Response, Table, TableError, Tables, Update};
use std::borrow::Cow;
use std::marker::PhantomData;
use std::ops::ControlFlow;

/// The table the kv app keeps its records in.
pub const TABLE: &str = "kv";

/// How a version encodes one record of the table.
pub trait Records: Send + Sync + 'static {
    /// The value part of an encoded record.
    fn value(record: &[u8]) -> &[u8];
    /// The record a `PUT` of `value` stores, given the record it replaces (`None`: a new key,
    /// or [`Records::READS_OLD`] is false and the old record is not read). Borrowed when the
    /// record is the value as is: the host copies it into the table, once.
    fn write<'v>(old: Option<&[u8]>, value: &'v [u8]) -> Cow<'v, [u8]>;
    /// Whether [`Records::write`] needs the old record (then a `PUT` is an atomic update).
    const READS_OLD: bool;
    /// The record kv v1/v2's bytes state becomes: the value, and v2's write counter (v1: 1).
    fn imported(value: &[u8], writes: u64) -> Vec<u8>;
}

/// The kv store on a table, for the records encoding `R`.
pub struct TableKv<R> {
    table: Table,
    _records: PhantomData<R>,
}

fn failed(e: TableError) -> Response {
    Response::new(500, format!("{e}\n"))
}

impl<R: Records> TableKv<R> {
    /// Opens the table [`TABLE`] of `tables`.
    pub fn open(tables: &Tables) -> Result<Self, AppError> {
        Ok(TableKv {
            table: tables.open(TABLE)?,
            _records: PhantomData,
        })
    }

    /// The table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The value of `key`, copied.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, TableError> {
        self.table.get(key.as_bytes(), |record| R::value(record).to_vec())
    }

    /// Stores `value` under `key`; returns whether the key is new.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<bool, TableError> {
        if R::READS_OLD {
            let existed = self.table.update(key.as_bytes(), |old| {
                Update::Set(R::write(old, value).into_owned())
            })?;
            Ok(!existed)
        } else {
            self.table.put(key.as_bytes(), &R::write(None, value))
        }
    }

    /// Answers `/kv/{key}` as kv v1 does (see its docs).
    pub fn handle_key(&self, req: &Request<'_>, key: &str) -> Response {
        match req.method() {
            "GET" => match self.table.get(key.as_bytes(), |record| {
                Response::new(200, R::value(record).to_vec())
            }) {
                Ok(Some(resp)) => resp.with_header("content-type", "application/octet-stream"),
                Ok(None) => Response::not_found(),
                Err(e) => failed(e),
            },
            "PUT" => {
                if req.body().len() > u32::MAX as usize {
                    return Response::new(413, "values are at most u32::MAX bytes\n");
                }
                match self.put(key, req.body()) {
                    Ok(true) => Response::new(201, "created\n"),
                    Ok(false) => Response::ok("replaced\n"),
                    Err(e) => failed(e),
                }
            }
            "DELETE" => match self.table.delete(key.as_bytes()) {
                Ok(true) => Response::new(204, Vec::new()),
                Ok(false) => Response::not_found(),
                Err(e) => failed(e),
            },
            _ => Response::new(405, "method not allowed\n").with_header("allow", "GET, PUT, DELETE"),
        }
    }

    /// Counts of keys and bytes, by a scan of the table; `tally` sums something per record.
    pub fn stats(&self, mut tally: impl FnMut(&[u8])) -> Result<Stats, TableError> {
        let mut stats = Stats::default();
        self.table.scan(Order::Any, |key, record| {
            stats.keys += 1;
            stats.key_bytes += key.len();
            stats.value_bytes += R::value(record).len();
            tally(record);
            ControlFlow::Continue(())
        })?;
        Ok(stats)
    }

    /// Fills keys `k0..k{keys-1}` with the deterministic values of [`preload_value`], from a
    /// few scoped threads (joined before this returns).
    pub fn preload(&self, keys: u64, size: usize) -> Result<(), TableError> {
        let template = preload_value(0, size + 26);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8) as u64;
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|worker| {
                    let template = &template;
                    scope.spawn(move || -> Result<(), TableError> {
                        let mut key = String::with_capacity(24);
                        for i in (worker..keys).step_by(workers as usize) {
                            key.clear();
                            key.push('k');
                            key.push_str(&i.to_string());
                            let start = (i % 26) as usize;
                            self.put(&key, &template[start..start + size])?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or(Err(TableError { call: "preload" })))
        })
    }

    /// `POST /preload?keys=N&size=BYTES`, as kv v1 answers it; `stats` renders the answer.
    pub fn handle_preload(&self, req: &Request<'_>, stats: impl FnOnce() -> Response) -> Response {
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
        if !matches!(keys.checked_mul(size + 21), Some(t) if t <= crate::PRELOAD_LIMIT) {
            return Response::new(
                413,
                format!("preload over the limit of {} bytes\n", crate::PRELOAD_LIMIT),
            );
        }
        match self.preload(keys, size as usize) {
            Ok(()) => stats(),
            Err(e) => failed(e),
        }
    }

    /// Takes over the bytes state of kv v1 (schema 1) or v2 (schema 2) into the table; the
    /// empty state of a tables version (schema 3) adds nothing.
    pub fn import_bytes(&self, schema: u32, state: &[u8]) -> Result<(), AppError> {
        if schema == 3 {
            return if state.is_empty() {
                Ok(())
            } else {
                Err(AppError::new(
                    "kv schema 3 is empty: the records are in the tables",
                ))
            };
        }
        let mut reader = Reader::new(schema, state);
        let count = reader.u64("entry count")?;
        for index in 0..count {
            let key = reader.str(index)?;
            let value = reader.bytes(index, "value")?;
            let writes = if schema == 2 {
                reader.u64("write counter")?
            } else {
                1
            };
            self.table.put(key.as_bytes(), &R::imported(value, writes))?;
        }
        if reader.remaining() != 0 {
            return Err(reader.error(format!(
                "{} trailing bytes after {count} entries",
                reader.remaining()
            )));
        }
        Ok(())
    }
}

/// A response with the stats, or the table error.
pub fn stats_response(stats: Result<Stats, TableError>, extra: &str) -> Response {
    match stats {
        Ok(stats) => json(200, stats.json_with(extra)),
        Err(e) => failed(e),
    }
}
