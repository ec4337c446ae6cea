//! An in-process table store for unit tests of apps that keep state in tables: the same
//! [`HostApi`] a supervisor hands an instance, served from a plain locked map. It is not the
//! supervisor's store (no shards, no lazy conversion): records are converted eagerly by
//! [`TestTables::migrate`], through the same hooks and the same choice of hook a swap makes.
//!
//! ```ignore
//! use molt_abi::testing::{call, TestTables};
//! let tables = TestTables::new();
//! let v3: kv_v3::Kv = tables.create().unwrap();
//! call(&v3, "PUT", "/kv/a", b"1");
//! tables.migrate::<kv_v3::Kv, kv_v4::Kv>().unwrap();      // every record through upgrade_record
//! let v4: kv_v4::Kv = tables.create().unwrap();
//! assert_eq!(call(&v4, "GET", "/kv/a/writes", b"").text(), "1");
//! ```

use crate::app::{App, AppError};
use crate::ffi::Bytes;
use crate::host::*;
use crate::tables::Tables;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Mutex;

/// One record: the table schema it is in, and its value.
type Records = BTreeMap<Vec<u8>, (u32, Vec<u8>)>;

/// Tables for tests. Made by [`TestTables::new`], which leaks it: the handles apps keep point
/// into it, so it lives as long as the test process.
#[derive(Debug, Default)]
pub struct TestTables {
    /// Each table's name and records; a handle is the index plus one.
    tables: Mutex<Vec<(String, Records)>>,
}

impl TestTables {
    /// A new, empty store that lives until the process ends.
    pub fn new() -> &'static TestTables {
        Box::leak(Box::default())
    }

    /// The handle an instance of table schema `schema` gets: it writes records in `schema`
    /// and fails to read one in another (run [`TestTables::migrate`] first, as a swap would).
    pub fn handle(&'static self, schema: u32) -> Tables {
        let ctx: &'static Handle = Box::leak(Box::new(Handle { store: self, schema }));
        let api = HostApi {
            size: std::mem::size_of::<HostApi>() as u32,
            schema,
            ctx: (ctx as *const Handle).cast(),
            open,
            get,
            put,
            delete,
            update,
            scan,
            count,
        };
        // SAFETY: `self` is `'static` (leaked by `new`) and every function below honours the
        // `HostApi` contract.
        unsafe { Tables::from_host(&api) }
    }

    /// A fresh `A` on these tables ([`App::create_in`]).
    pub fn create<A: App>(&'static self) -> Result<A, AppError> {
        A::create_in(self.handle(A::TABLE_SCHEMA))
    }

    /// Moves the bytes state of `from` into a new `To` on these tables, as a swap does (the
    /// schema chosen by [`crate::choose_schema`]; the records are not converted: see
    /// [`TestTables::migrate`]).
    pub fn import<From: App, To: App>(&'static self, from: &From) -> Result<To, AppError> {
        let schema = crate::choose_schema(From::SCHEMA, From::EXPORTS, To::SCHEMA, To::IMPORTS)
            .ok_or_else(|| AppError::new("no shared state schema"))?;
        To::import_in(self.handle(To::TABLE_SCHEMA), schema, &from.export_state(schema)?)
    }

    /// Converts every record in `From`'s table schema to `To`'s, with the hook a swap would
    /// use: `To::upgrade_record` when `To` upgrades from it, else `From::downgrade_record`.
    /// On the first failure nothing has changed, and the error names the table and key.
    pub fn migrate<From: App, To: App>(&self) -> Result<(), AppError> {
        let (from, to) = (From::TABLE_SCHEMA, To::TABLE_SCHEMA);
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let mut converted = Vec::new();
        for (name, records) in tables.iter() {
            for (key, (schema, value)) in records {
                if *schema != from || from == to {
                    continue;
                }
                let new = if To::TABLE_UPGRADES.contains(&from) {
                    To::upgrade_record(name, from, key, value)
                } else if From::TABLE_DOWNGRADES.contains(&to) {
                    From::downgrade_record(name, to, key, value)
                } else {
                    Err(AppError(format!("no hook converts table schema {from} to {to}")))
                };
                let new = new.map_err(|e| {
                    AppError(format!(
                        "record {:?} of table {name}: {e}",
                        String::from_utf8_lossy(key)
                    ))
                })?;
                converted.push((name.clone(), key.clone(), new));
            }
        }
        for (name, key, value) in converted {
            if let Some((_, records)) = tables.iter_mut().find(|(n, _)| *n == name) {
                records.insert(key, (to, value));
            }
        }
        Ok(())
    }

    /// The records of table `name`: key, schema, value.
    pub fn records(&self, name: &str) -> Vec<(Vec<u8>, u32, Vec<u8>)> {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, records)| {
                records
                    .iter()
                    .map(|(k, (s, v))| (k.clone(), *s, v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What one instance's table functions work on (leaked with the handle).
struct Handle {
    store: &'static TestTables,
    schema: u32,
}

/// # Safety
/// `ctx` is the `Handle` made by `TestTables::handle` (leaked, so alive).
unsafe fn with<R>(ctx: *const c_void, f: impl FnOnce(&mut Vec<(String, Records)>, u32) -> R) -> R {
    // SAFETY: the caller's promise.
    let handle = unsafe { &*ctx.cast::<Handle>() };
    f(
        &mut handle.store.tables.lock().unwrap_or_else(|e| e.into_inner()),
        handle.schema,
    )
}

/// The index of a table handle `open` gave out.
fn index(table: *const c_void) -> usize {
    (table as usize).wrapping_sub(1)
}

fn found(yes: bool) -> u32 {
    if yes {
        TABLE_FOUND
    } else {
        TABLE_ABSENT
    }
}

unsafe extern "C" fn open(ctx: *const c_void, name: Bytes<'_>, out: *mut *const c_void) -> u32 {
    let name = name.as_str().to_owned();
    // SAFETY: the plugin passes back our context.
    let i = unsafe {
        with(ctx, |tables, _| {
            match tables.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    tables.push((name, Records::new()));
                    tables.len() - 1
                }
            }
        })
    };
    // SAFETY: `out` is the caller's local.
    unsafe { out.write((i + 1) as *const c_void) };
    TABLE_FOUND
}

unsafe extern "C" fn get(
    ctx: *const c_void,
    table: *const c_void,
    key: Bytes<'_>,
    visit: *mut Visitor,
) -> u32 {
    // SAFETY: our context; `visit` is the plugin's, valid for the call.
    unsafe {
        with(ctx, |tables, want| match tables.get(index(table)) {
            Some((_, records)) => match records.get(key.as_slice()) {
                Some((schema, _)) if *schema != want => TABLE_FAILED,
                Some((_, value)) => {
                    ((*visit).visit)((*visit).ctx, key, Bytes::new(value));
                    TABLE_FOUND
                }
                None => TABLE_ABSENT,
            },
            None => TABLE_FAILED,
        })
    }
}

unsafe extern "C" fn put(ctx: *const c_void, table: *const c_void, key: Bytes<'_>, value: Bytes<'_>) -> u32 {
    // SAFETY: our context.
    unsafe {
        with(ctx, |tables, schema| match tables.get_mut(index(table)) {
            Some((_, records)) => found(
                records
                    .insert(key.as_slice().to_vec(), (schema, value.as_slice().to_vec()))
                    .is_some(),
            ),
            None => TABLE_FAILED,
        })
    }
}

unsafe extern "C" fn delete(ctx: *const c_void, table: *const c_void, key: Bytes<'_>) -> u32 {
    // SAFETY: our context.
    unsafe {
        with(ctx, |tables, _| match tables.get_mut(index(table)) {
            Some((_, records)) => found(records.remove(key.as_slice()).is_some()),
            None => TABLE_FAILED,
        })
    }
}

unsafe extern "C" fn sink_put(ctx: *mut c_void, value: Bytes<'_>) {
    // SAFETY: `ctx` is the `Option<Vec<u8>>` local of `update`, alive for the call.
    unsafe { *ctx.cast::<Option<Vec<u8>>>() = Some(value.as_slice().to_vec()) };
}

unsafe extern "C" fn update(
    ctx: *const c_void,
    table: *const c_void,
    key: Bytes<'_>,
    f: *mut Updater,
) -> u32 {
    // SAFETY: our context; `f` is the plugin's updater, valid for the call.
    unsafe {
        with(ctx, |tables, schema| {
            let Some((_, records)) = tables.get_mut(index(table)) else {
                return TABLE_FAILED;
            };
            let old = records.get(key.as_slice()).cloned();
            if old.as_ref().is_some_and(|(s, _)| *s != schema) {
                return TABLE_FAILED;
            }
            let old_bytes = old.as_ref().map(|(_, v)| Bytes::new(v));
            let old_ptr = old_bytes
                .as_ref()
                .map_or(std::ptr::null(), |b| b as *const Bytes<'_>);
            let mut slot: Option<Vec<u8>> = None;
            let mut sink = Sink {
                ctx: (&mut slot as *mut Option<Vec<u8>>).cast(),
                put: sink_put,
            };
            match (((*f).update)((*f).ctx, old_ptr, &mut sink), slot) {
                (UPDATE_SET, Some(value)) => {
                    records.insert(key.as_slice().to_vec(), (schema, value));
                }
                (UPDATE_DELETE, _) => {
                    records.remove(key.as_slice());
                }
                _ => {}
            }
            found(old.is_some())
        })
    }
}

unsafe extern "C" fn scan(ctx: *const c_void, table: *const c_void, _order: u32, visit: *mut Visitor) -> u32 {
    // A copy, visited with no lock held (the visitor may call the table). BTreeMap order is
    // key order, so both orders are served by it.
    // SAFETY: our context.
    let Some((records, want)) = (unsafe {
        with(ctx, |tables, want| {
            tables.get(index(table)).map(|(_, r)| (r.clone(), want))
        })
    }) else {
        return TABLE_FAILED;
    };
    if records.values().any(|(schema, _)| *schema != want) {
        return TABLE_FAILED;
    }
    for (key, (_, value)) in &records {
        // SAFETY: the plugin's visitor, valid for the call.
        if unsafe { ((*visit).visit)((*visit).ctx, Bytes::new(key), Bytes::new(value)) } != 0 {
            break;
        }
    }
    TABLE_FOUND
}

unsafe extern "C" fn count(ctx: *const c_void, table: *const c_void, out: *mut u64) -> u32 {
    // SAFETY: our context; `out` is the caller's local.
    unsafe {
        with(ctx, |tables, _| match tables.get(index(table)) {
            Some((_, records)) => {
                out.write(records.len() as u64);
                TABLE_FOUND
            }
            None => TABLE_FAILED,
        })
    }
}
