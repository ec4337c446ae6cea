//! [`StateBytes`]: exported state as the host holds it, read in place wherever it lives.
//!
//! An export lands either in a [`Region`] of the host's (the plugin's `export_into`) or in
//! the plugin's own buffer (`export_state`, plugins built before `export_into`), which the host
//! reads where it is and frees through that plugin's `free_buffer` when dropped: no copy into
//! a host `Vec` either way. Bytes read from a snapshot file are a plain `Vec`. A swap hands
//! the same bytes to the new version's `import_shared`, which may keep them
//! ([`StateBytes::into_shared`]): the memory goes back when the last holder lets go.

use super::instance::free;
use super::region::Region;
use super::Plugin;
use molt_abi::{OwnedBuf, SharedBytes};
use std::ffi::c_void;
use std::ops::Deref;
use std::sync::Arc;

/// Exported state: derefs to its bytes.
pub struct StateBytes(Held);

enum Held {
    Region(Region),
    Plugin(PluginBuf),
    Vec(Vec<u8>),
}

/// A buffer a plugin handed out, freed through that plugin when dropped; the `Arc` keeps its
/// library (and so `free_buffer`) mapped until then.
struct PluginBuf {
    buf: OwnedBuf,
    plugin: Arc<Plugin>,
}

// SAFETY: the buffer is plain memory the plugin gave up until `free_buffer`; nothing else
// points into it, it is only read through `&self`, and the ABI lets the host hand buffers back
// from any thread.
unsafe impl Send for PluginBuf {}
// SAFETY: see `Send`: shared access only reads.
unsafe impl Sync for PluginBuf {}

impl Drop for PluginBuf {
    fn drop(&mut self) {
        free(&self.plugin, std::mem::replace(&mut self.buf, OwnedBuf::EMPTY));
    }
}

impl StateBytes {
    pub(super) fn region(region: Region) -> StateBytes {
        StateBytes(Held::Region(region))
    }

    pub(super) fn plugin(buf: OwnedBuf, plugin: &Arc<Plugin>) -> StateBytes {
        StateBytes(Held::Plugin(PluginBuf {
            buf,
            plugin: Arc::clone(plugin),
        }))
    }

    /// Where the bytes live: `"region"` (the host's export buffer), `"plugin"` (the exporting
    /// plugin's own buffer, read in place) or `"vec"` (e.g. read from a snapshot file).
    pub fn held_in(&self) -> &'static str {
        match &self.0 {
            Held::Region(_) => "region",
            Held::Plugin(_) => "plugin",
            Held::Vec(_) => "vec",
        }
    }

    /// Gives the bytes away for keeps, as molt-abi's `SharedBytes`: the receiver calls its
    /// `release` exactly once, which drops them (frees the region or the plugin's buffer).
    pub(super) fn into_shared(self) -> SharedBytes {
        let boxed = Box::new(self);
        let (ptr, len) = (boxed.as_ptr(), boxed.len());
        SharedBytes {
            ptr,
            len,
            ctx: Box::into_raw(boxed).cast(),
            release: release_state,
        }
    }
}

/// `SharedBytes::release` of [`StateBytes::into_shared`].
unsafe extern "C" fn release_state(ctx: *mut c_void) {
    // A panic in a drop must not unwind into the plugin; none is expected (munmap, free).
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `ctx` is the box `into_shared` leaked, released exactly once (the ABI's rule).
        drop(unsafe { Box::from_raw(ctx.cast::<StateBytes>()) });
    });
}

impl Deref for StateBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Held::Region(region) => region.as_slice(),
            // SAFETY: the plugin handed this buffer out and it is freed only when `self` drops.
            Held::Plugin(p) => unsafe { p.buf.as_slice() },
            Held::Vec(v) => v,
        }
    }
}

impl AsRef<[u8]> for StateBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl StateBytes {
    /// The bytes as a `Vec`: taken when they are one, copied otherwise.
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Held::Vec(v) => v,
            _ => self.to_vec(),
        }
    }
}

impl From<Vec<u8>> for StateBytes {
    fn from(bytes: Vec<u8>) -> Self {
        StateBytes(Held::Vec(bytes))
    }
}

impl Clone for StateBytes {
    /// A copy of the bytes, in a `Vec`.
    fn clone(&self) -> Self {
        StateBytes::from(self.to_vec())
    }
}

impl PartialEq for StateBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for StateBytes {}

impl PartialEq<Vec<u8>> for StateBytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == **other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for StateBytes {
    fn eq(&self, other: &[u8; N]) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for StateBytes {
    fn eq(&self, other: &&[u8; N]) -> bool {
        **self == other[..]
    }
}

impl std::fmt::Debug for StateBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateBytes")
            .field("len", &self.len())
            .field("held_in", &self.held_in())
            .finish()
    }
}
