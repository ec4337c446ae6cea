//! The snapshot store: one instance's state directory.

use super::format::{self, unix_ms};
use super::{read_snapshot, Snapshot, SnapshotError};
use crate::volume::{atomic_write_with, fsync_dir};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A snapshot file's order: (unix ms, sequence number).
type SnapshotKey = (u64, u64);

/// How many snapshots a store keeps by default.
pub const DEFAULT_KEEP: usize = 3;

/// The snapshots of one supervisor instance, in its state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStore {
    dir: PathBuf,
    keep: usize,
}

impl SnapshotStore {
    /// A store in `state_dir` (created on the first write), keeping [`DEFAULT_KEEP`] snapshots.
    pub fn new(state_dir: impl Into<PathBuf>) -> SnapshotStore {
        SnapshotStore {
            dir: state_dir.into(),
            keep: DEFAULT_KEEP,
        }
    }

    /// The same store keeping the newest `keep` snapshots (at least 1).
    pub fn with_keep(self, keep: usize) -> SnapshotStore {
        SnapshotStore {
            keep: keep.max(1),
            ..self
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many snapshots are kept.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Removes unfinished snapshot files (`.snapshot-….tmp-*`) whose writer is gone
    /// ([`crate::volume::remove_if_abandoned`]); returns what was removed.
    pub fn clean_temp(&self) -> Vec<PathBuf> {
        let names = crate::volume::list_dir_entries(&self.dir).unwrap_or_default();
        names
            .into_iter()
            .filter(|(name, _)| name.starts_with(".snapshot-") && name.contains(".tmp-"))
            .filter(|(_, path)| matches!(crate::volume::remove_if_abandoned(path), Ok(true)))
            .map(|(_, path)| path)
            .collect()
    }

    /// The snapshot files, newest first (corrupt ones set aside and temp files are not listed).
    pub fn list(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        Ok(self.entries()?.into_iter().map(|(_, path)| path).collect())
    }

    /// Writes `snap` atomically as the newest snapshot, prunes all but the newest
    /// [`keep`](SnapshotStore::keep), and returns the new file's path.
    pub fn write(&self, snap: &Snapshot) -> Result<PathBuf, SnapshotError> {
        let io_err = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| SnapshotError::Io { action, path, source }
        };
        if !self.dir.is_dir() {
            std::fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
            if let Some(parent) = self.dir.parent() {
                fsync_dir(parent).map_err(io_err("fsync", parent))?;
            }
        }
        let now = unix_ms(SystemTime::now());
        let (ms, seq) = match self.entries()?.first() {
            Some(&((ms, seq), _)) if ms >= now => (ms, seq + 1),
            _ => (now, 0),
        };
        let path = self.dir.join(format!("snapshot-{ms:013}-{seq:04}.molt"));
        atomic_write_with(&path, 0o600, |w| format::encode(w, snap)).map_err(io_err("write", &path))?;
        tracing::info!(
            path = %path.display(),
            app = %snap.app,
            version = %snap.version,
            schema = snap.schema,
            bytes = snap.bytes.len(),
            "state snapshot written"
        );
        self.prune();
        Ok(path)
    }

    /// Reads the newest snapshot; `None` when there is none. A corrupt one is returned as
    /// [`SnapshotError::Corrupt`] and left where it is, so every later call (every later
    /// start) refuses it again: an older snapshot is never served silently in its place. To go
    /// on without it, [`SnapshotStore::set_aside`] it (the operator's
    /// `--discard-corrupt-state`); the next call then reads the next-older snapshot.
    pub fn latest(&self) -> Result<Option<Snapshot>, SnapshotError> {
        let Some((_, path)) = self.entries()?.into_iter().next() else {
            return Ok(None);
        };
        match read_snapshot(&path) {
            Ok(snap) => {
                tracing::info!(path = %path.display(), app = %snap.app, version = %snap.version,
                    schema = snap.schema, bytes = snap.bytes.len(), "state snapshot read");
                Ok(Some(snap))
            }
            Err(err @ SnapshotError::Corrupt { .. }) => {
                tracing::error!(error = %err, "corrupt state snapshot refused");
                Err(err)
            }
            Err(e) => Err(e),
        }
    }

    /// Renames the corrupt snapshot `path` aside to `<name>.corrupt-<unix_ms>` (never deleted,
    /// never overwritten, never listed or pruned again) and returns where it went.
    pub fn set_aside(&self, path: &Path) -> Result<PathBuf, SnapshotError> {
        let aside = set_aside(path).map_err(|source| SnapshotError::Io {
            action: "set aside",
            path: path.to_owned(),
            source,
        })?;
        tracing::warn!(path = %path.display(), aside = %aside.display(), "corrupt snapshot set aside");
        Ok(aside)
    }

    /// The snapshot files with their (unix ms, seq) keys, newest first.
    fn entries(&self) -> Result<Vec<(SnapshotKey, PathBuf)>, SnapshotError> {
        let names = crate::volume::list_dir_entries(&self.dir).map_err(|source| SnapshotError::Io {
            action: "list",
            path: self.dir.clone(),
            source,
        })?;
        let mut out: Vec<(SnapshotKey, PathBuf)> = names
            .into_iter()
            .filter_map(|(name, path)| Some((parse_name(&name)?, path)))
            .collect();
        out.sort_by_key(|&(key, _)| std::cmp::Reverse(key));
        Ok(out)
    }

    /// Removes all but the newest `keep` snapshots. Failures are logged, not returned: the new
    /// snapshot is already safe.
    fn prune(&self) {
        let entries = match self.entries() {
            Ok(entries) => entries,
            Err(e) => return tracing::warn!(error = %e, "cannot list snapshots to prune"),
        };
        for (_, path) in entries.into_iter().skip(self.keep) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!(path = %path.display(), "old snapshot pruned"),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot prune an old snapshot"),
            }
        }
    }
}

/// `snapshot-<ms>-<seq>.molt` → `(ms, seq)`.
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let (ms, seq) = name
        .strip_prefix("snapshot-")?
        .strip_suffix(".molt")?
        .split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(ms) || !digits(seq) {
        return None;
    }
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Renames a corrupt snapshot to `<name>.corrupt-<unix_ms>` (with a `-<n>` suffix if that
/// exists already), never overwriting anything, and fsyncs the directory.
fn set_aside(path: &Path) -> io::Result<PathBuf> {
    let mut base = path.as_os_str().to_owned();
    base.push(format!(".corrupt-{}", unix_ms(SystemTime::now())));
    let mut aside = PathBuf::from(&base);
    let mut n = 1;
    while aside.symlink_metadata().is_ok() {
        let mut next = base.clone();
        next.push(format!("-{n}"));
        aside = PathBuf::from(next);
        n += 1;
    }
    std::fs::rename(path, &aside)?;
    if let Some(dir) = path.parent() {
        if let Err(e) = fsync_dir(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot fsync after setting a snapshot aside");
        }
    }
    Ok(aside)
}
