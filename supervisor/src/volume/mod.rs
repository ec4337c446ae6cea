//! The release volume: releases, the `current` / `previous` pointers, atomic pushes, and
//! the lifecycle records: verdicts, supervisor reports, the writer lock, retention.
//!
//! ```text
//! <volume>/<app>/releases/<version>/release.toml   the manifest (see crate::manifest)
//! <volume>/<app>/releases/<version>/<library>      the library, under its original file name
//! <volume>/<app>/releases/.tmp-XXXXXX/             a push in progress (or cut off): never listed
//! <volume>/<app>/current                           the version that should run ("1.2.0\n")
//! <volume>/<app>/previous                          where a rollback goes next (never a bad release)
//! <volume>/<app>/verdicts/<version>                good or bad, why, by whom (JSON)
//! <volume>/<app>/supervisors/<instance>.json       each supervisor's report of itself (JSON)
//! <volume>/<app>/.lock                             the writer lock of `current` and `previous`
//! <volume>/<app>/state/<instance>/                 state snapshots of one supervisor instance
//! ```
//! - **Releases are immutable.** [`Volume::push`] builds a release in a `.tmp-*` directory on
//!   the same volume, fsyncs it and renames it into place; pushing different bytes under an
//!   existing version is refused. A push cut off half way leaves only a `.tmp-*` directory,
//!   which no listing shows and nothing loads ([`Volume::clean_stale_temp`] removes it once
//!   its writer's lock is gone).
//! - **Pointers move only to verified releases.** [`Volume::activate`] hashes the release's
//!   library before it writes `previous` and then `current`, each by [`atomic_write`]. A
//!   pointer that is not a regular file, is too long, or holds anything but one valid version
//!   is a [`VolumeError::BadPointer`], never taken for "no version".
//! - **One writer at a time.** Everything that moves the pointers holds [`Volume::lock_app`].
//! - **Known good and bad** releases ([`Verdict`]), **supervisor reports**
//!   ([`SupervisorReport`]) and **retention** ([`Volume::prune`]) live in their own files.
//! - App names, versions and instance names must pass [`check_component`]; every operation
//!   that touches the disk checks them, so no name can escape the volume.

mod error;
mod fsutil;
mod lock;
mod order;
mod pointer;
mod presence;
mod prune;
mod push;
mod verdict;

pub use error::VolumeError;
pub use fsutil::{
    atomic_write, atomic_write_with, fsync_dir, hold, list_dir as list_dir_entries, read_small,
    remove_if_abandoned, ABANDONED_AFTER,
};
pub use lock::{AppLock, LOCK_FILE};
pub use order::compare_versions;
pub use pointer::{Activation, PointerStamp};
pub use presence::{now_ms, RefusalNote, ReportRead, SupervisorReport, SUPERVISORS_DIR};
pub use prune::Pruned;
pub use push::{PushOutcome, PushedRelease, ReleaseInfo};
pub use verdict::{Judgement, Verdict, VERDICTS_DIR};

use crate::manifest::{check_component, Manifest, ManifestError};
use crate::signing::TrustedKeys;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The directory of an app's releases, under the app's directory.
pub const RELEASES_DIR: &str = "releases";
/// The directory of an app's state snapshots, under the app's directory.
pub const STATE_DIR: &str = "state";
/// The file naming the version that should run, under the app's directory.
pub const CURRENT_FILE: &str = "current";
/// The file naming the version active before `current`, under the app's directory.
pub const PREVIOUS_FILE: &str = "previous";
/// The name prefix of a push's temporary directory inside `releases/`.
pub const TEMP_PREFIX: &str = ".tmp-";
/// The name prefix of an upload's temporary directory inside `releases/` (a [`TEMP_PREFIX`]
/// one: cleaned like a push's when left behind).
pub const UPLOAD_PREFIX: &str = ".tmp-upload-";

/// A release volume rooted at a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    root: PathBuf,
    /// The keys a release must be signed by to verify (none: signatures not required).
    trust: TrustedKeys,
}

/// One release found by [`Volume::releases`].
#[derive(Debug)]
pub struct ReleaseEntry {
    /// The version (the directory's name).
    pub version: String,
    /// The release directory.
    pub dir: PathBuf,
    /// The manifest, read and checked for shape and identity (not hashed: see
    /// [`Volume::verify_release`]), or why it was refused.
    pub manifest: Result<Manifest, ManifestError>,
}

/// A release whose manifest and library passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRelease {
    /// The manifest.
    pub manifest: Manifest,
    /// The release directory.
    pub dir: PathBuf,
    /// The verified library file.
    pub library: PathBuf,
}

impl Volume {
    /// A volume rooted at `root` (nothing is touched until an operation runs).
    pub fn new(root: impl Into<PathBuf>) -> Volume {
        Volume {
            root: root.into(),
            trust: TrustedKeys::default(),
        }
    }

    /// The same volume, on which a release verifies only when signed by one of `trust`'s keys
    /// ([`Volume::verify_release`] checks the signature before it touches the library).
    pub fn with_trust(self, trust: TrustedKeys) -> Volume {
        Volume { trust, ..self }
    }

    /// The keys releases must be signed by (empty: none required).
    pub fn trust(&self) -> &TrustedKeys {
        &self.trust
    }

    /// The volume's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<volume>/<app>` (not checked: operations check names before touching the disk).
    pub fn app_dir(&self, app: &str) -> PathBuf {
        self.root.join(app)
    }

    /// `<volume>/<app>/releases`.
    pub fn releases_dir(&self, app: &str) -> PathBuf {
        self.app_dir(app).join(RELEASES_DIR)
    }

    /// `<volume>/<app>/releases/<version>`.
    pub fn release_dir(&self, app: &str, version: &str) -> PathBuf {
        self.releases_dir(app).join(version)
    }

    /// `<volume>/<app>/current`.
    pub fn current_path(&self, app: &str) -> PathBuf {
        self.app_dir(app).join(CURRENT_FILE)
    }

    /// `<volume>/<app>/previous`.
    pub fn previous_path(&self, app: &str) -> PathBuf {
        self.app_dir(app).join(PREVIOUS_FILE)
    }

    /// `<volume>/<app>/state/<instance>`, the snapshot directory of one supervisor instance.
    pub fn state_dir(&self, app: &str, instance: &str) -> Result<PathBuf, VolumeError> {
        check_name("app", app)?;
        check_name("instance", instance)?;
        Ok(self.app_dir(app).join(STATE_DIR).join(instance))
    }

    /// The apps on the volume (directories with a valid name), sorted.
    pub fn apps(&self) -> Result<Vec<String>, VolumeError> {
        let mut apps: Vec<String> = list_dir(&self.root)?
            .into_iter()
            .filter(|(name, path)| check_component(name).is_ok() && path.is_dir())
            .map(|(name, _)| name)
            .collect();
        apps.sort();
        Ok(apps)
    }

    /// The releases of `app`, oldest first ([`compare_versions`]). `.tmp-*` directories of
    /// unfinished pushes and anything else whose name is not a valid version are skipped. A
    /// release with a bad manifest is listed with the error. No app directory: an empty list.
    pub fn releases(&self, app: &str) -> Result<Vec<ReleaseEntry>, VolumeError> {
        check_name("app", app)?;
        let mut out: Vec<ReleaseEntry> = list_dir(&self.releases_dir(app))?
            .into_iter()
            .filter(|(name, path)| check_component(name).is_ok() && path.is_dir())
            .map(|(version, dir)| {
                let inside =
                    crate::untrusted::resolve_within(&dir, &self.root).map_err(|e| ManifestError::Read {
                        dir: dir.clone(),
                        source: e.into_io(),
                    });
                let manifest = inside.and_then(|_| Manifest::read(&dir)).and_then(|m| {
                    m.validate(&dir)?;
                    m.check_identity(&dir, app, &version)?;
                    Ok(m)
                });
                ReleaseEntry {
                    version,
                    dir,
                    manifest,
                }
            })
            .collect();
        out.sort_by(|a, b| compare_versions(&a.version, &b.version));
        Ok(out)
    }

    /// Reads and fully verifies one release: the manifest's fields, that it is filed under its
    /// own app and version, its signature (when keys are trusted: [`Volume::with_trust`]), that
    /// the library stays inside the release directory, and its sha256, in that order.
    pub fn verify_release(&self, app: &str, version: &str) -> Result<VerifiedRelease, VolumeError> {
        check_name("app", app)?;
        check_name("version", version)?;
        let dir = self.release_dir(app, version);
        if !dir.is_dir() {
            return Err(VolumeError::NotFound {
                app: app.into(),
                version: version.into(),
                dir,
            });
        }
        // A release directory (or an app directory) symlinked out of the volume is refused:
        // everything loaded comes from the volume.
        crate::untrusted::resolve_within(&dir, &self.root)
            .map_err(|source| VolumeError::Untrusted { source })?;
        let manifest_err = |source| VolumeError::Manifest {
            app: app.to_string(),
            version: version.to_string(),
            source: Box::new(source),
        };
        let manifest = Manifest::read(&dir).map_err(manifest_err)?;
        manifest
            .check_identity(&dir, app, version)
            .map_err(manifest_err)?;
        // The signature first: a release nobody trusted signed has its library neither hashed
        // nor opened.
        manifest.validate(&dir).map_err(manifest_err)?;
        self.trust.check(&manifest)?;
        let library = manifest.verify(&dir).map_err(manifest_err)?;
        Ok(VerifiedRelease {
            manifest,
            dir,
            library,
        })
    }

    /// Removes `.tmp-*` directories left in `releases/` by pushes that were cut off, and
    /// `.<name>.tmp-*` files left in the app directory by interrupted pointer writes: at once
    /// when their writer is gone (its lock is free: [`remove_if_abandoned`]), and, for
    /// filesystems without `flock`, when older than `older_than` (a write in progress holds
    /// its lock and is left alone). Returns what was removed.
    pub fn clean_stale_temp(&self, app: &str, older_than: Duration) -> Result<Vec<PathBuf>, VolumeError> {
        check_name("app", app)?;
        let now = SystemTime::now();
        let mut removed = Vec::new();
        let candidates = list_dir(&self.releases_dir(app))?
            .into_iter()
            .filter(|(name, _)| name.starts_with(TEMP_PREFIX))
            .chain(
                list_dir(&self.app_dir(app))?
                    .into_iter()
                    .filter(|(name, _)| name.starts_with('.') && name.contains(".tmp-")),
            );
        for (_, path) in candidates {
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if age < older_than {
                match remove_if_abandoned(&path) {
                    Ok(true) => {
                        tracing::info!(path = %path.display(), "removed a temporary whose writer is gone");
                        removed.push(path);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::debug!(path = %path.display(), error = %e, "cannot tell whether a temporary is abandoned")
                    }
                }
                continue;
            }
            let result = if meta.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            result.map_err(|source| VolumeError::Io {
                action: "remove stale temporary",
                path: path.clone(),
                source,
            })?;
            tracing::info!(path = %path.display(), "removed a stale temporary left by an interrupted write");
            removed.push(path);
        }
        Ok(removed)
    }
}

/// This supervisor instance's name: the host name (the pod name on Kubernetes), read from
/// `/proc/sys/kernel/hostname` or else `$HOSTNAME`, made a safe path component; `default` if
/// neither gives one.
pub fn default_instance_name() -> String {
    let raw = host_name();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '/' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name = name.trim_start_matches('.').to_string();
    name.truncate(crate::manifest::MAX_COMPONENT_LEN);
    if name.is_empty() {
        "default".to_string()
    } else {
        name
    }
}

/// The host name, from `/proc/sys/kernel/hostname` or else `$HOSTNAME` (empty if neither).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().map(|s| s.trim().to_string()))
        .unwrap_or_default()
}

/// Checks a name used as a path component, as a [`VolumeError::InvalidName`].
fn check_name(what: &'static str, value: &str) -> Result<(), VolumeError> {
    check_component(value).map_err(|reason| VolumeError::InvalidName {
        what,
        value: value.to_string(),
        reason,
    })
}

/// [`fsutil::list_dir`], with the volume's error.
fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, VolumeError> {
    fsutil::list_dir(dir).map_err(|source| VolumeError::Io {
        action: "list",
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;
