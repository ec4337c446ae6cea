//! State that outlives the process: snapshots of an app's exported state on the volume.
//!
//! A [`SnapshotStore`] owns one instance's state directory
//! (`<volume>/<app>/state/<instance>/`, see [`crate::volume::Volume::state_dir`]). Files:
//! ```text
//! snapshot-<unix_ms>-<seq>.molt                a snapshot (format: see below)
//! snapshot-<unix_ms>-<seq>.molt.corrupt-<ms>   a corrupt snapshot, set aside by `set_aside()`
//! .snapshot-<...>.molt.tmp-XXXXXX              a write cut off half way: never read
//! molt.lock                                    the running supervisor's lock ([`StateLock`])
//! ```
//! - [`SnapshotStore::write`] writes atomically (temp file, fsync, rename, fsync the
//!   directory), names the file after the time of writing (never earlier than the newest
//!   snapshot, so a clock stepping back cannot hide it), and prunes all but the newest
//!   [`SnapshotStore::keep`] snapshots. One writer per state directory.
//! - [`SnapshotStore::latest`] reads the newest snapshot (as an untrusted file: a regular
//!   file, see [`crate::untrusted`]) and checks it. A corrupt one (bad magic, unsupported
//!   format, truncated, bad header, checksum mismatch, trailing bytes) is returned as
//!   [`SnapshotError::Corrupt`], naming the file and the failed check, and **left in place**:
//!   every later call refuses it again, so no start serves an older snapshot silently. Only
//!   [`SnapshotStore::set_aside`] (the daemon, told `--discard-corrupt-state`) renames it to
//!   `<name>.corrupt-<unix_ms>` (never deleted, never overwritten, never counted or pruned);
//!   `latest()` then reads the next-older snapshot (which may be corrupt in turn) or none.
//!
//! The format (see [`FORMAT_VERSION`]):
//! ```text
//! MOLTSNAP 1 <sha256 of the header line, 64 hex>\n
//! {"app":"counter","version":"1.2","schema":2,"payload_len":5,"payload_sha256":"<hex>",
//!  "written_at_ms":1700000000000}  (on one line)\n
//! <payload_len bytes of exported state, nothing after>
//! ```
//! An app with tables (ABI version 2) writes format 2: the header also holds
//! `"tables_schema":N`, and the payload is followed by the tables section
//! ([`crate::tables::snapshot`]) and one trailer line with the section's length and SHA-256:
//! ```text
//! <tables section>MOLTTABLES <length, 20 digits> <sha256 of the section, 64 hex>\n
//! ```

mod format;
mod lock;
mod store;
mod tables_part;

pub use format::{FORMAT_VERSION, FORMAT_VERSION_TABLES, MAGIC};
pub use lock::{LockError, StateLock, LOCK_FILE};
pub use store::{SnapshotStore, DEFAULT_KEEP};

use crate::loader::StateBytes;
use crate::tables::TableStore;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// One snapshot of an app's state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The app.
    pub app: String,
    /// The version of the release that exported the state.
    pub version: String,
    /// The state schema the bytes are in.
    pub schema: u32,
    /// The exported state (written from wherever the export left it, without a copy).
    pub bytes: StateBytes,
    /// When the state was exported (kept to the millisecond). The supervisor takes it just
    /// before the export starts: every request answered before it is in `bytes`.
    pub written_at: SystemTime,
    /// The app's tables (ABI version 2): written shard by shard from the live store, read
    /// back into a new one.
    pub tables: Option<Arc<TableStore>>,
    /// What the state took part in: handoffs absorbed, and whether it was handed off.
    pub ledger: Ledger,
}

/// What a snapshot records about handoffs (docs/DESIGN.md, "Handoff"), in its header.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// Set when this state was handed to a peer: a restart does not serve it again, and
    /// `molt absorb` refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_off: Option<HandedOff>,
    /// The ids of the handoffs merged into this state, oldest first (the newest
    /// [`Ledger::KEEP`]): a retried merge of one of them is recognised, not applied twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absorbed: Vec<String>,
    /// Set when the state was sealed for a handoff whose outcome was not known when the
    /// snapshot was written: a start asks the receiver before it serves the state, and does
    /// not serve it while the receiver cannot say; `molt absorb` refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingHandoff>,
}

impl Ledger {
    /// How many absorbed handoff ids a ledger remembers.
    pub const KEEP: usize = 256;

    /// Whether there is nothing to record (the header then has no `handoff` field).
    pub fn is_empty(&self) -> bool {
        self.handed_off.is_none() && self.absorbed.is_empty() && self.pending.is_none()
    }
}

/// The handoff that took a snapshot's state to a peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandedOff {
    /// The handoff id.
    pub id: String,
    /// Who absorbed it (a control URL).
    pub to: String,
    /// When (unix milliseconds).
    pub at_ms: u64,
}

/// A handoff of a snapshot's state that was under way, its outcome unknown, when the snapshot
/// was written (docs/DESIGN.md, "Handoff").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingHandoff {
    /// The handoff id.
    pub id: String,
    /// The receiver asked about it (a control URL).
    pub to: String,
}

/// Equal fields, and the same table store (by identity: a store read back is another one).
impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        let same_tables = match (&self.tables, &other.tables) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        (
            &self.app,
            &self.version,
            self.schema,
            &self.bytes,
            self.written_at,
            &self.ledger,
        ) == (
            &other.app,
            &other.version,
            other.schema,
            &other.bytes,
            other.written_at,
            &other.ledger,
        ) && same_tables
    }
}

impl Eq for Snapshot {}

impl Snapshot {
    /// A snapshot of `bytes`, exported now.
    pub fn new(
        app: impl Into<String>,
        version: impl Into<String>,
        schema: u32,
        bytes: impl Into<StateBytes>,
    ) -> Snapshot {
        Snapshot {
            app: app.into(),
            version: version.into(),
            schema,
            bytes: bytes.into(),
            written_at: SystemTime::now(),
            ledger: Ledger::default(),
            tables: None,
        }
    }

    /// The same snapshot with the app's tables.
    pub fn with_tables(self, tables: Arc<TableStore>) -> Snapshot {
        Snapshot {
            tables: Some(tables),
            ..self
        }
    }
}

/// The check a corrupt snapshot failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// The file does not start with `MOLTSNAP`.
    #[error("magic check failed: the file does not start with MOLTSNAP")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error(
        "format check failed: format version {0:?} is not supported (this build reads {FORMAT_VERSION})"
    )]
    UnsupportedFormat(String),
    /// The file ends before its header does.
    #[error("truncated: {0}")]
    Truncated(String),
    /// The header line does not hash to the digest on the magic line.
    #[error("header checksum check failed: the magic line says {expected}, the header hashes to {actual}")]
    HeaderChecksum {
        /// The digest on the magic line.
        expected: String,
        /// The header's digest.
        actual: String,
    },
    /// The magic line or the header is malformed.
    #[error("header check failed: {0}")]
    BadHeader(String),
    /// The payload is shorter (truncated) or longer than the header says.
    #[error(
        "length check failed: the header says {expected} payload bytes, the file holds {found} \
         ({})", if .found < .expected { "truncated" } else { "trailing bytes" }
    )]
    Length {
        /// The header's payload length.
        expected: u64,
        /// The bytes after the header.
        found: u64,
    },
    /// The tables section is malformed, or its trailer is.
    #[error("tables check failed: {0}")]
    Tables(String),
    /// The tables section does not hash to the trailer's digest.
    #[error("tables checksum check failed: the trailer says {expected}, the section hashes to {actual}")]
    TablesChecksum {
        /// The trailer's digest.
        expected: String,
        /// The section's digest.
        actual: String,
    },
    /// The payload does not hash to the header's digest.
    #[error("payload checksum check failed: the header says {expected}, the payload hashes to {actual}")]
    PayloadChecksum {
        /// The header's digest.
        expected: String,
        /// The payload's digest.
        actual: String,
    },
}

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A filesystem operation failed (the file is not judged corrupt and stays in place).
    #[error("snapshot {path}: cannot {action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The snapshot is corrupt and was refused.
    #[error("snapshot {path} is corrupt: {corruption}; {}", aside_note(.moved_to))]
    Corrupt {
        /// The snapshot file, as it was named when read.
        path: PathBuf,
        /// The check that failed.
        corruption: Corruption,
        /// Where it was set aside, when it was ([`SnapshotStore::set_aside`]).
        moved_to: Option<PathBuf>,
    },
}

fn aside_note(moved_to: &Option<PathBuf>) -> String {
    match moved_to {
        Some(p) => format!("kept aside as {}", p.display()),
        None => "it is left in place, and refused on every start until it is set aside".to_string(),
    }
}

/// Checks a snapshot held in memory: the same checks [`read_snapshot`] runs on a file.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, Corruption> {
    format::decode_bytes(bytes)
}

/// A snapshot in the file format, in memory (what [`SnapshotStore::write`] writes).
///
/// # Panics
/// When its header line would be longer than a reader accepts (64 KiB; the store's writer
/// refuses such a snapshot with an error instead).
pub fn encode_snapshot(snap: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(snap.bytes.len() + 256);
    // Writing into a Vec cannot fail, and the header of strings and integers always
    // serializes: only an oversized header is refused.
    format::encode(&mut out, snap).expect("encoding a snapshot into memory");
    out
}

/// Reads and checks one snapshot file, without moving it whatever the outcome.
pub fn read_snapshot(path: &std::path::Path) -> Result<Snapshot, SnapshotError> {
    format::decode(path).map_err(|failure| match failure {
        format::ReadFailure::Io(source) => SnapshotError::Io {
            action: "read",
            path: path.into(),
            source,
        },
        format::ReadFailure::Corrupt(corruption) => SnapshotError::Corrupt {
            path: path.into(),
            corruption,
            moved_to: None,
        },
    })
}

#[cfg(test)]
mod tests;
