//! The `extern "C"` shims of ABI version 2 behind [`crate::export_app!`]: building an
//! instance with the host's tables, and converting one record between table schemas. Like
//! the version 1 shims, each catches panics and reports failures as a status and a message.

use crate::app::{App, AppError};
use crate::export::{finish_instance, guarded, imports};
use crate::ffi::{Bytes, OwnedBuf, STATUS_OK};
use crate::host::{HostApi, Sink};
use crate::tables::Tables;
use std::ffi::c_void;

pub(crate) unsafe extern "C" fn create_in<A: App>(
    host: *const HostApi,
    out: *mut *mut c_void,
    err: *mut OwnedBuf,
) -> u32 {
    // SAFETY: the host passes a valid `HostApi` whose context outlives the instance (the
    // host contract of `CreateInFn`).
    let tables = unsafe { Tables::from_host(&*host) };
    let result = guarded(|| A::create_in(tables));
    // SAFETY: the host passes pointers to its own locals, valid for writes.
    unsafe { finish_instance(result, out, err) }
}

pub(crate) unsafe extern "C" fn import_in<A: App>(
    host: *const HostApi,
    schema: u32,
    state: Bytes<'_>,
    out: *mut *mut c_void,
    err: *mut OwnedBuf,
) -> u32 {
    // SAFETY: as in `create_in`.
    let tables = unsafe { Tables::from_host(&*host) };
    let result = guarded(|| {
        imports::<A>(schema)?;
        A::import_in(tables, schema, state.as_slice())
    });
    // SAFETY: the host passes pointers to its own locals, valid for writes.
    unsafe { finish_instance(result, out, err) }
}

/// Writes a record hook's outcome: the value into `sink`, or the message into `err`.
///
/// # Safety
/// `sink` and `err` must be valid (the host's, for the call).
unsafe fn finish_record(result: Result<Vec<u8>, (u32, String)>, sink: *mut Sink, err: *mut OwnedBuf) -> u32 {
    match result {
        Ok(value) => {
            // SAFETY: the caller promises `sink` is the host's live sink; `value` is borrowed
            // for the call and copied by the host.
            unsafe { ((*sink).put)((*sink).ctx, Bytes::new(&value)) };
            STATUS_OK
        }
        Err((status, message)) => {
            // SAFETY: the caller promises `err` is valid for writes.
            unsafe { err.write(OwnedBuf::from_vec(message.into_bytes())) };
            status
        }
    }
}

pub(crate) unsafe extern "C" fn upgrade_record<A: App>(
    table: Bytes<'_>,
    from: u32,
    key: Bytes<'_>,
    value: Bytes<'_>,
    sink: *mut Sink,
    err: *mut OwnedBuf,
) -> u32 {
    let result = guarded(|| {
        if !A::TABLE_UPGRADES.contains(&from) {
            return Err(AppError(format!(
                "{} cannot upgrade records from table schema {from} (upgrades {:?})",
                A::NAME,
                A::TABLE_UPGRADES
            )));
        }
        A::upgrade_record(table.as_str(), from, key.as_slice(), value.as_slice())
    });
    // SAFETY: the host passes its own sink and error slot, valid for the call.
    unsafe { finish_record(result, sink, err) }
}

pub(crate) unsafe extern "C" fn downgrade_record<A: App>(
    table: Bytes<'_>,
    to: u32,
    key: Bytes<'_>,
    value: Bytes<'_>,
    sink: *mut Sink,
    err: *mut OwnedBuf,
) -> u32 {
    let result = guarded(|| {
        if !A::TABLE_DOWNGRADES.contains(&to) {
            return Err(AppError(format!(
                "{} cannot downgrade records to table schema {to} (downgrades {:?})",
                A::NAME,
                A::TABLE_DOWNGRADES
            )));
        }
        A::downgrade_record(table.as_str(), to, key.as_slice(), value.as_slice())
    });
    // SAFETY: the host passes its own sink and error slot, valid for the call.
    unsafe { finish_record(result, sink, err) }
}
