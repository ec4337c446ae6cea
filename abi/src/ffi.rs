//! The `#[repr(C)]` types that cross the boundary between the supervisor and a plugin.
//!
//! Two kinds of memory cross it, and only two:
//! - [`Bytes`]: borrowed, valid for the duration of one call, owned by the caller.
//! - [`OwnedBuf`]: allocated by the plugin, handed to the host, and freed by the plugin's
//!   [`Descriptor::free_buffer`] once the host has copied what it needs. Never by the host's
//!   allocator: the two sides may not even share one.

use std::ffi::c_void;
use std::marker::PhantomData;

/// First field of every [`Descriptor`]: the ASCII bytes `MOLT_ABI`, read as a little-endian u64.
pub const ABI_MAGIC: u64 = u64::from_le_bytes(*b"MOLT_ABI");

/// The version of this contract plugins are built against now.
///
/// - 1: export/import of the state as bytes.
/// - 2: adds tables owned by the host (the [`crate::HostApi`] handed to `create_in` and
///   `import_in`) and the per-record schema hooks. Plugins built against 1 keep loading.
pub const ABI_VERSION: u32 = 2;

/// Every ABI version a host built from this crate loads.
pub const ABI_VERSIONS: &[u32] = &[1, 2];

/// The size of an ABI version 1 descriptor: the fields up to `free_buffer`. A host reads a
/// field past this only when the descriptor's `size` covers it.
pub const DESCRIPTOR_V1_SIZE: usize = std::mem::offset_of!(Descriptor, table_schema);

/// The entry symbol a plugin exports (NUL-terminated, as `dlsym` wants it): this name, or
/// a name starting with [`ENTRY_PREFIX`]. A plugin exports exactly one of them.
pub const ENTRY_SYMBOL: &[u8] = b"molt_app_descriptor\0";

/// The prefix of the entry symbol's per-crate name, `molt_app_descriptor_<crate>`, which
/// [`crate::export_app!`] exports: unlike one fixed name, several versions of an app (each its
/// own crate) can be linked into one binary, such as a test of the migrations between them.
/// A host looks for the fixed [`ENTRY_SYMBOL`] first, then for one name with this prefix.
pub const ENTRY_PREFIX: &str = "molt_app_descriptor_";

/// The call succeeded; the out-parameter holds the result.
pub const STATUS_OK: u32 = 0;
/// The hook returned an error; the out-buffer holds its UTF-8 message.
pub const STATUS_ERROR: u32 = 1;
/// The hook panicked; the panic was caught in the shim and the out-buffer holds its message.
pub const STATUS_PANIC: u32 = 2;

/// A borrowed byte string: valid only for the call it is passed to.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Bytes<'a> {
    ptr: *const u8,
    len: usize,
    _borrow: PhantomData<&'a [u8]>,
}

impl<'a> Bytes<'a> {
    /// Borrows a byte slice.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Bytes {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            _borrow: PhantomData,
        }
    }

    /// Borrows a string's bytes.
    pub const fn from_str(s: &'a str) -> Self {
        Self::new(s.as_bytes())
    }

    /// The borrowed bytes.
    pub fn as_slice(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: a `Bytes<'a>` is only built by `new` from a `&'a [u8]` (its fields are
        // private), so `ptr`/`len` describe a live slice for `'a`. A host on the other side of
        // the boundary upholds the same promise by building its values with `new` too.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// How many bytes are borrowed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is borrowed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes as UTF-8, or `""` when they are not.
    pub fn as_str(&self) -> &'a str {
        std::str::from_utf8(self.as_slice()).unwrap_or("")
    }
}

/// A borrowed slice of `T`, as a pointer and a length.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Slice<'a, T> {
    ptr: *const T,
    len: usize,
    _borrow: PhantomData<&'a [T]>,
}

impl<'a, T> Slice<'a, T> {
    /// Borrows a slice.
    pub const fn new(items: &'a [T]) -> Self {
        Slice {
            ptr: items.as_ptr(),
            len: items.len(),
            _borrow: PhantomData,
        }
    }

    /// The borrowed items.
    pub fn as_slice(&self) -> &'a [T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: built only by `new` from a `&'a [T]`, see `Bytes::as_slice`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A buffer allocated by the plugin (a leaked `Vec<u8>`), freed only by the plugin's
/// `free_buffer`. An empty buffer has a null pointer and frees to nothing.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBuf {
    /// Start of the allocation (null when empty).
    pub ptr: *mut u8,
    /// Bytes in use.
    pub len: usize,
    /// Bytes allocated.
    pub cap: usize,
}

impl OwnedBuf {
    /// A buffer that owns nothing.
    pub const EMPTY: OwnedBuf = OwnedBuf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };

    /// Leaks `bytes` into a buffer; only [`OwnedBuf::into_vec`] in the same binary gets it back.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.capacity() == 0 {
            return Self::EMPTY;
        }
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        OwnedBuf {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Takes the allocation back as a `Vec`.
    ///
    /// # Safety
    /// `self` must come from [`OwnedBuf::from_vec`] in this same binary (same allocator) and
    /// must not have been taken back before.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the caller promises the fields came from `from_vec` of a live, untaken Vec
        // allocated by this binary's allocator.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// Reads the bytes without taking ownership.
    ///
    /// # Safety
    /// `self` must describe a live buffer produced by `from_vec` (in any binary) that has not
    /// been freed yet; the slice must not outlive that.
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: the caller promises `ptr`/`len` describe a live allocation.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// One borrowed HTTP header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Header<'a> {
    /// Header name (lower case when it comes from molt's HTTP front).
    pub name: Bytes<'a>,
    /// Header value (not necessarily UTF-8).
    pub value: Bytes<'a>,
}

impl<'a> Header<'a> {
    /// Borrows a header.
    pub const fn new(name: &'a [u8], value: &'a [u8]) -> Self {
        Header {
            name: Bytes::new(name),
            value: Bytes::new(value),
        }
    }
}

/// The response as it crosses the boundary: built by the plugin, read by the host, then both
/// buffers are handed back to the plugin's `free_buffer`.
#[repr(C)]
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers, encoded by [`crate::encode_headers`].
    pub headers: OwnedBuf,
    /// The body.
    pub body: OwnedBuf,
}

/// Builds a fresh app instance; on error `err` receives a message.
pub type CreateFn = unsafe extern "C" fn(out: *mut *mut c_void, err: *mut OwnedBuf) -> u32;
/// Serves one request. Always fills `resp`; on a caught panic returns [`STATUS_PANIC`] with a
/// 500 response whose body is the panic message, which the host logs and never forwards.
pub type HandleFn =
    unsafe extern "C" fn(app: *const c_void, req: *const crate::Request<'_>, resp: *mut RawResponse) -> u32;
/// Serialises the state in `schema` into `out` (or an error message into `out`).
pub type ExportFn = unsafe extern "C" fn(app: *const c_void, schema: u32, out: *mut OwnedBuf) -> u32;
/// Builds a new instance from state serialised in `schema`; on error `err` receives a message.
pub type ImportFn =
    unsafe extern "C" fn(schema: u32, state: Bytes<'_>, out: *mut *mut c_void, err: *mut OwnedBuf) -> u32;
/// Reports health; on failure `err` receives a message.
pub type HealthFn = unsafe extern "C" fn(app: *const c_void, err: *mut OwnedBuf) -> u32;
/// Does the app's periodic work; on failure `err` receives a message.
pub type TickFn = unsafe extern "C" fn(app: *const c_void, err: *mut OwnedBuf) -> u32;
/// Drops an instance built by `create` or `import_state`.
pub type DestroyFn = unsafe extern "C" fn(app: *mut c_void);
/// Frees a buffer the plugin handed out.
pub type FreeBufferFn = unsafe extern "C" fn(buf: OwnedBuf);
/// Absorbs another instance's state, serialised in `schema`, into `app`; on error `err`
/// receives a message. The host calls it only on an instance no other call can reach (a
/// fresh copy of the running state), so a failed or panicking merge is dropped whole.
pub type MergeFn =
    unsafe extern "C" fn(app: *mut c_void, schema: u32, state: Bytes<'_>, err: *mut OwnedBuf) -> u32;

/// What the entry symbol returns: who the plugin is and how to call it.
///
/// Fields are only ever appended; `size` lets a host see how much of the struct a plugin built.
/// Every appended field is one whose all-zero bytes mean "absent" (`Option` of a function
/// pointer, an integer, an empty [`Slice`]): a host copies the `size` bytes a plugin published
/// over a zeroed descriptor, so fields the plugin's build did not have read as absent.
/// The first 16 bytes (`magic`, `abi_version`, `size`) are frozen for every ABI version to
/// come: a host reads them before it knows which version the plugin speaks.
#[repr(C)]
pub struct Descriptor {
    /// Always [`ABI_MAGIC`].
    pub magic: u64,
    /// The [`ABI_VERSION`] the plugin was built against.
    pub abi_version: u32,
    /// `size_of::<Descriptor>()` in the plugin's build.
    pub size: u32,
    /// App name (UTF-8), the same across all versions of one app.
    pub name: Bytes<'static>,
    /// App version (UTF-8), from the plugin crate's Cargo version.
    pub version: Bytes<'static>,
    /// The state schema this version keeps.
    pub state_schema: u32,
    /// Schemas `import_state` accepts (its own included).
    pub import_schemas: Slice<'static, u32>,
    /// Schemas `export_state` can write (its own included; older ones make rollback possible).
    pub export_schemas: Slice<'static, u32>,
    /// See [`CreateFn`].
    pub create: CreateFn,
    /// See [`HandleFn`].
    pub handle: HandleFn,
    /// See [`ExportFn`].
    pub export_state: ExportFn,
    /// See [`ImportFn`].
    pub import_state: ImportFn,
    /// See [`HealthFn`].
    pub health: HealthFn,
    /// See [`DestroyFn`].
    pub destroy: DestroyFn,
    /// See [`FreeBufferFn`].
    pub free_buffer: FreeBufferFn,

    // ABI version 2: tables owned by the host.
    /// The schema of the records this version keeps in tables (0: it keeps no tables).
    pub table_schema: u32,
    /// Older table schemas `upgrade_record` converts from.
    pub table_upgrades: Slice<'static, u32>,
    /// Older table schemas `downgrade_record` converts to (what makes a rollback possible).
    pub table_downgrades: Slice<'static, u32>,
    /// See [`crate::CreateInFn`].
    pub create_in: Option<crate::CreateInFn>,
    /// See [`crate::ImportInFn`].
    pub import_in: Option<crate::ImportInFn>,
    /// Converts a record from an older table schema to `table_schema` ([`crate::RecordFn`]).
    pub upgrade_record: Option<crate::RecordFn>,
    /// Converts a record from `table_schema` to an older one ([`crate::RecordFn`]).
    pub downgrade_record: Option<crate::RecordFn>,

    // ABI version 2: periodic work.
    /// How often the host calls `tick`, in milliseconds (0: never).
    pub tick_interval_ms: u32,
    /// See [`TickFn`]; `None` when the app declares no periodic work.
    pub tick: Option<TickFn>,

    // Appended after the tables and `tick`: the merge hook (a handoff absorbs a peer's state).
    /// Schemas `merge_state` accepts (appended; empty when the app has no merge hook).
    pub merge_schemas: Slice<'static, u32>,
    /// See [`MergeFn`] (appended; `None`: the app cannot absorb a peer's state, and a handoff
    /// to it is refused before anything stops).
    pub merge_state: Option<MergeFn>,

    // Appended after the merge hook: the bytes path at memory speed (see `crate::StateWriter`).
    /// See [`crate::ExportIntoFn`] (appended; `None`: the host exports through `export_state`
    /// and reads the plugin's buffer in place).
    pub export_into: Option<crate::ExportIntoFn>,
    /// See [`crate::ImportSharedFn`] (appended; `None`: the host lends the bytes to
    /// `import_in` or `import_state` for the call).
    pub import_shared: Option<crate::ImportSharedFn>,
}

// SAFETY: a descriptor is immutable once built; its pointers point at `'static` constants
// (name, version, schema lists) and at functions, all of which are safe to read from any thread.
unsafe impl Sync for Descriptor {}
