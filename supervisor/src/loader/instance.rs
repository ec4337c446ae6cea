//! [`Instance`]: a safe handle on one app value built by a plugin.

use super::host::HostContext;
use super::region::Region;
use super::state::StateBytes;
use super::{Hook, HookError, HookErrorKind, Plugin};
use crate::tables::TableStore;
use molt_abi::{decode_headers, Bytes, OwnedBuf, RawResponse, Request, Response, STATUS_OK, STATUS_PANIC};
use std::ffi::c_void;
use std::fmt;
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// One app value, built by a plugin's `create` or `import_state` and destroyed (through the
/// plugin's `destroy`) when dropped.
///
/// It holds an `Arc` of its [`Plugin`], so the library stays mapped for as long as the
/// instance lives: no call can reach unmapped code. Calls take `&self` and may run on many
/// threads at once; `Drop` needs the instance to itself, so it never overlaps a call.
pub struct Instance {
    /// The app value, opaque to the host. Destroyed in `Drop`, which runs before the fields
    /// drop: the library is still mapped then.
    app: NonNull<c_void>,
    /// The plugin that built `app`, and whose hooks serve it.
    plugin: Arc<Plugin>,
    /// The table functions' context handed to `app` (ABI version 2), dropped after `destroy`.
    host: Option<Box<HostContext>>,
}

// SAFETY: `app` points at a value of the plugin's `App` type, which the ABI requires to be
// `Send + Sync` (`export_app!` only accepts `App: Send + Sync + 'static`). Every hook but
// `destroy` takes it by shared pointer; `destroy` runs from `Drop`, with exclusive access.
unsafe impl Send for Instance {}
// SAFETY: see `Send` just above: shared calls from many threads are what the ABI allows.
unsafe impl Sync for Instance {}

impl Instance {
    /// The `create` hook, or `create_in` with `tables` when the plugin has it.
    pub(super) fn create(
        plugin: &Arc<Plugin>,
        tables: Option<&Arc<TableStore>>,
    ) -> Result<Instance, HookError> {
        let mut out: *mut c_void = ptr::null_mut();
        let mut err = OwnedBuf::EMPTY;
        let (host, status) = match (tables, plugin.hooks.create_in) {
            (Some(tables), Some(create_in)) => {
                let host = HostContext::new(tables, plugin.info().table_schema);
                let api = host.api();
                // SAFETY: `create_in` comes from this plugin's descriptor and `plugin` keeps its
                // library mapped; `api` is borrowed for the call and its context, `host`, goes
                // into the instance, which outlives every call; out-pointers are our locals.
                let status = unsafe { create_in(&api, &mut out, &mut err) };
                (Some(host), status)
            }
            // SAFETY: `create` comes from this plugin's descriptor and `plugin` keeps its
            // library mapped; both out-pointers are locals of ours, valid for writes.
            _ => (None, unsafe { (plugin.hooks.create)(&mut out, &mut err) }),
        };
        Self::built(plugin, host, Hook::Create, status, out, err)
    }

    /// The `import_state` hook, or `import_in` with `tables` when the plugin has it.
    pub(super) fn import(
        plugin: &Arc<Plugin>,
        tables: Option<&Arc<TableStore>>,
        schema: u32,
        state: &[u8],
    ) -> Result<Instance, HookError> {
        let mut out: *mut c_void = ptr::null_mut();
        let mut err = OwnedBuf::EMPTY;
        let bytes = Bytes::new(state);
        let (host, status) = match (tables, plugin.hooks.import_in) {
            (Some(tables), Some(import_in)) => {
                let host = HostContext::new(tables, plugin.info().table_schema);
                let api = host.api();
                // SAFETY: as in `create`; `state` is borrowed for the call only.
                let status = unsafe { import_in(&api, schema, bytes, &mut out, &mut err) };
                (Some(host), status)
            }
            // SAFETY: as in `create`; `state` is borrowed for the call only.
            _ => (None, unsafe {
                (plugin.hooks.import_state)(schema, bytes, &mut out, &mut err)
            }),
        };
        Self::built(plugin, host, Hook::Import, status, out, err)
    }

    /// The `import_shared` hook with `tables`, giving it `state` for keeps; without the hook,
    /// [`Instance::import`] with the bytes lent for the call (dropped after it).
    pub(super) fn import_owned(
        plugin: &Arc<Plugin>,
        tables: &Arc<TableStore>,
        schema: u32,
        state: StateBytes,
    ) -> Result<Instance, HookError> {
        let Some(import_shared) = plugin.hooks.import_shared else {
            return Self::import(plugin, Some(tables), schema, &state);
        };
        let mut out: *mut c_void = ptr::null_mut();
        let mut err = OwnedBuf::EMPTY;
        let host = HostContext::new(tables, plugin.info().table_schema);
        let api = host.api();
        let shared = state.into_shared();
        // SAFETY: as in `create`; `shared` is given for keeps: the plugin releases it exactly
        // once (molt-abi's `SharedBytes`), and `release_state` frees it on whichever thread.
        let status = unsafe { import_shared(&api, schema, shared, &mut out, &mut err) };
        Self::built(plugin, Some(host), Hook::Import, status, out, err)
    }

    /// Turns what `create` or `import_state` wrote into an instance or an error.
    fn built(
        plugin: &Arc<Plugin>,
        host: Option<Box<HostContext>>,
        hook: Hook,
        status: u32,
        out: *mut c_void,
        err: OwnedBuf,
    ) -> Result<Instance, HookError> {
        if status != STATUS_OK {
            return Err(failure(plugin, hook, status, err));
        }
        free(plugin, err);
        match NonNull::new(out) {
            Some(app) => Ok(Instance {
                app,
                plugin: Arc::clone(plugin),
                host,
            }),
            None => Err(HookError {
                hook,
                kind: HookErrorKind::Error,
                message: "reported success but returned no instance".to_owned(),
            }),
        }
    }

    /// The tables this instance was built with (ABI version 2), if any.
    pub fn tables(&self) -> Option<&Arc<TableStore>> {
        self.host.as_ref().map(|host| host.store())
    }

    /// The plugin that built this instance.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Serves one request. A panic in the app (caught by the shim) answers this request with a
    /// 500 whose body names only a request id; the panic message goes to the log under that
    /// id, never to the client. The instance keeps serving.
    pub fn handle(&self, req: &Request<'_>) -> Response {
        let mut raw = RawResponse {
            status: 500,
            headers: OwnedBuf::EMPTY,
            body: OwnedBuf::EMPTY,
        };
        // SAFETY: `app` is alive (it is destroyed only in `Drop`, which cannot overlap this
        // `&self` call), built by this plugin, whose library `self.plugin` keeps mapped; `req`
        // is borrowed for the call; `raw` is our local, valid for writes.
        let status = unsafe { (self.plugin.hooks.handle)(self.app.as_ptr(), req, &mut raw) };
        let RawResponse {
            status: code,
            headers,
            body,
        } = raw;
        // SAFETY: both buffers were just handed out by this plugin and are freed only below.
        let (decoded, body_bytes) = unsafe { (decode_headers(headers.as_slice()), body.as_slice().to_vec()) };
        free(&self.plugin, headers);
        free(&self.plugin, body);
        if status == STATUS_PANIC {
            let request_id = format!("{:016x}", next_request_id());
            let message = String::from_utf8_lossy(&body_bytes);
            tracing::warn!(plugin = %self.plugin.id(), %request_id, "handle {message}");
            return Response::new(500, format!("internal error (request id {request_id})\n"))
                .with_header("x-molt-request-id", request_id);
        }
        match decoded {
            Some(headers) => Response {
                status: code,
                headers,
                body: body_bytes,
            },
            None => Response::new(
                500,
                format!("{} answered with malformed response headers\n", self.plugin.id()),
            ),
        }
    }

    /// Serialises the state in `schema`, read in place: into a host [`Region`] through the
    /// `export_into` hook (growing it as needed), or, for a plugin without that hook, left in
    /// the plugin's own `export_state` buffer, freed when the result is dropped.
    pub fn export(&self, schema: u32) -> Result<StateBytes, HookError> {
        self.export_with(schema, Region::empty())
    }

    /// [`Instance::export`] into `region` (sized and pre-faulted before, see
    /// [`Region::prefaulted`]) when the plugin has `export_into`.
    pub fn export_with(&self, schema: u32, mut region: Region) -> Result<StateBytes, HookError> {
        let Some(export_into) = self.plugin.hooks.export_into else {
            let mut out = OwnedBuf::EMPTY;
            // SAFETY: as in `handle`; `out` is our local, valid for writes.
            let status = unsafe { (self.plugin.hooks.export_state)(self.app.as_ptr(), schema, &mut out) };
            if status != STATUS_OK {
                return Err(failure(&self.plugin, Hook::Export, status, out));
            }
            return Ok(StateBytes::plugin(out, &self.plugin));
        };
        let mut err = OwnedBuf::EMPTY;
        let mut buf = region.lend();
        // SAFETY: as in `handle`; `buf` lends `region` (borrowed mutably until `written`
        // below) for this call only; `err` is our local, valid for writes.
        let status = unsafe { export_into(self.app.as_ptr(), schema, &mut buf, &mut err) };
        if status != STATUS_OK {
            return Err(failure(&self.plugin, Hook::Export, status, err));
        }
        free(&self.plugin, err);
        if !region.written(&buf) {
            return Err(HookError {
                hook: Hook::Export,
                kind: HookErrorKind::Error,
                message: "left the export buffer inconsistent (a length past its capacity)".to_owned(),
            });
        }
        Ok(StateBytes::region(region))
    }

    /// Runs the app's periodic work (the `tick` hook); `Ok` when the app has none.
    pub fn tick(&self) -> Result<(), HookError> {
        let Some(tick) = self.plugin.hooks.tick else {
            return Ok(());
        };
        let mut err = OwnedBuf::EMPTY;
        // SAFETY: as in `handle`; `tick` comes from this plugin's descriptor; `err` is our
        // local, valid for writes.
        let status = unsafe { tick(self.app.as_ptr(), &mut err) };
        if status != STATUS_OK {
            return Err(failure(&self.plugin, Hook::Tick, status, err));
        }
        free(&self.plugin, err);
        Ok(())
    }

    /// Absorbs a peer's state, serialised in `schema`, into this instance (the `merge_state`
    /// hook). `&mut self`: no other call can reach the instance meanwhile, which is what the
    /// hook's contract asks. An instance whose plugin has no merge hook answers an error.
    pub fn merge(&mut self, schema: u32, state: &[u8]) -> Result<(), HookError> {
        let Some(merge) = self.plugin.hooks.merge_state else {
            return Err(HookError {
                hook: Hook::Merge,
                kind: HookErrorKind::Error,
                message: format!("{} has no merge hook", self.plugin.id()),
            });
        };
        let mut err = OwnedBuf::EMPTY;
        // `merge` comes from this plugin's descriptor (zero, so `None`, when its descriptor
        // ends before the field); `state` is borrowed for the call; `err` is our local.
        // SAFETY: `app` is alive and built by this plugin, whose library `self.plugin` keeps
        // mapped; `&mut self` makes this the only call on it (MergeFn's contract).
        let status = unsafe { merge(self.app.as_ptr(), schema, Bytes::new(state), &mut err) };
        if status != STATUS_OK {
            return Err(failure(&self.plugin, Hook::Merge, status, err));
        }
        free(&self.plugin, err);
        Ok(())
    }

    /// Asks the app whether it is healthy (the `health` hook).
    pub fn health(&self) -> Result<(), HookError> {
        let mut err = OwnedBuf::EMPTY;
        // SAFETY: as in `handle`; `err` is our local, valid for writes.
        let status = unsafe { (self.plugin.hooks.health)(self.app.as_ptr(), &mut err) };
        if status != STATUS_OK {
            return Err(failure(&self.plugin, Hook::Health, status, err));
        }
        free(&self.plugin, err);
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: `app` was built by this plugin and is destroyed exactly once, here; no call is
        // running (`drop` has the instance to itself); the library is still mapped, because
        // `self.plugin` is released only after this body returns.
        unsafe { (self.plugin.hooks.destroy)(self.app.as_ptr()) };
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin.id())
            .finish_non_exhaustive()
    }
}

/// A request id for the log line of a panicking request: unique in this process, and not
/// guessable from the previous one alone (the counter starts at a random-enough point).
fn next_request_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    let start = || {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        AtomicU64::new(nanos ^ (u64::from(std::process::id()) << 40))
    };
    NEXT.get_or_init(start).fetch_add(1, Ordering::Relaxed)
}

/// Hands a buffer back to the plugin that allocated it.
pub(super) fn free(plugin: &Plugin, buf: OwnedBuf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: `buf` was handed out by this plugin (every caller passes one it just received)
    // and is moved in here, so it is given back exactly once.
    unsafe { (plugin.hooks.free_buffer)(buf) };
}

/// Reads a failed hook's message out of `buf`, frees it, and builds the error.
pub(super) fn failure(plugin: &Plugin, hook: Hook, status: u32, buf: OwnedBuf) -> HookError {
    // SAFETY: `buf` was just handed out by this plugin (or is still empty) and is freed below.
    let message = String::from_utf8_lossy(unsafe { buf.as_slice() }).into_owned();
    free(plugin, buf);
    let (kind, message) = match status {
        STATUS_PANIC => (HookErrorKind::Panic, message),
        molt_abi::STATUS_ERROR => (HookErrorKind::Error, message),
        other => (HookErrorKind::Error, format!("unknown status {other}: {message}")),
    };
    HookError { hook, kind, message }
}
