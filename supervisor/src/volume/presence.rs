//! Supervisors report on the volume: each live supervisor of an app keeps
//! `<volume>/<app>/supervisors/<instance>.json`, a [`SupervisorReport`] of itself (instance,
//! host, pid, what it runs, what it refused and why, what it ran before), rewritten atomically
//! on every change and on a heartbeat. A report whose heartbeat is older than its own
//! `stale_after_ms` is expired: that supervisor is gone (or hung), and nobody waits for it.
//! A clean shutdown marks its report stopped (a restart of the same instance reads what it
//! ran before from it).
//!
//! A heartbeat further ahead than [`MAX_SKEW_MS`] of this host's clock is not live either: a
//! report from a skewed clock (or forged) would otherwise count as live forever.
//!
//! This is how `molt push --volume` confirms a push: it waits until every live supervisor
//! runs the new version or reports refusing it; one that dies, stops or whose report goes
//! away or becomes unreadable meanwhile fails the push.
//!
//! Reports are read as untrusted files (`crate::untrusted`): a FIFO, a device or a symlink
//! out of the volume in `supervisors/` is refused by name, never opened.

use super::{atomic_write, check_name, list_dir, Volume, VolumeError};
use crate::untrusted;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The directory of an app's supervisor reports, under the app's directory.
pub const SUPERVISORS_DIR: &str = "supervisors";
/// The largest report read (a report's foreign text is cut to [`untrusted::MAX_NOTE`] where
/// it is recorded, so a real one is a few KiB).
pub const MAX_REPORT: u64 = 256 * 1024;
/// How far ahead of this host's clock a heartbeat may be and still count (clock skew between
/// hosts).
pub const MAX_SKEW_MS: u64 = 5_000;

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

/// One report file as read: the report, or why it is refused.
pub type ReportRead = Result<SupervisorReport, VolumeError>;

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
    /// Whether the report is live at `now_ms` (see [`SupervisorReport::not_live`]).
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.not_live(now_ms).is_none()
    }

    /// Why the report is not live at `now_ms`, `None` when it is: it says it stopped, its
    /// heartbeat is older than its `stale_after_ms` or more than [`MAX_SKEW_MS`] ahead, or it
    /// is of a process on this host whose pid is gone (however fresh).
    pub fn not_live(&self, now_ms: u64) -> Option<String> {
        if self.stopped {
            return Some(format!("pid {} stopped", self.pid));
        }
        if self.host == super::host_name() && !alive_here(self.pid) {
            return Some(format!("pid {} died", self.pid));
        }
        if self.heartbeat_ms > now_ms.saturating_add(MAX_SKEW_MS) {
            return Some(format!(
                "its heartbeat is {} ms in the future (clock skew?)",
                self.heartbeat_ms - now_ms
            ));
        }
        let age = now_ms.saturating_sub(self.heartbeat_ms);
        (age > self.stale_after_ms).then(|| format!("its last heartbeat is {age} ms old"))
    }
}

/// Whether process `pid` of this host runs: it exists and is not a zombie (a process that
/// died but was not yet reaped by its parent still has its `/proc` entry).
fn alive_here(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last `)` (comm may hold one).
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
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

    /// One instance's report, live or not; `None` when there is none (or it is unreadable,
    /// with a warning).
    pub fn report(&self, app: &str, instance: &str) -> Option<SupervisorReport> {
        check_name("app", app).ok()?;
        check_name("instance", instance).ok()?;
        let path = self.supervisors_dir(app).join(format!("{instance}.json"));
        match self.read_report(&path) {
            Ok(r) => Some(r),
            Err(VolumeError::Untrusted { source }) if source.is_missing() => None,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable supervisor report");
                None
            }
        }
    }

    /// Every report file of the app, by instance (the file's name), read or why not.
    pub fn supervisor_reports(&self, app: &str) -> Result<Vec<(String, ReportRead)>, VolumeError> {
        check_name("app", app)?;
        let mut out: Vec<_> = list_dir(&self.supervisors_dir(app))?
            .into_iter()
            .filter(|(name, _)| !name.starts_with('.'))
            .filter_map(|(name, path)| {
                let instance = name.strip_suffix(".json")?.to_owned();
                let report = self.read_report(&path).and_then(|r| {
                    if r.app == app && r.instance == instance {
                        Ok(r)
                    } else {
                        Err(VolumeError::BadReport {
                            path,
                            reason: format!(
                                "it reports instance {} of app {}",
                                untrusted::excerpt(r.instance.as_bytes(), 64),
                                untrusted::excerpt(r.app.as_bytes(), 64)
                            ),
                        })
                    }
                });
                Some((instance, report))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The reports of the app's live supervisors, by instance name. Expired and unreadable
    /// reports are left out (unreadable ones with a warning).
    pub fn live_supervisors(&self, app: &str) -> Result<Vec<SupervisorReport>, VolumeError> {
        let now = now_ms();
        Ok(self
            .supervisor_reports(app)?
            .into_iter()
            .filter_map(|(_, report)| match report {
                Ok(r) => r.is_live(now).then_some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable supervisor report");
                    None
                }
            })
            .collect())
    }

    /// Reads one report as an untrusted file of at most [`MAX_REPORT`] bytes.
    fn read_report(&self, path: &Path) -> Result<SupervisorReport, VolumeError> {
        let bytes = untrusted::read(path, Some(&self.root), MAX_REPORT)
            .map_err(|source| VolumeError::Untrusted { source })?;
        serde_json::from_slice(&bytes).map_err(|e| VolumeError::BadReport {
            path: path.to_owned(),
            reason: format!(
                "not a supervisor report: {}",
                untrusted::excerpt(e.to_string().as_bytes(), 200)
            ),
        })
    }
}
