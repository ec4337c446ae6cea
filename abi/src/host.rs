//! ABI version 2: the `#[repr(C)]` table of host functions a plugin calls to keep its state in
//! tables the supervisor owns, and the callbacks those functions call back.
//!
//! The host hands an app instance a [`HostApi`] when it builds it (the descriptor's
//! `create_in` and `import_in` hooks). The pointer in [`HostApi::ctx`] and every table handle
//! [`HostApi::open`] returns stay valid until that instance is destroyed; the struct itself is
//! copied by the plugin (it is plain data). Plugins never call these functions directly: the
//! safe [`crate::Tables`] and [`crate::Table`] handles do.
//!
//! Memory never changes hands. Keys and values go to the host as borrowed [`Bytes`] and the
//! host copies them; values come back to the plugin borrowed, through a [`Visitor`] the host
//! calls while it holds the record, and new values go to the host through a [`Sink`] the
//! plugin calls while the host waits. No allocation made on one side is freed on the other.
//!
//! Callbacks ([`Visitor`], [`Updater`], the record hooks) run with a table shard locked: they
//! must not call the table functions themselves, and must not unwind (the safe handles catch
//! a panic on the plugin's side and resume it once the host call has returned).

use crate::ffi::{Bytes, OwnedBuf};
use std::ffi::c_void;

/// The record exists (get, update, delete, put of an existing key), or the call succeeded.
pub const TABLE_FOUND: u32 = 0;
/// The call failed: the record could not be converted to the caller's schema, or the table
/// handle is unknown. Nothing changed.
pub const TABLE_FAILED: u32 = 1;
/// The record does not exist (get, delete), or did not before the call (put, update).
pub const TABLE_ABSENT: u32 = 3;

/// What an [`Updater`] asks for: leave the record as it was.
pub const UPDATE_KEEP: u32 = 0;
/// What an [`Updater`] asks for: store the value it gave the [`Sink`].
pub const UPDATE_SET: u32 = 1;
/// What an [`Updater`] asks for: delete the record.
pub const UPDATE_DELETE: u32 = 2;

/// [`HostApi::scan`] in no particular order, shard by shard (the cheapest).
pub const SCAN_UNORDERED: u32 = 0;
/// [`HostApi::scan`] in ascending byte order of the keys.
pub const SCAN_ORDERED: u32 = 1;

/// Where the plugin writes one value for the host, which copies it before `put` returns.
#[repr(C)]
pub struct Sink {
    /// The host's context.
    pub ctx: *mut c_void,
    /// Copies `value` into the host's memory. Called at most once per sink.
    pub put: unsafe extern "C" fn(ctx: *mut c_void, value: Bytes<'_>),
}

/// A plugin callback that reads one record in place. Returns 0 to go on (a scan), anything
/// else to stop.
#[repr(C)]
pub struct Visitor {
    /// The plugin's context.
    pub ctx: *mut c_void,
    /// Called with the key and the value, both borrowed for the call.
    pub visit: unsafe extern "C" fn(ctx: *mut c_void, key: Bytes<'_>, value: Bytes<'_>) -> u32,
}

/// A plugin callback that decides the new value of one record, run under the lock of the
/// record's shard (an atomic read-modify-write). `old` is null when the record is absent.
/// Returns [`UPDATE_KEEP`], [`UPDATE_SET`] (after calling `sink.put` once) or
/// [`UPDATE_DELETE`].
#[repr(C)]
pub struct Updater {
    /// The plugin's context.
    pub ctx: *mut c_void,
    /// The decision.
    pub update: unsafe extern "C" fn(ctx: *mut c_void, old: *const Bytes<'_>, sink: *mut Sink) -> u32,
}

/// Opens (creating it when new) the table `name`; writes its handle into `out`.
pub type OpenFn = unsafe extern "C" fn(ctx: *const c_void, name: Bytes<'_>, out: *mut *const c_void) -> u32;
/// Calls `visit` once with the record of `key`, borrowed, when there is one.
pub type GetFn = unsafe extern "C" fn(
    ctx: *const c_void,
    table: *const c_void,
    key: Bytes<'_>,
    visit: *mut Visitor,
) -> u32;
/// Stores `value` under `key`.
pub type PutFn =
    unsafe extern "C" fn(ctx: *const c_void, table: *const c_void, key: Bytes<'_>, value: Bytes<'_>) -> u32;
/// Removes `key`.
pub type DeleteFn = unsafe extern "C" fn(ctx: *const c_void, table: *const c_void, key: Bytes<'_>) -> u32;
/// Runs `update` on `key` under its shard's lock.
pub type UpdateFn = unsafe extern "C" fn(
    ctx: *const c_void,
    table: *const c_void,
    key: Bytes<'_>,
    update: *mut Updater,
) -> u32;
/// Calls `visit` on every record (see [`SCAN_ORDERED`]) until it returns non-zero.
pub type ScanFn =
    unsafe extern "C" fn(ctx: *const c_void, table: *const c_void, order: u32, visit: *mut Visitor) -> u32;
/// Writes the number of records into `out`.
pub type CountFn = unsafe extern "C" fn(ctx: *const c_void, table: *const c_void, out: *mut u64) -> u32;

/// The host's table functions, handed to an instance as it is built.
///
/// Like the [`crate::Descriptor`], fields are only ever appended and `size` says how much of
/// the struct the host built.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostApi {
    /// `size_of::<HostApi>()` in the host's build.
    pub size: u32,
    /// The table schema the instance's records are read and written in (its
    /// `App::TABLE_SCHEMA`): the host converts records of another schema before a visitor sees
    /// them.
    pub schema: u32,
    /// The host's context, passed back to every function.
    pub ctx: *const c_void,
    /// See [`OpenFn`].
    pub open: OpenFn,
    /// See [`GetFn`].
    pub get: GetFn,
    /// See [`PutFn`].
    pub put: PutFn,
    /// See [`DeleteFn`].
    pub delete: DeleteFn,
    /// See [`UpdateFn`].
    pub update: UpdateFn,
    /// See [`ScanFn`].
    pub scan: ScanFn,
    /// See [`CountFn`].
    pub count: CountFn,
}

/// Builds a fresh instance that keeps its state in the host's tables; on error `err`
/// receives a message. `host` is valid for the call; what it points to, for the instance's life.
pub type CreateInFn =
    unsafe extern "C" fn(host: *const HostApi, out: *mut *mut c_void, err: *mut OwnedBuf) -> u32;
/// Builds an instance from state serialised in `schema`, with the host's tables.
pub type ImportInFn = unsafe extern "C" fn(
    host: *const HostApi,
    schema: u32,
    state: Bytes<'_>,
    out: *mut *mut c_void,
    err: *mut OwnedBuf,
) -> u32;
/// Converts one record of table `table` between table schemas, writing the result to `sink`
/// (or an error message to `err`). For the upgrade hook `schema` is the older schema the value
/// is in, and the result is in the plugin's own; for the downgrade hook the value is in the
/// plugin's own schema and `schema` is the older one to write.
pub type RecordFn = unsafe extern "C" fn(
    table: Bytes<'_>,
    schema: u32,
    key: Bytes<'_>,
    value: Bytes<'_>,
    sink: *mut Sink,
    err: *mut OwnedBuf,
) -> u32;
