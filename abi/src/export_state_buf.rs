//! The `extern "C"` shims of the bytes path at memory speed behind [`crate::export_app!`]:
//! exporting into the host's buffer, and importing from bytes the instance may keep. Like the
//! other shims, each catches panics and reports failures as a status and a message.

use crate::app::App;
use crate::export::{exports, finish_instance, guarded, imports};
use crate::ffi::{OwnedBuf, STATUS_OK};
use crate::host::HostApi;
use crate::state::{HostBuf, SharedBytes, StateBuf, StateWriter};
use crate::tables::Tables;
use std::ffi::c_void;

pub(crate) unsafe extern "C" fn export_into<A: App>(
    app: *const c_void,
    schema: u32,
    out: *mut HostBuf,
    err: *mut OwnedBuf,
) -> u32 {
    let result = guarded(|| {
        exports::<A>(schema)?;
        // SAFETY: `app` is a live instance of `A` built by this plugin, and `out` the host's
        // live buffer lent for this call (the host contract of `ExportIntoFn`).
        let (app, out) = unsafe { (&*app.cast::<A>(), &mut *out) };
        // SAFETY: as just above: `out` is a live host buffer, lent for the call.
        let mut writer = unsafe { StateWriter::host(out) };
        app.export_into(schema, &mut writer)
    });
    match result {
        Ok(()) => STATUS_OK,
        Err((status, message)) => {
            // SAFETY: the host passes a pointer to its own `OwnedBuf` local, valid for writes.
            unsafe { err.write(OwnedBuf::from_vec(message.into_bytes())) };
            status
        }
    }
}

pub(crate) unsafe extern "C" fn import_shared<A: App>(
    host: *const HostApi,
    schema: u32,
    state: SharedBytes,
    out: *mut *mut c_void,
    err: *mut OwnedBuf,
) -> u32 {
    // Taken first, so the bytes are released on every path, a refusal or a panic included.
    // SAFETY: the host gives the bytes once, keeping `SharedBytes`' promise.
    let state = unsafe { StateBuf::from_host(state) };
    // SAFETY: the host passes a valid `HostApi` whose context outlives the instance (as for
    // `import_in`).
    let tables = unsafe { Tables::from_host(&*host) };
    let result = guarded(move || {
        imports::<A>(schema)?;
        A::import_shared(tables, schema, state)
    });
    // SAFETY: the host passes pointers to its own locals, valid for writes.
    unsafe { finish_instance(result, out, err) }
}
