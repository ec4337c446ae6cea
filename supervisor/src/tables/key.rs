//! [`Key`]: a record's key as a shard's ordered map keeps it. Short keys (most: ids, names,
//! `k1234`) live in the map's node itself, so a lookup compares them without following a
//! pointer per comparison; a longer key is boxed.
//!
//! The order is the bytes' lexicographic order, the same as `[u8]`'s (the map is also searched
//! by `&[u8]`, through `Borrow`). Two inline keys compare as two big-endian integers of their
//! zero-padded bytes, then by length: for keys that fit, that is the lexicographic order (a
//! shorter key that is a prefix of a longer one reads as padded with zeros, which no byte is
//! below, and the length settles a tie), without a call to `memcmp`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;

/// Keys of at most this many bytes are kept inline.
pub const INLINE: usize = 22;

/// A key: inline up to [`INLINE`] bytes, boxed beyond. Which form a key takes depends only
/// on its length, so equal keys always have the same form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// At most [`INLINE`] bytes, zero-padded.
    Inline {
        /// How many of `bytes` are the key's.
        len: u8,
        /// The key, then zeros.
        bytes: [u8; INLINE],
    },
    /// More than [`INLINE`] bytes.
    Boxed(Box<[u8]>),
}

impl Key {
    /// The key `bytes`.
    pub fn new(bytes: &[u8]) -> Key {
        Key::inline(bytes).unwrap_or_else(|| Key::Boxed(bytes.into()))
    }

    /// `bytes` as an inline key, when it fits.
    pub fn inline(bytes: &[u8]) -> Option<Key> {
        if bytes.len() > INLINE {
            return None;
        }
        let mut padded = [0u8; INLINE];
        padded[..bytes.len()].copy_from_slice(bytes);
        Some(Key::Inline {
            len: bytes.len() as u8,
            bytes: padded,
        })
    }

    /// The key's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Boxed(bytes) => bytes,
        }
    }
}

/// The padded bytes of an inline key as integers, most significant first.
fn words(bytes: &[u8; INLINE]) -> (u128, u64) {
    let mut high = [0u8; 16];
    high.copy_from_slice(&bytes[..16]);
    let mut low = [0u8; 8];
    low[..INLINE - 16].copy_from_slice(&bytes[16..]);
    (u128::from_be_bytes(high), u64::from_be_bytes(low))
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Inline { len: a, bytes: x }, Key::Inline { len: b, bytes: y }) => {
                words(x).cmp(&words(y)).then(a.cmp(b))
            }
            _ => self.as_slice().cmp(other.as_slice()),
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Key {
        Key::new(bytes)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", super::key_text(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_bytes_do_inline_or_boxed() {
        let samples: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![0, 1],
            vec![1],
            b"ab".to_vec(),
            b"ab\0".to_vec(),
            b"ab\0\x01".to_vec(),
            b"ab\x01".to_vec(),
            b"k1".to_vec(),
            b"k10".to_vec(),
            b"k2".to_vec(),
            vec![0xff; INLINE],
            vec![0xff; INLINE + 1],
            [vec![7u8; INLINE], vec![0]].concat(),
            [vec![7u8; INLINE - 1], vec![0]].concat(),
            [vec![7u8; 16], vec![1]].concat(),
            [vec![7u8; 16], vec![0, 0, 0, 0, 0, 9]].concat(),
            vec![7u8; 40],
        ];
        for a in &samples {
            for b in &samples {
                let (ka, kb) = (Key::new(a), Key::new(b));
                assert_eq!(ka.cmp(&kb), a.as_slice().cmp(b.as_slice()), "{a:?} vs {b:?}");
                assert_eq!(ka == kb, a == b);
            }
            let key = Key::new(a);
            assert_eq!(key.as_slice(), a.as_slice());
            assert_eq!(matches!(key, Key::Inline { .. }), a.len() <= INLINE);
        }
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }
}
