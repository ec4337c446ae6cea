//! Supervisors report on the volume: each live supervisor of an app keeps
//! `<volume>/<app>/supervisors/<instance>.json`, a [`SupervisorReport`] of itself (instance,
//! host, pid, what it runs, what it refused and why, what it ran before), rewritten atomically
//! on every change and on a heartbeat. A report whose heartbeat is older than its own
//! `stale_after_ms` is expired: that supervisor is gone (or hung), and nobody waits for it.
//! A clean shutdown marks its report stopped (a restart of the same instance reads what it
//! ran before from it).
//!
//! This is how `molt push --volume` confirms a push: it waits until every live supervisor
//! runs the new version or reports refusing it.

use super::{atomic_write, check_name, list_dir, Volume, VolumeError};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The directory of an app's supervisor reports, under the app's directory.
pub const SUPERVISORS_DIR: &str = "supervisors";
/// The largest report read.
const MAX_REPORT: u64 = 256 * 1024;

/// One supervisor, as it reports itself on the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorReport {
    /// The instance name (its state directory's name; the pod name on Kubernetes).
    pub instance: String,
    /// The host name.
    pub host: String,
    /// The supervisor's process id.
    pub pid: u32,
    /// The app.
    pub app: String,
    /// The version it serves, if any.
    pub running: Option<String>,
    /// Whether it follows the volume's `current` (false with `--no-watch`).
    pub watching: bool,
    /// The last version change it refused.
    pub refused: Option<RefusalNote>,
    /// The versions it served before the running one, oldest first: where its rollbacks go.
    pub history: Vec<String>,
    /// When it started (milliseconds since the Unix epoch).
    pub started_ms: u64,
    /// When it last wrote this report (milliseconds since the Unix epoch).
    pub heartbeat_ms: u64,
    /// After how long without a heartbeat this report is expired.
    pub stale_after_ms: u64,
    /// The supervisor shut down cleanly (the report stays, so a restart of the same
    /// instance knows what it ran before; nobody waits for it).
    #[serde(default)]
    pub stopped: bool,
}

/// A refused version change, as a report carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalNote {
    /// The version refused.
    pub version: String,
    /// The check that failed.
    pub step: String,
    /// The whole refusal, rendered.
    pub error: String,
    /// When (milliseconds since the Unix epoch).
    pub at_ms: u64,
}

impl SupervisorReport {
    /// Whether the report is fresh at `now_ms`. A report of a process on this host whose pid
    /// is gone is not live either, however fresh.
    pub fn is_live(&self, now_ms: u64) -> bool {
        let fresh = now_ms.saturating_sub(self.heartbeat_ms) <= self.stale_after_ms;
        let dead_here =
            self.host == super::host_name() && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        fresh && !dead_here && !self.stopped
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

impl Volume {
    /// `<volume>/<app>/supervisors`.
    pub fn supervisors_dir(&self, app: &str) -> PathBuf {
        self.app_dir(app).join(SUPERVISORS_DIR)
    }

    /// Writes (replaces) a supervisor's report.
    pub fn write_report(&self, report: &SupervisorReport) -> Result<(), VolumeError> {
        check_name("app", &report.app)?;
        check_name("instance", &report.instance)?;
        let dir = self.supervisors_dir(&report.app);
        std::fs::create_dir_all(&dir).map_err(|source| VolumeError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("{}.json", report.instance));
        let json = serde_json::to_vec_pretty(report).unwrap_or_default();
        atomic_write(&path, &json).map_err(|source| VolumeError::Io {
            action: "write supervisor report",
            path,
            source,
        })
    }

    /// Removes a supervisor's report.
    pub fn remove_report(&self, app: &str, instance: &str) -> Result<(), VolumeError> {
        check_name("app", app)?;
        check_name("instance", instance)?;
        let path = self.supervisors_dir(app).join(format!("{instance}.json"));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(VolumeError::Io {
                action: "remove supervisor report",
                path,
                source,
            }),
        }
    }

    /// One instance's report, live or not; `None` when there is none (or it is unreadable).
    pub fn report(&self, app: &str, instance: &str) -> Option<SupervisorReport> {
        check_name("app", app).ok()?;
        check_name("instance", instance).ok()?;
        read_report(&self.supervisors_dir(app).join(format!("{instance}.json")))
    }

    /// The reports of the app's live supervisors, by instance name. Expired and unreadable
    /// reports are left out (unreadable ones with a warning).
    pub fn live_supervisors(&self, app: &str) -> Result<Vec<SupervisorReport>, VolumeError> {
        check_name("app", app)?;
        let now = now_ms();
        let mut out: Vec<SupervisorReport> = list_dir(&self.supervisors_dir(app))?
            .into_iter()
            .filter(|(name, _)| name.ends_with(".json") && !name.starts_with('.'))
            .filter_map(|(_, path)| read_report(&path))
            .filter(|r| r.app == app && r.is_live(now))
            .collect();
        out.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(out)
    }
}

fn read_report(path: &std::path::Path) -> Option<SupervisorReport> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_REPORT).read_to_end(&mut bytes).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable supervisor report");
            None
        }
    }
}
