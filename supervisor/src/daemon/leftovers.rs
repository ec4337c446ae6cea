//! What a killed supervisor leaves behind, and how the next start removes it.
//!
//! Every temporary the supervisor writes is locked by its writer while in use
//! ([`crate::volume::hold`]): the private run directory (for the process's lifetime), a push's
//! `.tmp-*` release directory, a pointer's or a snapshot's `.…tmp-*` file (until renamed).
//! SIGKILL releases the locks, so at start every unlocked leftover is removed at once
//! ([`crate::volume::remove_if_abandoned`]); temporaries of writers still alive are left alone.

use super::error::DaemonError;
use crate::snapshot::SnapshotStore;
use crate::volume::{hold, list_dir_entries, remove_if_abandoned, Volume};
use std::fs::File;
use std::path::Path;
use std::time::Duration;

/// The prefix of a supervisor's private run directory inside the run parent.
const RUN_PREFIX: &str = "molt-run-";

/// Creates this process's private run directory under `parent` and locks it for as long as
/// the returned handle lives.
pub(super) fn claim_run_dir(parent: &Path) -> Result<(tempfile::TempDir, File), DaemonError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| super::error::io(what, source)
    };
    let dir = tempfile::Builder::new()
        .prefix(&format!("{RUN_PREFIX}{}-", std::process::id()))
        .tempdir_in(parent)
        .map_err(io("creating the private run directory"))?;
    let lock = File::open(dir.path()).map_err(io("opening the private run directory"))?;
    hold(&lock).map_err(io("locking the private run directory"))?;
    Ok((dir, lock))
}

/// Removes the leftovers of supervisors that died: their run directories under `run_parent`,
/// unfinished snapshot files, and the volume's unfinished pushes and pointer writes.
pub(super) fn clean(volume: &Volume, app: &str, snapshots: &SnapshotStore, run_parent: &Path) {
    let mut removed = Vec::new();
    for (name, path) in list_dir_entries(run_parent).unwrap_or_default() {
        if name.starts_with(RUN_PREFIX) && path.is_dir() && matches!(remove_if_abandoned(&path), Ok(true)) {
            removed.push(path);
        }
    }
    removed.extend(snapshots.clean_temp());
    // Unlocked leftovers go at once; an hour is the fallback where `flock` does not work.
    match volume.clean_stale_temp(app, Duration::from_secs(3600)) {
        Ok(more) => removed.extend(more),
        Err(e) => tracing::warn!(error = %e, "could not clean leftovers of interrupted pushes"),
    }
    if !removed.is_empty() {
        tracing::info!(?removed, "removed the leftovers of interrupted writes");
    }
}
