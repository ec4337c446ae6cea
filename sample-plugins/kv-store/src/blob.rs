//! [`Blob`]: a key or a value, owned, or lying in the state buffer a swap handed over.
//!
//! An import through `import_shared` keeps the supervisor's buffer (a [`StateBuf`] in an
//! `Arc`) and points each key and value into it instead of copying them out one by one: no
//! allocation per key, no second copy of the state. A write replaces a shared value with an
//! owned one. The buffer goes back to the supervisor when the last blob pointing into it is
//! dropped: at the latest when the instance is destroyed after the next swap, whose export
//! writes every entry into a fresh buffer. Until then a buffer whose values were all
//! overwritten stays resident beside them (its keys still point into it): the price of an
//! import without per-key work, bounded by one state's size.

use molt_abi::StateBuf;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Bytes of a key or a value.
#[derive(Clone)]
pub enum Blob {
    /// Bytes of its own.
    Owned(Box<[u8]>),
    /// `len` bytes at `start` of a shared state buffer.
    Shared {
        /// The buffer.
        buf: Arc<StateBuf>,
        /// Where the bytes start in it.
        start: usize,
        /// How many (a value is at most `u32::MAX` bytes: the state's encoding says so).
        len: u32,
    },
}

impl Blob {
    /// The blob of `part`, a slice of `buf` (as the import's reader hands it out).
    ///
    /// # Panics
    /// When `part` does not lie inside `buf` or is longer than `u32::MAX`: the import only
    /// passes slices it read out of `buf` with a `u32` length.
    pub fn shared(buf: &Arc<StateBuf>, part: &[u8]) -> Blob {
        let base = buf.as_ptr() as usize;
        let start = (part.as_ptr() as usize).wrapping_sub(base);
        assert!(
            start <= buf.len() && part.len() <= buf.len() - start,
            "a shared blob lies inside its buffer"
        );
        Blob::Shared {
            buf: Arc::clone(buf),
            start,
            len: u32::try_from(part.len()).expect("a shared blob is at most u32::MAX bytes"),
        }
    }

    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Blob::Owned(bytes) => bytes,
            Blob::Shared { buf, start, len } => &buf[*start..*start + *len as usize],
        }
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        match self {
            Blob::Owned(bytes) => bytes.len(),
            Blob::Shared { len, .. } => *len as usize,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the bytes lie in a shared state buffer.
    pub fn is_shared(&self) -> bool {
        matches!(self, Blob::Shared { .. })
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Blob::Owned(bytes.into_boxed_slice())
    }
}

impl From<&[u8]> for Blob {
    fn from(bytes: &[u8]) -> Self {
        Blob::Owned(bytes.into())
    }
}

impl From<&str> for Blob {
    fn from(s: &str) -> Self {
        Blob::from(s.as_bytes())
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Blob {}

/// Hashes as its bytes do, so a map keyed by blobs is searched with a `&[u8]`.
impl Hash for Blob {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for Blob {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn shared_and_owned_blobs_are_the_same_key() {
        let buf = Arc::new(StateBuf::from_vec(b"xxkeyvalue".to_vec()));
        let key = Blob::shared(&buf, &buf[2..5]);
        let value = Blob::shared(&buf, &buf[5..]);
        assert!(key.is_shared());
        let mut map = HashMap::new();
        map.insert(key, value);
        assert_eq!(map.get(&b"key"[..]).map(Blob::as_bytes), Some(&b"value"[..]));
        assert_eq!(Blob::from("key"), Blob::shared(&buf, &buf[2..5]));
        drop(buf);
        assert_eq!(map[&b"key"[..]].as_bytes(), b"value", "the blobs keep the buffer");
    }

    #[test]
    #[should_panic(expected = "inside its buffer")]
    fn a_slice_of_another_buffer_is_refused() {
        let buf = Arc::new(StateBuf::from_vec(b"abc".to_vec()));
        let other = b"elsewhere".to_vec();
        let _ = Blob::shared(&buf, &other);
    }
}
