//! What the supervisor reports about itself: `/status`, and the snapshots it writes.

use super::Supervisor;
use crate::control::status::{now_rfc3339, SnapshotRecord, Status};
use crate::daemon::DaemonError;
use crate::metrics::Waiter;
use crate::snapshot::Snapshot;
use std::path::PathBuf;
use std::time::{Duration, Instant};

impl Supervisor {
    /// Writes a snapshot of the running state; `None` when nothing serves. Blocks: run it on
    /// a blocking thread. The export runs while traffic flows and never overlaps a swap (see
    /// `Engine::export_state`); the file is written after, with no lock held.
    pub fn snapshot(&self) -> Result<Option<PathBuf>, DaemonError> {
        let Some(engine) = self.engine.get() else {
            return Ok(None);
        };
        // Handed off: the snapshot that records it stays the newest; the state held in
        // memory is the receiver's now and is never written as this supervisor's own.
        let _one_writer = self.handoffs.writing.lock();
        let Some(ledger) = self.handoffs.ledger() else {
            return self.handoff_record();
        };
        let plugin = engine.active();
        // Taken before the export: every request answered before this instant is in the state.
        let exported_at = std::time::SystemTime::now();
        tracing::trace!(target: "molt::phase", step = "export", "snapshot");
        let written = engine
            .export_state()
            .map_err(|e| e.to_string())
            .and_then(|exported| {
                let bytes = exported.state.bytes.len() as u64;
                self.metrics
                    .record_state_lock_wait(Waiter::Snapshot, exported.waited_for_swap);
                let mut snap = Snapshot::new(
                    &self.config.app,
                    &exported.version,
                    exported.state.schema,
                    exported.state.bytes,
                );
                snap.written_at = exported_at;
                snap.ledger = ledger;
                // The tables are written from the live store, shard by shard, while traffic
                // flows (see crate::tables::snapshot).
                if !engine.tables().tables().is_empty() {
                    snap = snap.with_tables(std::sync::Arc::clone(engine.tables()));
                }
                let started = Instant::now();
                self.snapshots
                    .write(&snap)
                    .map(|path| SnapshotRecord {
                        path: path.display().to_string(),
                        bytes,
                        at: now_rfc3339(),
                        waited_for_swap_us: micros(exported.waited_for_swap),
                        export_us: micros(exported.export),
                        write_us: micros(started.elapsed()),
                    })
                    .map_err(|e| e.to_string())
            });
        self.metrics.record_snapshot(written.is_ok());
        match written {
            Ok(record) => {
                tracing::debug!(
                    path = %record.path,
                    bytes = record.bytes,
                    waited_for_swap_us = record.waited_for_swap_us,
                    export_us = record.export_us,
                    write_us = record.write_us,
                    "snapshot written"
                );
                tracing::trace!(target: "molt::phase", step = "written", "snapshot");
                let path = PathBuf::from(&record.path);
                let mut rec = self.record.lock();
                rec.last_snapshot = Some(record);
                rec.requests_at_snapshot = self.metrics.requests_total();
                if let Some(failure) = rec.snapshot_failure.take() {
                    tracing::info!(failed = failure.consecutive, since = %failure.since, "snapshot writes work again");
                }
                self.metrics.set_snapshot_failing(false);
                Ok(Some(path))
            }
            Err(e) => {
                let now = now_rfc3339();
                {
                    let mut rec = self.record.lock();
                    let (since, consecutive) = match &rec.snapshot_failure {
                        Some(f) => (f.since.clone(), f.consecutive + 1),
                        None => (now.clone(), 1),
                    };
                    rec.snapshot_failure = Some(crate::control::SnapshotFailure {
                        error: e.clone(),
                        since,
                        at: now,
                        consecutive,
                    });
                }
                self.metrics.set_snapshot_failing(true);
                tracing::error!(error = %e, "snapshot failed: the state changed since the last snapshot is only in memory; /readyz answers 503 until a snapshot succeeds");
                Err(DaemonError::State(format!(
                    "snapshot of {} failed: {e}",
                    plugin.id()
                )))
            }
        }
    }

    /// The snapshot at shutdown, after traffic drained: retried (three attempts, one and two
    /// seconds apart) so a passing fault does not lose the state; when every attempt fails,
    /// the error says what is lost: the changes since the last snapshot that was written.
    pub fn final_snapshot(&self) -> Result<Option<PathBuf>, DaemonError> {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        loop {
            match self.snapshot() {
                Ok(saved) => return Ok(saved),
                Err(e) if attempt < ATTEMPTS => {
                    tracing::error!(error = %e, attempt, "final snapshot failed; retrying");
                    std::thread::sleep(Duration::from_secs(u64::from(attempt)));
                    attempt += 1;
                }
                Err(e) => {
                    let rec = self.record.lock();
                    let since = self
                        .metrics
                        .requests_total()
                        .saturating_sub(rec.requests_at_snapshot);
                    let lost = match &rec.last_snapshot {
                        Some(last) => format!(
                            "the state changes since the last snapshot, written at {} ({}): {since} \
                             requests were answered since then",
                            last.at, last.path
                        ),
                        None => format!(
                            "all of the state: no snapshot was written since start, and {since} \
                             requests were answered"
                        ),
                    };
                    return Err(DaemonError::State(format!(
                        "final snapshot failed {ATTEMPTS} times: {e}. Lost: {lost}"
                    )));
                }
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
            ready: rec.active.is_some() && rec.snapshot_failure.is_none(),
            swaps: rec.swaps,
            last_swap: rec.last_swap.clone(),
            desired: self.volume.current(&self.config.app).ok().flatten(),
            last_refusal: rec.last_refusal.clone(),
            probation: rec.probation.clone(),
            generations: rec.history.iter().rev().cloned().collect(),
            last_snapshot: rec.last_snapshot.clone(),
            snapshot_failure: rec.snapshot_failure.clone(),
            libraries_left_mapped: crate::loader::left_mapped()
                .into_iter()
                .map(|l| l.release)
                .collect(),
        }
    }
}

/// Whole microseconds, saturating.
pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
