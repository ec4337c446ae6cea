//! The safe handles a plugin keeps its state through: [`Tables`] (given to
//! [`crate::App::create_in`] and [`crate::App::import_in`]) and the [`Table`]s it opens.
//!
//! Keys and values are bytes; encode them as you like (the contract crate has no serde on
//! purpose: pick any encoding, and bump [`crate::App::TABLE_SCHEMA`] when it changes).
//! Every call goes to the host through the [`HostApi`]; nothing is cached in the plugin.

use crate::app::AppError;
use crate::ffi::Bytes;
use crate::host::*;
use std::any::Any;
use std::ffi::c_void;
use std::fmt;
use std::ops::ControlFlow;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// The host's tables, as handed to one instance. Cheap to copy; valid for the instance's life
/// (do not keep it in a global: the next version gets its own).
#[derive(Clone, Copy)]
pub struct Tables {
    api: HostApi,
}

// SAFETY: the host contract makes every table function callable from any thread at once
// (tables are sharded and locked on the host side); `ctx` is the host's, only passed back.
unsafe impl Send for Tables {}
// SAFETY: see `Send`.
unsafe impl Sync for Tables {}

/// One named table: a map from byte keys to byte values, shared by every version of the app.
#[derive(Clone, Copy)]
pub struct Table {
    api: HostApi,
    handle: *const c_void,
}

// SAFETY: as for `Tables`; `handle` is the host's, valid for the instance's life.
unsafe impl Send for Table {}
// SAFETY: see `Send`.
unsafe impl Sync for Table {}

/// What [`Table::update`] does with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Leave it as it was (or absent).
    Keep,
    /// Store this value.
    Set(Vec<u8>),
    /// Delete the record.
    Delete,
}

/// The order of a [`Table::scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Shard by shard, in no particular order: the cheapest.
    Any,
    /// Ascending byte order of the keys.
    Keys,
}

/// A table call the host could not do (a record that failed to convert to this version's
/// schema, or a bad handle). Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// What was asked.
    pub call: &'static str,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table {} failed on the host (see the supervisor's log)",
            self.call
        )
    }
}

impl std::error::Error for TableError {}

impl From<TableError> for AppError {
    fn from(e: TableError) -> Self {
        AppError(e.to_string())
    }
}

impl Tables {
    /// The handle on the tables the host described in `api`.
    ///
    /// # Safety
    /// `api` must be a host's table functions with a context that stays valid for as long as
    /// the handle (and every [`Table`] opened through it) is used: what the host promises for
    /// the `HostApi` it passes to `create_in` and `import_in`.
    pub unsafe fn from_host(api: &HostApi) -> Tables {
        Tables { api: *api }
    }

    /// The table schema this instance's records are in ([`crate::App::TABLE_SCHEMA`]).
    pub fn schema(&self) -> u32 {
        self.api.schema
    }

    /// Opens the table `name`, creating it empty when no version opened it before.
    pub fn open(&self, name: &str) -> Result<Table, AppError> {
        let mut handle: *const c_void = std::ptr::null();
        // SAFETY: the host functions and `ctx` are valid (`from_host`'s contract); `name` is
        // borrowed for the call; `handle` is our local.
        let status = unsafe { (self.api.open)(self.api.ctx, Bytes::from_str(name), &mut handle) };
        if status != TABLE_FOUND || handle.is_null() {
            return Err(AppError(format!("the host could not open table {name}")));
        }
        Ok(Table {
            api: self.api,
            handle,
        })
    }
}

/// Runs `f`, keeping a panic to resume once the host call has returned.
fn caught<T>(panic: &mut Option<Box<dyn Any + Send>>, f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(payload) => {
            *panic = Some(payload);
            None
        }
    }
}

fn rethrow(panic: Option<Box<dyn Any + Send>>) {
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

struct VisitOnce<F, R> {
    f: Option<F>,
    out: Option<R>,
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn visit_once<F: FnOnce(&[u8]) -> R, R>(
    ctx: *mut c_void,
    _key: Bytes<'_>,
    value: Bytes<'_>,
) -> u32 {
    // SAFETY: `ctx` is the `VisitOnce` `Table::get` passed, alive for the host call.
    let state = unsafe { &mut *ctx.cast::<VisitOnce<F, R>>() };
    if let Some(f) = state.f.take() {
        let value = value.as_slice();
        state.out = caught(&mut state.panic, || f(value));
    }
    1
}

struct VisitAll<F> {
    f: F,
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn visit_all<F: FnMut(&[u8], &[u8]) -> ControlFlow<()>>(
    ctx: *mut c_void,
    key: Bytes<'_>,
    value: Bytes<'_>,
) -> u32 {
    // SAFETY: `ctx` is the `VisitAll` `Table::scan` passed, alive for the host call.
    let state = unsafe { &mut *ctx.cast::<VisitAll<F>>() };
    if state.panic.is_some() {
        return 1;
    }
    let (key, value) = (key.as_slice(), value.as_slice());
    let f = &mut state.f;
    match caught(&mut state.panic, || f(key, value)) {
        Some(ControlFlow::Continue(())) => 0,
        _ => 1,
    }
}

struct UpdateOnce<F> {
    f: Option<F>,
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn update_once<F: FnOnce(Option<&[u8]>) -> Update>(
    ctx: *mut c_void,
    old: *const Bytes<'_>,
    sink: *mut Sink,
) -> u32 {
    // SAFETY: `ctx` is the `UpdateOnce` `Table::update` passed, alive for the host call.
    let state = unsafe { &mut *ctx.cast::<UpdateOnce<F>>() };
    let Some(f) = state.f.take() else {
        return UPDATE_KEEP;
    };
    // SAFETY: the host passes null or a pointer to a live `Bytes` for the call.
    let old = unsafe { old.as_ref() }.map(|b| b.as_slice());
    match caught(&mut state.panic, || f(old)) {
        Some(Update::Set(value)) => {
            // SAFETY: the host's sink is valid for this callback; `value` is borrowed for the
            // call and copied by the host.
            unsafe { ((*sink).put)((*sink).ctx, Bytes::new(&value)) };
            UPDATE_SET
        }
        Some(Update::Delete) => UPDATE_DELETE,
        Some(Update::Keep) | None => UPDATE_KEEP,
    }
}

impl Table {
    fn failed(call: &'static str) -> TableError {
        TableError { call }
    }

    /// Runs `f` on the value of `key`, borrowed in place (no copy); `None` when absent. `f`
    /// runs with the key's shard locked for reading: it must not call this table.
    pub fn get<R, F: FnOnce(&[u8]) -> R>(&self, key: &[u8], f: F) -> Result<Option<R>, TableError> {
        let mut state = VisitOnce {
            f: Some(f),
            out: None,
            panic: None,
        };
        let mut visitor = Visitor {
            ctx: (&mut state as *mut VisitOnce<F, R>).cast(),
            visit: visit_once::<F, R>,
        };
        // SAFETY: host functions valid (`Tables::from_host`); `key` and `visitor` (and the
        // state it points to) are borrowed for the call.
        let status = unsafe { (self.api.get)(self.api.ctx, self.handle, Bytes::new(key), &mut visitor) };
        rethrow(state.panic.take());
        match status {
            TABLE_FOUND => Ok(state.out),
            TABLE_ABSENT => Ok(None),
            _ => Err(Self::failed("get")),
        }
    }

    /// A copy of the value of `key`.
    pub fn get_vec(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TableError> {
        self.get(key, <[u8]>::to_vec)
    }

    /// Stores `value` under `key`; returns whether the key is new.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<bool, TableError> {
        // SAFETY: as in `get`; `key` and `value` are borrowed for the call.
        let status = unsafe { (self.api.put)(self.api.ctx, self.handle, Bytes::new(key), Bytes::new(value)) };
        match status {
            TABLE_FOUND => Ok(false),
            TABLE_ABSENT => Ok(true),
            _ => Err(Self::failed("put")),
        }
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, key: &[u8]) -> Result<bool, TableError> {
        // SAFETY: as in `put`.
        let status = unsafe { (self.api.delete)(self.api.ctx, self.handle, Bytes::new(key)) };
        match status {
            TABLE_FOUND => Ok(true),
            TABLE_ABSENT => Ok(false),
            _ => Err(Self::failed("delete")),
        }
    }

    /// Reads and rewrites one record atomically: `f` sees the value (`None` when absent) with
    /// the key's shard locked for writing, and says what to do. Returns whether the record
    /// existed before. `f` must not call this table.
    pub fn update<F: FnOnce(Option<&[u8]>) -> Update>(&self, key: &[u8], f: F) -> Result<bool, TableError> {
        let mut state = UpdateOnce {
            f: Some(f),
            panic: None,
        };
        let mut updater = Updater {
            ctx: (&mut state as *mut UpdateOnce<F>).cast(),
            update: update_once::<F>,
        };
        // SAFETY: as in `get`; `updater` and its state are borrowed for the call.
        let status = unsafe { (self.api.update)(self.api.ctx, self.handle, Bytes::new(key), &mut updater) };
        rethrow(state.panic.take());
        match status {
            TABLE_FOUND => Ok(true),
            TABLE_ABSENT => Ok(false),
            _ => Err(Self::failed("update")),
        }
    }

    /// Calls `f` with every record until it breaks. Not a snapshot: records are read a batch
    /// at a time, each as it is when its batch is read; `f` runs with no lock held and may call
    /// the table.
    pub fn scan<F: FnMut(&[u8], &[u8]) -> ControlFlow<()>>(
        &self,
        order: Order,
        f: F,
    ) -> Result<(), TableError> {
        let mut state = VisitAll { f, panic: None };
        let mut visitor = Visitor {
            ctx: (&mut state as *mut VisitAll<F>).cast(),
            visit: visit_all::<F>,
        };
        let order = match order {
            Order::Any => SCAN_UNORDERED,
            Order::Keys => SCAN_ORDERED,
        };
        // SAFETY: as in `get`.
        let status = unsafe { (self.api.scan)(self.api.ctx, self.handle, order, &mut visitor) };
        rethrow(state.panic.take());
        match status {
            TABLE_FOUND => Ok(()),
            _ => Err(Self::failed("scan")),
        }
    }

    /// The number of records.
    pub fn count(&self) -> Result<u64, TableError> {
        let mut n = 0u64;
        // SAFETY: as in `get`; `n` is our local.
        let status = unsafe { (self.api.count)(self.api.ctx, self.handle, &mut n) };
        match status {
            TABLE_FOUND => Ok(n),
            _ => Err(Self::failed("count")),
        }
    }
}

impl fmt::Debug for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tables")
            .field("schema", &self.api.schema)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").finish_non_exhaustive()
    }
}
