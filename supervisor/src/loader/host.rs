//! The host side of ABI version 2: the table functions a plugin calls (`extern "C"` shims over
//! [`crate::tables`]), and the record hooks the host calls in a plugin.
//!
//! Each instance built with tables gets its own [`HostContext`]: the store and the table
//! schema that instance reads and writes in. The instance owns the context (boxed, so its
//! address is stable) and drops it only after the plugin's `destroy`, so every pointer handed
//! to the plugin outlives every call that can use it. Table handles are `Arc<Table>`s the
//! store keeps for its whole life.

use crate::tables::{Change, RecordFailure, Table, TableStore};
use molt_abi::{
    Bytes, HostApi, Sink, Updater, Visitor, TABLE_ABSENT, TABLE_FAILED, TABLE_FOUND, UPDATE_DELETE,
    UPDATE_SET,
};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// What one instance's table functions work on.
pub(crate) struct HostContext {
    store: Arc<TableStore>,
    schema: u32,
}

impl HostContext {
    pub(crate) fn new(store: &Arc<TableStore>, schema: u32) -> Box<HostContext> {
        Box::new(HostContext {
            store: Arc::clone(store),
            schema,
        })
    }

    pub(crate) fn store(&self) -> &Arc<TableStore> {
        &self.store
    }

    /// The table functions, with this context. The context must outlive every call through
    /// them: the instance that gets them owns the box.
    pub(crate) fn api(&self) -> HostApi {
        HostApi {
            size: std::mem::size_of::<HostApi>() as u32,
            schema: self.schema,
            ctx: (self as *const HostContext).cast(),
            open,
            get,
            put,
            delete,
            update,
            scan,
            count,
        }
    }
}

/// Runs a table function's body: no panic unwinds into the plugin, and a failure is logged
/// (the plugin sees only [`TABLE_FAILED`]).
fn guarded(call: &str, body: impl FnOnce() -> Result<u32, RecordFailure>) -> u32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(failure)) => {
            tracing::error!(call, error = %failure, "table call failed");
            TABLE_FAILED
        }
        Err(_) => {
            tracing::error!(call, "table call panicked in the host");
            TABLE_FAILED
        }
    }
}

fn found(yes: bool) -> u32 {
    if yes {
        TABLE_FOUND
    } else {
        TABLE_ABSENT
    }
}

/// # Safety
/// `ctx` is a live [`HostContext`] (the `HostApi` contract).
unsafe fn context<'a>(ctx: *const c_void) -> &'a HostContext {
    // SAFETY: the caller's promise; the instance owning the context outlives the call.
    unsafe { &*ctx.cast::<HostContext>() }
}

/// # Safety
/// `table` is a handle `open` returned for this store.
unsafe fn table<'a>(table: *const c_void) -> &'a Table {
    // SAFETY: handles are `Arc::as_ptr` of tables the store keeps for its whole life, and the
    // store outlives the instance calling.
    unsafe { &*table.cast::<Table>() }
}

unsafe extern "C" fn open(ctx: *const c_void, name: Bytes<'_>, out: *mut *const c_void) -> u32 {
    // SAFETY: the plugin passes back the context we gave it.
    let host = unsafe { context(ctx) };
    let Ok(name) = std::str::from_utf8(name.as_slice()) else {
        return TABLE_FAILED;
    };
    guarded("open", || {
        let table = host.store.open(name);
        // SAFETY: `out` is the plugin's local, valid for writes (the `OpenFn` contract).
        unsafe { out.write(Arc::as_ptr(&table).cast()) };
        Ok(TABLE_FOUND)
    })
}

unsafe extern "C" fn get(ctx: *const c_void, t: *const c_void, key: Bytes<'_>, visit: *mut Visitor) -> u32 {
    // SAFETY: context and handle are what we gave this instance.
    let (host, t) = unsafe { (context(ctx), table(t)) };
    guarded("get", || {
        let seen = t.get(key.as_slice(), host.schema, |value| {
            // SAFETY: the plugin's visitor is valid for the call; key and value are borrowed
            // for it.
            unsafe { ((*visit).visit)((*visit).ctx, key, Bytes::new(value)) };
        })?;
        Ok(found(seen.is_some()))
    })
}

unsafe extern "C" fn put(ctx: *const c_void, t: *const c_void, key: Bytes<'_>, value: Bytes<'_>) -> u32 {
    // SAFETY: as in `get`.
    let (host, t) = unsafe { (context(ctx), table(t)) };
    guarded("put", || {
        Ok(found(!t.put(key.as_slice(), host.schema, value.as_slice())))
    })
}

unsafe extern "C" fn delete(_ctx: *const c_void, t: *const c_void, key: Bytes<'_>) -> u32 {
    // SAFETY: as in `get`.
    let t = unsafe { table(t) };
    guarded("delete", || Ok(found(t.delete(key.as_slice()))))
}

/// The sink the host hands a plugin: `ctx` is an `Option<Vec<u8>>` of the caller's.
unsafe extern "C" fn sink_put(ctx: *mut c_void, value: Bytes<'_>) {
    // SAFETY: `ctx` is the `Option<Vec<u8>>` local the sink was built on, alive for the call.
    let slot = unsafe { &mut *ctx.cast::<Option<Vec<u8>>>() };
    *slot = Some(value.as_slice().to_vec());
}

/// A sink writing into `slot`.
pub(crate) fn sink(slot: &mut Option<Vec<u8>>) -> Sink {
    Sink {
        ctx: (slot as *mut Option<Vec<u8>>).cast(),
        put: sink_put,
    }
}

unsafe extern "C" fn update(
    ctx: *const c_void,
    t: *const c_void,
    key: Bytes<'_>,
    updater: *mut Updater,
) -> u32 {
    // SAFETY: as in `get`.
    let (host, t) = unsafe { (context(ctx), table(t)) };
    guarded("update", || {
        let existed = t.update(key.as_slice(), host.schema, |old| {
            let old = old.map(Bytes::new);
            let old_ptr = old.as_ref().map_or(std::ptr::null(), |b| b as *const Bytes<'_>);
            let mut slot = None;
            let mut out = sink(&mut slot);
            // SAFETY: the plugin's updater is valid for the call; `old` and `out` are our
            // locals, borrowed for it.
            let decision = unsafe { ((*updater).update)((*updater).ctx, old_ptr, &mut out) };
            match (decision, slot) {
                (UPDATE_SET, Some(value)) => Change::Set(value),
                (UPDATE_DELETE, _) => Change::Delete,
                _ => Change::Keep,
            }
        })?;
        Ok(found(existed))
    })
}

unsafe extern "C" fn scan(ctx: *const c_void, t: *const c_void, order: u32, visit: *mut Visitor) -> u32 {
    // SAFETY: as in `get`.
    let (host, t) = unsafe { (context(ctx), table(t)) };
    guarded("scan", || {
        t.scan(host.schema, order == molt_abi::SCAN_ORDERED, |key, value| {
            // SAFETY: the plugin's visitor is valid for the call; key and value are borrowed
            // for it.
            unsafe { ((*visit).visit)((*visit).ctx, Bytes::new(key), Bytes::new(value)) != 0 }
        })?;
        Ok(TABLE_FOUND)
    })
}

unsafe extern "C" fn count(_ctx: *const c_void, t: *const c_void, out: *mut u64) -> u32 {
    // SAFETY: as in `get`; `out` is the plugin's local, valid for writes.
    let t = unsafe { table(t) };
    guarded("count", || {
        // SAFETY: see above.
        unsafe { out.write(t.count()) };
        Ok(TABLE_FOUND)
    })
}
