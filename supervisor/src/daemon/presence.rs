//! This supervisor's report on the volume (see `crate::volume::SupervisorReport`): written on
//! every change and refusal and on a heartbeat, marked stopped on a clean shutdown.

use super::Supervisor;
use crate::volume::{now_ms, SupervisorReport};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the report is rewritten when nothing changes.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// After how long without a heartbeat the report is expired (several missed heartbeats: a
/// busy machine is not a dead supervisor).
pub const STALE_AFTER: Duration = Duration::from_secs(10);

impl Supervisor {
    /// Writes this supervisor's report on the volume. A failure is logged, not fatal: serving
    /// goes on, and a confirmed push will see this supervisor as gone.
    pub fn publish(&self) {
        self.write_report(false)
    }

    /// Marks this supervisor's report stopped (it is shutting down cleanly).
    pub fn withdraw(&self) {
        self.write_report(true)
    }

    fn write_report(&self, stopped: bool) {
        let _one_writer = self.publishing.lock();
        // A heartbeat still in flight at shutdown must not bring the report back to life.
        if self.withdrawn.load(Ordering::SeqCst) {
            return;
        }
        if stopped {
            self.withdrawn.store(true, Ordering::SeqCst);
        }
        let report = {
            let rec = self.record.lock();
            SupervisorReport {
                instance: self.instance.clone(),
                host: self.host.clone(),
                pid: std::process::id(),
                app: self.config.app.clone(),
                running: rec.active.as_ref().map(|(v, _)| v.clone()),
                watching: self.config.watch,
                refused: rec.refused_note.clone(),
                history: rec.history.clone(),
                started_ms: self.started_ms,
                heartbeat_ms: now_ms(),
                stale_after_ms: STALE_AFTER.as_millis() as u64,
                stopped,
            }
        };
        if let Err(e) = self.volume.write_report(&report) {
            tracing::warn!(error = %e, "cannot write this supervisor's report on the volume");
        }
    }
}
