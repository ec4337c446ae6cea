//! The bytes path at memory speed (appended to the descriptor after `merge_state`): a swap's
//! export is written straight into a buffer the host owns ([`HostBuf`], written through
//! [`StateWriter`]), and the import may keep that very buffer as its storage ([`SharedBytes`],
//! held as a [`StateBuf`]) instead of copying out of it.
//!
//! Why the host owns the buffer: a buffer that outlives one plugin library (handed from the
//! old version to the new one, or kept by the new one for as long as it likes) cannot be
//! freed by the old library's allocator once that library is unloaded. The host's memory has
//! no such end. And the host can size and pre-fault the buffer from the last export's size
//! while traffic still flows, so the pause pays for copying bytes, not for page faults.
//!
//! Ownership: a [`HostBuf`] is lent to `export_into` for the call only; the plugin writes
//! into it and may ask it to grow, and never frees it. A [`SharedBytes`] is given to
//! `import_shared` for keeps: the plugin calls its `release` exactly once, from any thread,
//! when it no longer reads the bytes (the safe [`StateBuf`] does that when dropped), whether
//! the import succeeded or not. The bytes never change while they are shared.

use crate::ffi::OwnedBuf;
use crate::host::HostApi;
use std::ffi::c_void;
use std::ops::Deref;

/// A growable byte buffer the host owns, lent to `export_into` for one call.
///
/// `ptr..ptr + cap` is writable memory of the host's (pre-faulted when the host knew what
/// size to expect); the first `len` bytes are what has been written. The plugin appends by
/// writing at `ptr + len` and raising `len`, calling `grow` first when `cap - len` is too small.
#[repr(C)]
pub struct HostBuf {
    /// Start of the buffer.
    pub ptr: *mut u8,
    /// Bytes written so far.
    pub len: usize,
    /// Bytes the buffer can hold without growing.
    pub cap: usize,
    /// The host's context, for `grow`.
    pub ctx: *mut c_void,
    /// Makes room for at least `min_cap` bytes in all, keeping the first `len`; may move the
    /// buffer (it updates `ptr` and `cap`). Returns `false`, changing nothing, when it cannot.
    pub grow: unsafe extern "C" fn(buf: *mut HostBuf, min_cap: usize) -> bool,
}

/// Serialises the state in `schema` into the host's `out` (appending from `out.len`, which is
/// 0 when called); on error `err` receives a message and what was written is ignored.
pub type ExportIntoFn =
    unsafe extern "C" fn(app: *const c_void, schema: u32, out: *mut HostBuf, err: *mut OwnedBuf) -> u32;

/// Bytes the host gives a plugin for keeps: readable and unchanging until the plugin calls
/// `release(ctx)`, which it does exactly once (from any thread).
#[repr(C)]
pub struct SharedBytes {
    /// Start of the bytes.
    pub ptr: *const u8,
    /// How many.
    pub len: usize,
    /// The host's context, for `release`.
    pub ctx: *mut c_void,
    /// Gives the bytes back; they must not be read afterwards.
    pub release: unsafe extern "C" fn(ctx: *mut c_void),
}

/// Builds a new instance from state serialised in `schema`, with the host's tables (as
/// `import_in`), and owning `state` (see [`SharedBytes`]): it may keep the bytes as its storage,
/// and releases them exactly once, also on error. On error `err` receives a message.
pub type ImportSharedFn = unsafe extern "C" fn(
    host: *const HostApi,
    schema: u32,
    state: SharedBytes,
    out: *mut *mut c_void,
    err: *mut OwnedBuf,
) -> u32;

/// Where [`crate::App::export_into`] writes the state: the host's buffer during a swap or a
/// snapshot, or a plain `Vec` (tests, [`crate::App::export_state`]'s callers). Appending grows
/// it like a `Vec`; a host that cannot grow its buffer makes the append panic, which the shim
/// reports as a failed export (the swap is refused, nothing changed).
pub struct StateWriter<'a> {
    out: Out<'a>,
}

enum Out<'a> {
    Vec(&'a mut Vec<u8>),
    Host(&'a mut HostBuf),
}

impl<'a> StateWriter<'a> {
    /// A writer appending to `vec`.
    pub fn new(vec: &'a mut Vec<u8>) -> Self {
        StateWriter { out: Out::Vec(vec) }
    }

    /// A writer appending to the host's buffer.
    ///
    /// # Safety
    /// `buf` must be a live host buffer as [`HostBuf`] describes, lent for `'a`.
    pub(crate) unsafe fn host(buf: &'a mut HostBuf) -> Self {
        StateWriter { out: Out::Host(buf) }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        match &self.out {
            Out::Vec(v) => v.len(),
            Out::Host(b) => b.len,
        }
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for `additional` more bytes, so that appending them does not grow the
    /// buffer again (call it once with the whole size when it is known).
    pub fn reserve(&mut self, additional: usize) {
        match &mut self.out {
            Out::Vec(v) => v.reserve(additional),
            Out::Host(b) => {
                if b.cap - b.len < additional {
                    let want = b
                        .len
                        .checked_add(additional)
                        .expect("export size overflows usize");
                    grow(b, want.max(b.cap.saturating_mul(2)));
                }
            }
        }
    }

    /// Appends `bytes`.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        match &mut self.out {
            Out::Vec(v) => v.extend_from_slice(bytes),
            Out::Host(b) => {
                if b.cap - b.len < bytes.len() {
                    let want = b
                        .len
                        .checked_add(bytes.len())
                        .expect("export size overflows usize");
                    grow(b, want.max(b.cap.saturating_mul(2)));
                }
                // SAFETY: `b` is a live host buffer (`host`'s contract) with at least
                // `bytes.len()` writable bytes after `len` (checked, or grown just above);
                // `bytes` is ours and cannot overlap the host's buffer we are lent mutably.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), b.ptr.add(b.len), bytes.len()) };
                b.len += bytes.len();
            }
        }
    }

    /// Appends a little-endian `u32` (a length prefix, say) without a call to `memcpy`.
    #[inline]
    pub fn put_u32_le(&mut self, n: u32) {
        self.put_array(n.to_le_bytes());
    }

    /// Appends a little-endian `u64` without a call to `memcpy`.
    #[inline]
    pub fn put_u64_le(&mut self, n: u64) {
        self.put_array(n.to_le_bytes());
    }

    #[inline]
    fn put_array<const N: usize>(&mut self, bytes: [u8; N]) {
        match &mut self.out {
            Out::Vec(v) => v.extend_from_slice(&bytes),
            Out::Host(b) => {
                if b.cap - b.len < N {
                    let want = b.len.checked_add(N).expect("export size overflows usize");
                    grow(b, want.max(b.cap.saturating_mul(2)));
                }
                // SAFETY: as in `extend_from_slice`: `N` writable bytes after `len` (checked,
                // or grown just above), not overlapping our local `bytes`.
                unsafe { b.ptr.add(b.len).cast::<[u8; N]>().write_unaligned(bytes) };
                b.len += N;
            }
        }
    }

    /// What was written so far, writable in place (to patch a count written ahead, say).
    pub fn written_mut(&mut self) -> &mut [u8] {
        match &mut self.out {
            Out::Vec(v) => v.as_mut_slice(),
            Out::Host(b) if b.len == 0 => &mut [],
            // SAFETY: the first `len` bytes of a live host buffer are initialised (written by
            // us) and lent to us mutably for `'a`; the borrow of `self` bounds the slice.
            Out::Host(b) => unsafe { std::slice::from_raw_parts_mut(b.ptr, b.len) },
        }
    }
}

/// Asks the host to grow `b` to `min_cap`; panics (caught by the shim) when it cannot.
fn grow(b: &mut HostBuf, min_cap: usize) {
    // SAFETY: `b` is a live host buffer whose `grow` is the host's, called with the buffer
    // itself as [`HostBuf`] requires.
    let grown = unsafe { (b.grow)(b, min_cap) };
    assert!(
        grown && b.cap >= min_cap,
        "the host could not grow the export buffer to {min_cap} bytes"
    );
}

/// State the host gave this plugin for keeps ([`SharedBytes`]): derefs to the bytes, and gives
/// them back when dropped. Cheap to share further by wrapping it in an `Arc`; a value that
/// points into it keeps the whole buffer alive.
pub struct StateBuf {
    raw: SharedBytes,
}

// SAFETY: the bytes never change while shared and `release` may be called from any thread
// (the host's promise in `SharedBytes`; `from_vec` keeps it for a Vec it owns).
unsafe impl Send for StateBuf {}
// SAFETY: shared reads of unchanging bytes from many threads are fine (see `Send`).
unsafe impl Sync for StateBuf {}

impl StateBuf {
    /// Takes the host's bytes.
    ///
    /// # Safety
    /// `raw` must keep [`SharedBytes`]' promise, and be taken once.
    pub(crate) unsafe fn from_host(raw: SharedBytes) -> Self {
        StateBuf { raw }
    }

    /// Wraps bytes of this binary's own (tests, and a host that has a `Vec`).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let boxed = Box::new(bytes);
        let (ptr, len) = (boxed.as_ptr(), boxed.len());
        StateBuf {
            raw: SharedBytes {
                ptr,
                len,
                ctx: Box::into_raw(boxed).cast(),
                release: release_vec,
            },
        }
    }
}

unsafe extern "C" fn release_vec(ctx: *mut c_void) {
    // SAFETY: `ctx` is the `Box<Vec<u8>>` leaked by `from_vec`, released exactly once.
    drop(unsafe { Box::from_raw(ctx.cast::<Vec<u8>>()) });
}

impl Deref for StateBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if self.raw.len == 0 {
            return &[];
        }
        // SAFETY: the bytes stay readable and unchanged until `release`, which only `drop`
        // calls (SharedBytes' promise, kept by `from_host`'s caller or by `from_vec`).
        unsafe { std::slice::from_raw_parts(self.raw.ptr, self.raw.len) }
    }
}

impl Drop for StateBuf {
    fn drop(&mut self) {
        // SAFETY: released exactly once, here; nothing reads the bytes afterwards (`self` is gone).
        unsafe { (self.raw.release)(self.raw.ctx) };
    }
}

impl std::fmt::Debug for StateBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateBuf")
            .field("len", &self.raw.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Grower {
        storage: Vec<u8>,
        grows: usize,
    }

    unsafe extern "C" fn grow_vec(buf: *mut HostBuf, min_cap: usize) -> bool {
        // SAFETY: the test passes its own buffer whose ctx is a live `Grower`.
        let buf = unsafe { &mut *buf };
        // SAFETY: as above.
        let grower = unsafe { &mut *buf.ctx.cast::<Grower>() };
        grower.storage.truncate(buf.len);
        grower.storage.resize(min_cap, 0);
        grower.grows += 1;
        buf.ptr = grower.storage.as_mut_ptr();
        buf.cap = grower.storage.len();
        true
    }

    #[test]
    fn a_host_buffer_grows_and_keeps_what_was_written() {
        let mut grower = Grower {
            storage: vec![0; 4],
            grows: 0,
        };
        let mut buf = HostBuf {
            ptr: grower.storage.as_mut_ptr(),
            len: 0,
            cap: 4,
            ctx: (&mut grower as *mut Grower).cast(),
            grow: grow_vec,
        };
        // SAFETY: `buf` describes `grower.storage`, which outlives the writer.
        let mut w = unsafe { StateWriter::host(&mut buf) };
        w.extend_from_slice(b"abc");
        w.extend_from_slice(b"defgh");
        w.reserve(100);
        w.extend_from_slice(b"i");
        w.put_u32_le(0x0403_0201);
        w.written_mut()[0] = b'A';
        assert_eq!(w.len(), 13);
        let len = buf.len;
        assert_eq!(&grower.storage[..len], b"Abcdefghi\x01\x02\x03\x04");
        assert_eq!(grower.grows, 2);
    }

    #[test]
    fn a_state_buf_from_a_vec_reads_and_releases() {
        let buf = StateBuf::from_vec(b"state".to_vec());
        let shared = std::sync::Arc::new(buf);
        let other = std::sync::Arc::clone(&shared);
        assert_eq!(&other[..], b"state");
        drop(shared);
        assert_eq!(&other[1..3], b"ta");
        let mut v = Vec::new();
        let mut w = StateWriter::new(&mut v);
        w.extend_from_slice(b"xy");
        assert_eq!(v, b"xy");
    }
}
