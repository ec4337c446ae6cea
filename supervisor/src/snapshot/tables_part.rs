//! Format 2's tables part: the tables section after the payload, hashed as it streams, and
//! the fixed-length trailer line that closes the file.
//!
//! ```text
//! MOLTTABLES <section length, 20 digits> <sha256 of the section, 64 hex>\n
//! ```
//! The trailer is last so the section can be streamed from the live tables without knowing
//! its length or digest first; a reader finds it at a fixed distance from the end.

use super::Corruption;
use crate::tables::{snapshot as section, TableStore};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

/// The trailer's length in bytes.
pub(super) const TRAILER_LEN: u64 = 10 + 1 + 20 + 1 + 64 + 1;

/// Counts and hashes what goes through it.
struct Hashing<'a, W: ?Sized> {
    inner: &'a mut W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write + ?Sized> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read + ?Sized> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Writes the tables section of `store`, then the trailer.
pub(super) fn write(w: &mut dyn Write, store: &TableStore) -> io::Result<section::Summary> {
    let mut hashing = Hashing {
        inner: w,
        hasher: Sha256::new(),
        len: 0,
    };
    let summary = section::write(store, &mut hashing)?;
    let (len, digest) = (hashing.len, hex::encode(hashing.hasher.finalize()));
    writeln!(w, "MOLTTABLES {len:020} {digest}")?;
    Ok(summary)
}

/// Parses a trailer: the section's length and digest.
pub(super) fn parse_trailer(trailer: &[u8]) -> Result<(u64, String), Corruption> {
    let bad = || Corruption::Tables("the trailer is not `MOLTTABLES <length> <sha256>`".to_owned());
    let text = std::str::from_utf8(trailer).map_err(|_| bad())?;
    let fields: Vec<&str> = text.strip_suffix('\n').ok_or_else(bad)?.split(' ').collect();
    let ["MOLTTABLES", len, digest] = fields[..] else {
        return Err(bad());
    };
    let len = len.parse::<u64>().map_err(|_| bad())?;
    crate::manifest::check_sha256(digest).map_err(|r| Corruption::Tables(format!("trailer sha256: {r}")))?;
    Ok((len, digest.to_owned()))
}

/// Reads a tables section of `len` bytes hashing to `digest` into a new store whose schema
/// is `schema`. The section must end exactly at `len`.
pub(super) fn read(
    r: &mut dyn Read,
    len: u64,
    digest: &str,
    schema: u32,
) -> Result<TableStore, super::format::ReadFailure> {
    let mut limited = r.take(len);
    let mut hashing = Hashing {
        inner: &mut limited,
        hasher: Sha256::new(),
        len: 0,
    };
    let store = match section::read(&mut hashing, schema) {
        Ok((store, _)) => store,
        Err(section::ReadError::Io(e)) => return Err(e.into()),
        Err(section::ReadError::Malformed(m)) => return Err(Corruption::Tables(m).into()),
    };
    if hashing.len != len {
        return Err(Corruption::Tables(format!(
            "the section ends after {} bytes, the trailer says {len}",
            hashing.len
        ))
        .into());
    }
    let actual = hex::encode(hashing.hasher.finalize());
    if !actual.eq_ignore_ascii_case(digest) {
        return Err(Corruption::TablesChecksum {
            expected: digest.to_owned(),
            actual,
        }
        .into());
    }
    Ok(store)
}
