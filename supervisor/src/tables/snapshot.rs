//! The tables section of a snapshot file (see `crate::snapshot`, format 2): every record of
//! every table, with the schema it is in, written shard by shard while traffic flows.
//!
//! ```text
//! b'T' u32 name_len, name               a table; the records after it are its own
//! b'R' u32 key_len, key, u32 schema, u32 value_len, value
//! b'E'                                  the end
//! ```
//! All integers little-endian. A shard is read-locked only while one batch of records
//! ([`super::table::BATCH_RECORDS`], at most about 1 MiB) is taken out of it, values by
//! reference (no copy under the lock); the batch is written with no lock held, so no request
//! waits for the disk. The section is not a point-in-time image across shards: each record is
//! as it was when its batch was taken (docs/DESIGN.md, Tables, says precisely what that keeps).

use super::shard::Record;
use super::TableStore;
use std::io::{self, Read, Write};

/// What a tables section held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Tables.
    pub tables: u64,
    /// Records.
    pub records: u64,
    /// Key and value bytes.
    pub bytes: u64,
}

/// Writes every table of `store` to `w`.
pub fn write(store: &TableStore, w: &mut dyn Write) -> io::Result<Summary> {
    let mut summary = Summary::default();
    for table in store.tables() {
        summary.tables += 1;
        w.write_all(b"T")?;
        write_bytes(w, table.name().as_bytes())?;
        let mut failed = Ok(());
        table.batches(|batch| {
            for (key, record) in &batch {
                let written = w
                    .write_all(b"R")
                    .and_then(|()| write_bytes(w, key))
                    .and_then(|()| w.write_all(&record.schema.to_le_bytes()))
                    .and_then(|()| write_bytes(w, &record.value));
                if let Err(e) = written {
                    failed = Err(e);
                    return true;
                }
                summary.records += 1;
                summary.bytes += (key.len() + record.value.len()) as u64;
            }
            // Gives the CPU to a request thread that waits for one, if any (else this returns
            // at once): on a machine whose cores the requests keep busy, a request otherwise
            // waits for up to this thread's whole time slice; so it waits for one batch at
            // most (molt-bench's `snapshot_stall_ms.tables` is the figure to watch).
            std::thread::yield_now();
            false
        });
        failed?;
    }
    w.write_all(b"E")?;
    Ok(summary)
}

fn write_bytes(w: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("a key or value over 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(bytes)
}

/// Why a tables section could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The section is malformed.
    #[error("tables section: {0}")]
    Malformed(String),
}

/// Reads a tables section into a new store whose serving schema is `schema`.
pub fn read(r: &mut dyn Read, schema: u32) -> Result<(TableStore, Summary), ReadError> {
    let store = TableStore::new();
    store.set_schema(schema);
    let mut summary = Summary::default();
    let mut table = None;
    loop {
        let mut tag = [0u8; 1];
        read_exact(r, &mut tag, "a tag")?;
        match tag[0] {
            b'T' => {
                let name = read_bytes(r, "a table name")?;
                let name = String::from_utf8(name)
                    .map_err(|_| ReadError::Malformed("a table name is not UTF-8".into()))?;
                if store.table(&name).is_some() {
                    return Err(ReadError::Malformed(format!("table {name} appears twice")));
                }
                table = Some(store.open(&name));
                summary.tables += 1;
            }
            b'R' => {
                let Some(table) = &table else {
                    return Err(ReadError::Malformed("a record before any table".into()));
                };
                let key = read_bytes(r, "a key")?;
                let mut schema = [0u8; 4];
                read_exact(r, &mut schema, "a record schema")?;
                let value = read_bytes(r, "a value")?;
                summary.records += 1;
                summary.bytes += (key.len() + value.len()) as u64;
                let record = Record {
                    schema: u32::from_le_bytes(schema),
                    value: value.into(),
                };
                table.restore(&key, record);
            }
            b'E' => return Ok((store, summary)),
            other => return Err(ReadError::Malformed(format!("unknown tag {other:#04x}"))),
        }
    }
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<(), ReadError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ReadError::Malformed(format!("truncated inside {what}")),
        _ => ReadError::Io(e),
    })
}

fn read_bytes(r: &mut dyn Read, what: &str) -> Result<Vec<u8>, ReadError> {
    let mut len = [0u8; 4];
    read_exact(r, &mut len, what)?;
    let len = u32::from_le_bytes(len) as usize;
    let mut bytes = Vec::new();
    r.take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() != len {
        return Err(ReadError::Malformed(format!("truncated inside {what}")));
    }
    Ok(bytes)
}
