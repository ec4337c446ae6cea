//! The snapshot file format: a magic line, a header line, the payload.
//!
//! ```text
//! MOLTSNAP 1 <sha256 of the header line, 64 hex>\n
//! {"app":"counter","version":"1.2","schema":2,"payload_len":5,"payload_sha256":"<hex>",
//!  "written_at_ms":1700000000000}  (on one line)\n
//! <payload_len bytes of exported state>
//! ```
//! - Line 1: the magic `MOLTSNAP`, the format version ([`FORMAT_VERSION`]) and the SHA-256 of
//!   line 2's bytes (without its newline), so a flipped bit in the header is caught too.
//! - Line 2: a one-line JSON object (unknown fields refused): the app, the version of the
//!   release that wrote it, the state schema of the payload, the payload's length and
//!   SHA-256, and when the state was exported (unix milliseconds).
//!   A snapshot that took part in a handoff also carries `"handoff":{...}` ([`Ledger`]): the
//!   ids of the handoffs this state absorbed, and, once the state was handed to a peer, the
//!   handoff that took it (docs/DESIGN.md, "Handoff"). Without one the line is as before.
//! - Then exactly `payload_len` bytes, and nothing after them.

use super::{tables_part, Corruption, Ledger, Snapshot};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The magic a snapshot file starts with.
pub const MAGIC: &[u8; 8] = b"MOLTSNAP";
/// The format version this build writes without tables (and reads).
pub const FORMAT_VERSION: u32 = 1;
/// The format version this build writes with tables (and reads): see `tables_part`.
pub const FORMAT_VERSION_TABLES: u32 = 2;
const MAX_MAGIC_LINE: u64 = 128;
const MAX_HEADER_LINE: u64 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    app: String,
    version: String,
    schema: u32,
    payload_len: u64,
    payload_sha256: String,
    written_at_ms: u64,
    /// Format 2: the table schema of the serving version when the tables were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tables_schema: Option<u32>,
    #[serde(default, skip_serializing_if = "Ledger::is_empty")]
    handoff: Ledger,
}

/// Why reading a snapshot failed: the file could not be read, or it is corrupt.
pub(crate) enum ReadFailure {
    Io(io::Error),
    Corrupt(Corruption),
}

impl From<io::Error> for ReadFailure {
    fn from(e: io::Error) -> Self {
        ReadFailure::Io(e)
    }
}

impl From<Corruption> for ReadFailure {
    fn from(c: Corruption) -> Self {
        ReadFailure::Corrupt(c)
    }
}

/// Unix milliseconds of `t` (0 before the epoch).
pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes `snap` in the snapshot format; the payload is hashed in place and written once.
pub(super) fn encode(w: &mut dyn Write, snap: &Snapshot) -> io::Result<()> {
    let header = Header {
        app: snap.app.clone(),
        version: snap.version.clone(),
        schema: snap.schema,
        payload_len: snap.bytes.len() as u64,
        payload_sha256: hex::encode(Sha256::digest(&snap.bytes)),
        written_at_ms: unix_ms(snap.written_at),
        tables_schema: snap.tables.as_ref().map(|t| t.schema()),
        handoff: snap.ledger.clone(),
    };
    let line = serde_json::to_string(&header).map_err(io::Error::other)?;
    // A header the reader refuses would be refused on every start: refuse it here instead,
    // before a byte is written, so the previous snapshot stays the newest.
    if line.len() as u64 > MAX_HEADER_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the header line would be {} bytes, longer than the {MAX_HEADER_LINE} bytes a reader \
                 accepts; nothing was written",
                line.len()
            ),
        ));
    }
    let header_sha = hex::encode(Sha256::digest(line.as_bytes()));
    let format = match snap.tables {
        Some(_) => FORMAT_VERSION_TABLES,
        None => FORMAT_VERSION,
    };
    write!(w, "MOLTSNAP {format} {header_sha}\n{line}\n")?;
    w.write_all(&snap.bytes)?;
    if let Some(tables) = &snap.tables {
        tables_part::write(w, tables)?;
    }
    Ok(())
}

/// Reads and checks a snapshot file.
pub(super) fn decode(path: &Path) -> Result<Snapshot, ReadFailure> {
    // Untrusted: a regular file (no FIFO, device or directory under a snapshot's name).
    let opened =
        crate::untrusted::open(path, None, u64::MAX).map_err(crate::untrusted::UntrustedError::into_io)?;
    let (file, file_len) = (opened.file, opened.len);
    // Format 2's trailer sits at the end of the file: read through a second handle.
    let tail = |len: u64| -> io::Result<Vec<u8>> {
        let mut file = crate::untrusted::open(path, None, u64::MAX)
            .map_err(crate::untrusted::UntrustedError::into_io)?
            .file;
        file.seek(SeekFrom::Start(file_len - len))?;
        let mut tail = vec![0; len as usize];
        file.read_exact(&mut tail)?;
        Ok(tail)
    };
    decode_from(BufReader::with_capacity(1 << 16, file), file_len, tail)
}

/// Checks snapshot bytes held in memory (the same checks as a file gets).
pub(super) fn decode_bytes(bytes: &[u8]) -> Result<Snapshot, Corruption> {
    let tail = |len: u64| Ok(bytes[bytes.len() - len as usize..].to_vec());
    decode_from(bytes, bytes.len() as u64, tail).map_err(|failure| match failure {
        ReadFailure::Corrupt(c) => c,
        // Reading a slice cannot fail; were it to, the bytes could not be judged whole.
        ReadFailure::Io(e) => Corruption::Truncated(format!("unreadable: {e}")),
    })
}

/// Reads a snapshot of `file_len` bytes from `r` and checks it; `tail(n)` reads the last `n`
/// bytes (only called with `n` at most `file_len`).
fn decode_from(
    mut r: impl BufRead,
    file_len: u64,
    tail: impl FnOnce(u64) -> io::Result<Vec<u8>>,
) -> Result<Snapshot, ReadFailure> {
    let magic = read_line(&mut r, MAX_MAGIC_LINE)?;
    if !magic.starts_with(MAGIC) {
        return Err(if MAGIC.starts_with(&magic) {
            Corruption::Truncated(format!(
                "the file ends after {} bytes, inside the magic",
                magic.len()
            ))
        } else {
            Corruption::BadMagic
        }
        .into());
    }
    let Some(magic) = magic.strip_suffix(b"\n") else {
        return Err(Corruption::Truncated("the magic line has no end".into()).into());
    };
    let consumed = magic.len() as u64 + 1;
    let magic = String::from_utf8_lossy(&magic[MAGIC.len()..]).into_owned();
    let fields: Vec<&str> = magic.split(' ').collect();
    let ["", format, header_sha] = fields[..] else {
        return Err(Corruption::BadHeader(format!(
            "magic line `MOLTSNAP{magic}` is not `MOLTSNAP <format> <sha256>`"
        ))
        .into());
    };
    let with_tables = match format.parse::<u32>() {
        Ok(FORMAT_VERSION) => false,
        Ok(FORMAT_VERSION_TABLES) => true,
        _ => return Err(Corruption::UnsupportedFormat(format.to_string()).into()),
    };

    let line = read_line(&mut r, MAX_HEADER_LINE)?;
    let Some(line) = line.strip_suffix(b"\n") else {
        return Err(if line.len() as u64 > MAX_HEADER_LINE {
            Corruption::BadHeader(format!("the header line is longer than {MAX_HEADER_LINE} bytes"))
        } else {
            Corruption::Truncated("the header line has no end".into())
        }
        .into());
    };
    let consumed = consumed + line.len() as u64 + 1;
    let actual = hex::encode(Sha256::digest(line));
    if !actual.eq_ignore_ascii_case(header_sha) {
        return Err(Corruption::HeaderChecksum {
            expected: header_sha.to_string(),
            actual,
        }
        .into());
    }
    let header: Header =
        serde_json::from_slice(line).map_err(|e| Corruption::BadHeader(format!("header JSON: {e}")))?;
    crate::manifest::check_sha256(&header.payload_sha256)
        .map_err(|r| Corruption::BadHeader(format!("payload_sha256: {r}")))?;

    if with_tables != header.tables_schema.is_some() {
        return Err(Corruption::BadHeader(format!(
            "format {format} with{} tables_schema",
            if with_tables { "out" } else { "" }
        ))
        .into());
    }
    let tables_part = match with_tables {
        true => Some(read_trailer(tail, file_len, consumed)?),
        false => None,
    };
    let after_payload = tables_part
        .as_ref()
        .map_or(0, |(len, _)| len + tables_part::TRAILER_LEN);
    let found = file_len.saturating_sub(consumed).saturating_sub(after_payload);
    if found != header.payload_len {
        return Err(Corruption::Length {
            expected: header.payload_len,
            found,
        }
        .into());
    }
    let mut bytes = Vec::with_capacity(header.payload_len as usize);
    r.by_ref().take(header.payload_len).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != header.payload_len {
        let found = bytes.len() as u64;
        return Err(Corruption::Length {
            expected: header.payload_len,
            found,
        }
        .into());
    }
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(&header.payload_sha256) {
        return Err(Corruption::PayloadChecksum {
            expected: header.payload_sha256,
            actual,
        }
        .into());
    }
    let tables = match (tables_part, header.tables_schema) {
        (Some((len, digest)), Some(schema)) => {
            Some(Arc::new(tables_part::read(&mut r, len, &digest, schema)?))
        }
        _ => None,
    };
    Ok(Snapshot {
        app: header.app,
        version: header.version,
        schema: header.schema,
        bytes: bytes.into(),
        written_at: UNIX_EPOCH + Duration::from_millis(header.written_at_ms),
        ledger: header.handoff,
        tables,
    })
}

/// Reads format 2's trailer (the last [`tables_part::TRAILER_LEN`] bytes): the tables
/// section's length and digest, checked to fit after the header.
fn read_trailer(
    tail: impl FnOnce(u64) -> io::Result<Vec<u8>>,
    file_len: u64,
    consumed: u64,
) -> Result<(u64, String), ReadFailure> {
    if file_len < consumed + tables_part::TRAILER_LEN {
        return Err(Corruption::Truncated("the file ends before its tables trailer".into()).into());
    }
    let trailer = tail(tables_part::TRAILER_LEN)?;
    let (len, digest) = tables_part::parse_trailer(&trailer)?;
    if consumed
        .saturating_add(len)
        .saturating_add(tables_part::TRAILER_LEN)
        > file_len
    {
        return Err(Corruption::Tables(format!(
            "the trailer says {len} bytes of tables, the file is {file_len} bytes"
        ))
        .into());
    }
    Ok((len, digest))
}

/// Reads up to and including the next `\n`, at most `limit + 1` bytes.
fn read_line(r: &mut impl BufRead, limit: u64) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.by_ref().take(limit + 1).read_until(b'\n', &mut line)?;
    Ok(line)
}
