//! What the supervisor reports about itself: `/status`, and the snapshots it writes.

use super::Supervisor;
use crate::control::status::{now_rfc3339, SnapshotRecord, Status};
use crate::daemon::DaemonError;
use crate::snapshot::Snapshot;
use std::path::PathBuf;

impl Supervisor {
    /// Writes a snapshot of the running state; `None` when nothing serves.
    pub fn snapshot(&self) -> Result<Option<PathBuf>, DaemonError> {
        let Some(engine) = self.engine.get() else {
            return Ok(None);
        };
        let plugin = engine.active();
        let written = engine
            .export_state()
            .map_err(|e| e.to_string())
            .and_then(|state| {
                let bytes = state.bytes.len() as u64;
                let mut snap = Snapshot::new(
                    &self.config.app,
                    &plugin.info().version,
                    state.schema,
                    state.bytes,
                );
                // The tables are written from the live store, shard by shard, while traffic
                // flows (see crate::tables::snapshot).
                if !engine.tables().tables().is_empty() {
                    snap = snap.with_tables(std::sync::Arc::clone(engine.tables()));
                }
                self.snapshots
                    .write(&snap)
                    .map(|path| (path, bytes))
                    .map_err(|e| e.to_string())
            });
        self.metrics.record_snapshot(written.is_ok());
        match written {
            Ok((path, bytes)) => {
                tracing::debug!(path = %path.display(), bytes, "snapshot written");
                self.record.lock().last_snapshot = Some(SnapshotRecord {
                    path: path.display().to_string(),
                    bytes,
                    at: now_rfc3339(),
                });
                Ok(Some(path))
            }
            Err(e) => {
                tracing::error!(error = %e, "snapshot failed");
                Err(DaemonError::State(format!(
                    "snapshot of {} failed: {e}",
                    plugin.id()
                )))
            }
        }
    }

    /// What `/status` shows.
    pub fn status(&self) -> Status {
        let rec = self.record.lock();
        Status {
            app: self.config.app.clone(),
            version: rec.active.as_ref().map(|(v, _)| v.clone()),
            state_schema: rec.active.as_ref().map(|(_, s)| *s),
            pid: std::process::id(),
            instance: self.instance.clone(),
            started_at: humantime::format_rfc3339_seconds(self.started).to_string(),
            uptime_s: self.started_at.elapsed().as_secs(),
            ready: rec.active.is_some(),
            swaps: rec.swaps,
            last_swap: rec.last_swap.clone(),
            desired: self.volume.current(&self.config.app).ok().flatten(),
            last_refusal: rec.last_refusal.clone(),
            probation: rec.probation.clone(),
            generations: rec.history.iter().rev().cloned().collect(),
            last_snapshot: rec.last_snapshot.clone(),
            libraries_left_mapped: crate::loader::left_mapped()
                .into_iter()
                .map(|l| l.release)
                .collect(),
        }
    }
}
