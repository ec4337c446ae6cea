//! The `extern "C"` shims behind [`crate::export_app!`]: each wraps one safe [`App`] method,
//! catches any panic (nothing unwinds across the boundary) and turns every failure into a
//! status code plus a message the host reads back.

use crate::app::{App, AppError};
use crate::ffi::*;
use crate::request::{encode_headers, Request, Response};
use std::any::Any;
use std::ffi::c_void;

/// Exports an [`App`] as a molt plugin: generates the entry symbol and a static
/// [`Descriptor`] whose version is the plugin crate's Cargo version.
///
/// ```ignore
/// molt_abi::export_app!(Counter);
/// ```
///
/// What it checks at compile time: see [`crate::check_app`] (SCHEMA in IMPORTS and EXPORTS,
/// no duplicates).
///
/// The entry symbol is named for the crate, `molt_app_descriptor_<crate name>`
/// ([`crate::ENTRY_PREFIX`]), not with one fixed name: every version of an app is its own
/// crate, so the rlibs of v1, v2 and v3 can all be linked into one test binary (v3's tests
/// running `testing::migrate` from v1 through v2) without two definitions of one symbol. The
/// supervisor finds the one such symbol a library exports.
#[macro_export]
macro_rules! export_app {
    ($app:ty) => {
        const _: () = $crate::check_app::<$app>();

        /// The molt entry symbol: returns this plugin's descriptor.
        #[export_name = concat!("molt_app_descriptor_", env!("CARGO_CRATE_NAME"))]
        pub extern "C" fn molt_app_descriptor() -> *const $crate::Descriptor {
            static DESCRIPTOR: $crate::Descriptor = $crate::descriptor::<$app>(env!("CARGO_PKG_VERSION"));
            &DESCRIPTOR
        }
    };
}

/// The descriptor of app `A` at `version`. Used by [`crate::export_app!`]; exposed so that
/// tests can inspect what a plugin would publish.
pub const fn descriptor<A: App>(version: &'static str) -> Descriptor {
    Descriptor {
        magic: ABI_MAGIC,
        abi_version: ABI_VERSION,
        size: std::mem::size_of::<Descriptor>() as u32,
        name: Bytes::from_str(A::NAME),
        version: Bytes::from_str(version),
        state_schema: A::SCHEMA,
        import_schemas: Slice::new(A::IMPORTS),
        export_schemas: Slice::new(A::EXPORTS),
        create: create::<A>,
        handle: handle::<A>,
        export_state: export_state::<A>,
        import_state: import_state::<A>,
        health: health::<A>,
        destroy: destroy::<A>,
        free_buffer,
        table_schema: A::TABLE_SCHEMA,
        table_upgrades: Slice::new(A::TABLE_UPGRADES),
        table_downgrades: Slice::new(A::TABLE_DOWNGRADES),
        create_in: Some(crate::export_tables::create_in::<A>),
        import_in: Some(crate::export_tables::import_in::<A>),
        upgrade_record: Some(crate::export_tables::upgrade_record::<A>),
        downgrade_record: Some(crate::export_tables::downgrade_record::<A>),
        tick_interval_ms: A::TICK_INTERVAL_MS,
        tick: if A::TICK_INTERVAL_MS > 0 {
            Some(tick::<A>)
        } else {
            None
        },
        merge_schemas: Slice::new(A::MERGES),
        merge_state: if A::MERGES.is_empty() {
            None
        } else {
            Some(merge_state::<A>)
        },
        export_into: Some(crate::export_state_buf::export_into::<A>),
        import_shared: Some(crate::export_state_buf::import_shared::<A>),
    }
}

/// The text of a caught panic payload, as the shims report it (`panicked: …`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    format!("panicked: {}", crate::panic::payload_text(payload))
}

/// Runs a hook, catching a panic (without a backtrace: see `panic.rs`). `Err` carries the
/// status and the message.
pub(crate) fn guarded<T>(hook: impl FnOnce() -> Result<T, AppError>) -> Result<T, (u32, String)> {
    match crate::panic::catch(hook) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err((STATUS_ERROR, e.0)),
        Err(message) => Err((STATUS_PANIC, message)),
    }
}

/// Writes a hook's outcome: an instance into `out`, or a message into `err`.
///
/// # Safety
/// `out` and `err` must be valid for writes.
pub(crate) unsafe fn finish_instance<A>(
    result: Result<A, (u32, String)>,
    out: *mut *mut c_void,
    err: *mut OwnedBuf,
) -> u32 {
    match result {
        Ok(app) => {
            // SAFETY: the caller promises `out` is valid for writes.
            unsafe { out.write(Box::into_raw(Box::new(app)).cast()) };
            STATUS_OK
        }
        Err((status, message)) => {
            // SAFETY: the caller promises `err` is valid for writes.
            unsafe { err.write(OwnedBuf::from_vec(message.into_bytes())) };
            status
        }
    }
}

unsafe extern "C" fn create<A: App>(out: *mut *mut c_void, err: *mut OwnedBuf) -> u32 {
    let result = guarded(A::create);
    // SAFETY: the host passes pointers to its own locals, valid for writes (HostContract).
    unsafe { finish_instance(result, out, err) }
}

unsafe extern "C" fn import_state<A: App>(
    schema: u32,
    state: Bytes<'_>,
    out: *mut *mut c_void,
    err: *mut OwnedBuf,
) -> u32 {
    let result = guarded(|| {
        imports::<A>(schema)?;
        A::import_state(schema, state.as_slice())
    });
    // SAFETY: the host passes pointers to its own locals, valid for writes (HostContract).
    unsafe { finish_instance(result, out, err) }
}

unsafe extern "C" fn merge_state<A: App>(
    app: *mut c_void,
    schema: u32,
    state: Bytes<'_>,
    err: *mut OwnedBuf,
) -> u32 {
    let result = guarded(|| {
        if !A::MERGES.contains(&schema) {
            return Err(AppError(format!(
                "{} cannot merge state schema {schema} (merges {:?})",
                A::NAME,
                A::MERGES
            )));
        }
        // SAFETY: `app` is a live instance of `A` built by this plugin, and the host passes it
        // only while no other call can reach it (MergeFn), so the `&mut` is exclusive.
        let app = unsafe { &mut *app.cast::<A>() };
        app.merge_state(schema, state.as_slice())
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

unsafe extern "C" fn handle<A: App>(
    app: *const c_void,
    req: *const Request<'_>,
    resp: *mut RawResponse,
) -> u32 {
    let result = crate::panic::catch(|| {
        // SAFETY: `app` is an instance this plugin built for `A` and the host has not destroyed
        // it (it holds it for the whole call); `req` points at a request the host keeps alive
        // for the call.
        let (app, req) = unsafe { (&*app.cast::<A>(), &*req) };
        app.handle(req)
    });
    // The panic text goes to the host, which logs it and answers the client with a generic
    // body (the text may name internals the client should not see).
    let (status, response) = match result {
        Ok(response) => (STATUS_OK, response),
        Err(message) => (STATUS_PANIC, Response::new(500, message)),
    };
    let raw = RawResponse {
        status: response.status,
        headers: OwnedBuf::from_vec(encode_headers(&response.headers)),
        body: OwnedBuf::from_vec(response.body),
    };
    // SAFETY: the host passes a pointer to its own `RawResponse` local, valid for writes.
    unsafe { resp.write(raw) };
    status
}

unsafe extern "C" fn export_state<A: App>(app: *const c_void, schema: u32, out: *mut OwnedBuf) -> u32 {
    let result = guarded(|| {
        exports::<A>(schema)?;
        // SAFETY: `app` is a live instance of `A` built by this plugin (see `handle`).
        let app = unsafe { &*app.cast::<A>() };
        app.export_state(schema)
    });
    let (status, bytes) = match result {
        Ok(bytes) => (STATUS_OK, bytes),
        Err((status, message)) => (status, message.into_bytes()),
    };
    // SAFETY: the host passes a pointer to its own `OwnedBuf` local, valid for writes.
    unsafe { out.write(OwnedBuf::from_vec(bytes)) };
    status
}

unsafe extern "C" fn tick<A: App>(app: *const c_void, err: *mut OwnedBuf) -> u32 {
    let result = guarded(|| {
        // SAFETY: `app` is a live instance of `A` built by this plugin (see `handle`).
        let app = unsafe { &*app.cast::<A>() };
        app.tick()
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

unsafe extern "C" fn health<A: App>(app: *const c_void, err: *mut OwnedBuf) -> u32 {
    let result = guarded(|| {
        // SAFETY: `app` is a live instance of `A` built by this plugin (see `handle`).
        let app = unsafe { &*app.cast::<A>() };
        app.health()
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

unsafe extern "C" fn destroy<A: App>(app: *mut c_void) {
    // A panic in the app's Drop must not unwind into the host; it is reported and swallowed.
    let _ = crate::panic::catch(|| {
        // SAFETY: `app` came from `Box::into_raw` in `finish_instance` for this `A`, and the host
        // destroys each instance exactly once, after its last call.
        drop(unsafe { Box::from_raw(app.cast::<A>()) });
    });
}

unsafe extern "C" fn free_buffer(buf: OwnedBuf) {
    // SAFETY: the host hands back, exactly once, a buffer this plugin made with `from_vec`.
    drop(unsafe { buf.into_vec() });
}

/// Refuses a state schema `A` does not import, naming what it does.
pub(crate) fn imports<A: App>(schema: u32) -> Result<(), AppError> {
    if A::IMPORTS.contains(&schema) {
        return Ok(());
    }
    Err(AppError(format!(
        "{} cannot import state schema {schema} (imports {:?})",
        A::NAME,
        A::IMPORTS
    )))
}

/// Refuses a state schema `A` does not export, naming what it does.
pub(crate) fn exports<A: App>(schema: u32) -> Result<(), AppError> {
    if A::EXPORTS.contains(&schema) {
        return Ok(());
    }
    Err(AppError(format!(
        "{} cannot export state schema {schema} (exports {:?})",
        A::NAME,
        A::EXPORTS
    )))
}
