//! Known-good and bad releases (OTP's permanent release): a release that served past its
//! probation on a supervisor is recorded as good; one a supervisor refused, or whose load
//! killed the process, as bad, with the reason. A bad release never becomes `previous`, is
//! never a rollback or boot target, and re-activating it needs `--force` (which clears the
//! mark).
//!
//! `<volume>/<app>/verdicts/<version>` holds one JSON [`Verdict`], replaced atomically. A bad
//! verdict is not overwritten by a later good one from another supervisor: bad is sticky
//! until an operator forces the release.

use super::{atomic_write, check_name, list_dir, Volume, VolumeError};
use crate::untrusted;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The directory of an app's verdicts, under the app's directory.
pub const VERDICTS_DIR: &str = "verdicts";
/// The largest verdict file read (a reason is a few hundred bytes).
const MAX_VERDICT: u64 = 64 * 1024;

/// Good or bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Judgement {
    /// Served past its probation on a supervisor.
    Good,
    /// Refused by a supervisor or the push checks, or crashed the process on load.
    Bad,
}

/// What is known about one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Good or bad.
    pub judgement: Judgement,
    /// Why it is bad (the refusal, rendered), or how it proved good.
    pub reason: String,
    /// Who judged it: a supervisor instance, or `push`.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
}

impl Verdict {
    /// Whether the release is marked bad.
    pub fn is_bad(&self) -> bool {
        self.judgement == Judgement::Bad
    }
}

impl Volume {
    /// `<volume>/<app>/verdicts`.
    pub fn verdicts_dir(&self, app: &str) -> PathBuf {
        self.app_dir(app).join(VERDICTS_DIR)
    }

    /// The verdict on `version`, if any. An unreadable or malformed verdict file is reported
    /// as an error, not taken for "no verdict".
    pub fn verdict(&self, app: &str, version: &str) -> Result<Option<Verdict>, VolumeError> {
        check_name("app", app)?;
        check_name("version", version)?;
        read_verdict(&self.verdicts_dir(app).join(version), &self.root)
    }

    /// Every verdict of `app`, by version. Malformed files are skipped with a warning.
    pub fn verdicts(&self, app: &str) -> Result<BTreeMap<String, Verdict>, VolumeError> {
        check_name("app", app)?;
        let mut out = BTreeMap::new();
        for (name, path) in list_dir(&self.verdicts_dir(app))? {
            if name.starts_with('.') {
                continue;
            }
            match read_verdict(&path, &self.root) {
                Ok(Some(v)) => {
                    out.insert(name, v);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable verdict"),
            }
        }
        Ok(out)
    }

    /// Records `version` as good, unless it is marked bad (bad is sticky, see the module docs).
    pub fn mark_good(&self, app: &str, version: &str, by: &str, reason: &str) -> Result<(), VolumeError> {
        if matches!(self.verdict(app, version), Ok(Some(v)) if v.is_bad()) {
            return Ok(());
        }
        self.write_verdict(app, version, Judgement::Good, by, reason)
    }

    /// Records `version` as bad, with why (not rewritten when it already says so).
    pub fn mark_bad(&self, app: &str, version: &str, by: &str, reason: &str) -> Result<(), VolumeError> {
        if matches!(self.verdict(app, version), Ok(Some(v)) if v.is_bad() && v.reason == untrusted::note(reason))
        {
            return Ok(());
        }
        self.write_verdict(app, version, Judgement::Bad, by, reason)
    }

    /// Forgets the verdict on `version` (an operator forcing a bad release).
    pub fn clear_verdict(&self, app: &str, version: &str) -> Result<(), VolumeError> {
        check_name("app", app)?;
        check_name("version", version)?;
        let path = self.verdicts_dir(app).join(version);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(VolumeError::Io {
                action: "remove verdict",
                path,
                source,
            }),
        }
    }

    /// Whether `version` is marked bad (an unreadable verdict counts as not bad, loudly).
    pub fn is_bad(&self, app: &str, version: &str) -> bool {
        match self.verdict(app, version) {
            Ok(v) => v.is_some_and(|v| v.is_bad()),
            Err(e) => {
                tracing::warn!(app, version, error = %e, "cannot read a verdict");
                false
            }
        }
    }

    fn write_verdict(
        &self,
        app: &str,
        version: &str,
        judgement: Judgement,
        by: &str,
        reason: &str,
    ) -> Result<(), VolumeError> {
        check_name("app", app)?;
        check_name("version", version)?;
        let dir = self.verdicts_dir(app);
        std::fs::create_dir_all(&dir).map_err(|source| VolumeError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let verdict = Verdict {
            judgement,
            // A refusal quotes foreign text: kept short, so the file stays far below MAX_VERDICT.
            reason: untrusted::note(reason),
            by: by.to_owned(),
            at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        };
        let json = serde_json::to_vec_pretty(&verdict).unwrap_or_default();
        let path = dir.join(version);
        atomic_write(&path, &json).map_err(|source| VolumeError::Io {
            action: "write verdict",
            path,
            source,
        })?;
        match judgement {
            Judgement::Good => tracing::info!(app, version, by, "release recorded as good"),
            Judgement::Bad => tracing::warn!(app, version, by, reason, "release recorded as bad"),
        }
        Ok(())
    }
}

/// Reads one verdict file, as an untrusted file inside `root` (a FIFO or a device in its place
/// is refused by name, never opened); `None` when it does not exist.
fn read_verdict(path: &Path, root: &Path) -> Result<Option<Verdict>, VolumeError> {
    let bytes = match untrusted::read(path, Some(root), MAX_VERDICT) {
        Ok(bytes) => bytes,
        Err(e) if e.is_missing() => return Ok(None),
        Err(source) => return Err(VolumeError::Untrusted { source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| VolumeError::Io {
            action: "read verdict",
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                untrusted::excerpt(e.to_string().as_bytes(), 200),
            ),
        })
}
