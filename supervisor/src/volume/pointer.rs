//! The `current` and `previous` pointers: activation and rollback.

use super::{atomic_write, check_name, Volume, VolumeError};
use crate::manifest::check_component;
use crate::untrusted::{self, MAX_POINTER};
use std::path::Path;

/// The result of [`Volume::activate`] or [`Volume::rollback`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The app.
    pub app: String,
    /// What `previous` holds now (the version that was current before, when it changed).
    pub previous: Option<String>,
    /// What `current` holds now.
    pub current: String,
    /// False when the version was already current (nothing was written).
    pub changed: bool,
}

/// Which write of a pointer file is there now: its inode and modification time. A pointer is
/// replaced by rename, so every write, even of the same version, gives a new stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointerStamp {
    ino: u64,
    mtime_ns: i128,
}

impl Volume {
    /// The stamp of `current` as it is now (`None` when it cannot be looked at); the file is
    /// not opened and a link is not followed.
    pub fn current_stamp(&self, app: &str) -> Option<PointerStamp> {
        use std::os::unix::fs::MetadataExt;
        check_name("app", app).ok()?;
        let meta = std::fs::symlink_metadata(self.current_path(app)).ok()?;
        Some(PointerStamp {
            ino: meta.ino(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }

    /// Writes `current` again with the version it already names, so that watching supervisors
    /// look at it again (one that refused it retries; see `daemon/reconcile.rs`). `previous`
    /// is left alone. The caller holds the app's lock ([`Volume::lock_app`]) and has read
    /// `current`; the release must verify.
    pub fn reannounce(&self, app: &str, version: &str) -> Result<(), VolumeError> {
        self.verify_release(app, version)?;
        write_pointer(&self.current_path(app), version)
    }

    /// The version `current` points at; `None` when no version was ever activated.
    pub fn current(&self, app: &str) -> Result<Option<String>, VolumeError> {
        check_name("app", app)?;
        read_pointer(&self.current_path(app), self.root())
    }

    /// The version `previous` points at (the one active before `current`); `None` when none.
    pub fn previous(&self, app: &str) -> Result<Option<String>, VolumeError> {
        check_name("app", app)?;
        read_pointer(&self.previous_path(app), self.root())
    }

    /// Makes `version` the one that should run. The release must exist and verify (manifest
    /// checks and the library's sha256) before any pointer moves; then the old `current` is
    /// written to `previous` and `version` to `current`, each atomically. Activating the version
    /// that is already current writes nothing (and keeps `previous`). On any error `current` is
    /// unchanged. A corrupt `current` file is overwritten (with a warning), `previous` kept.
    pub fn activate(&self, app: &str, version: &str) -> Result<Activation, VolumeError> {
        let release = self.verify_release(app, version)?;
        let old = match self.current(app) {
            Ok(old) => old,
            Err(e @ VolumeError::BadPointer { .. }) => {
                tracing::warn!(app, error = %e, "overwriting a corrupt current pointer");
                None
            }
            Err(e) => return Err(e),
        };
        if old.as_deref() == Some(version) {
            return Ok(Activation {
                app: app.into(),
                previous: self.previous(app).ok().flatten(),
                current: version.into(),
                changed: false,
            });
        }
        // A bad release never becomes `previous`: rollback must not lead back to it.
        match &old {
            Some(old) if self.is_bad(app, old) => {
                tracing::info!(app, version = %old, "not recording a bad release as previous")
            }
            Some(old) => write_pointer(&self.previous_path(app), old)?,
            None => {}
        }
        write_pointer(&self.current_path(app), version)?;
        tracing::info!(
            app,
            version,
            previous = old.as_deref().unwrap_or("none"),
            sha256 = %release.manifest.sha256,
            "release activated on the volume"
        );
        Ok(Activation {
            app: app.into(),
            previous: self.previous(app).ok().flatten(),
            current: version.into(),
            changed: true,
        })
    }

    /// Puts `current` and `previous` back to what they held before a change that was refused
    /// (`None` removes a pointer). Writes `previous` first, then `current`.
    pub fn restore_pointers(
        &self,
        app: &str,
        current: Option<&str>,
        previous: Option<&str>,
    ) -> Result<(), VolumeError> {
        check_name("app", app)?;
        for (path, value) in [
            (self.previous_path(app), previous),
            (self.current_path(app), current),
        ] {
            match value {
                Some(v) => {
                    check_name("version", v)?;
                    write_pointer(&path, v)?
                }
                None => match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(VolumeError::Io {
                            action: "remove pointer",
                            path,
                            source,
                        })
                    }
                },
            }
        }
        tracing::info!(
            app,
            current = current.unwrap_or("none"),
            previous = previous.unwrap_or("none"),
            "pointers restored"
        );
        Ok(())
    }

    /// Activates the `previous` version, so `current` and `previous` swap places. Refused
    /// when no previous version is recorded, or when it no longer verifies.
    pub fn rollback(&self, app: &str) -> Result<Activation, VolumeError> {
        let previous = self.previous(app)?.ok_or_else(|| VolumeError::NoPrevious {
            app: app.into(),
            path: self.previous_path(app),
        })?;
        self.activate(app, &previous)
    }
}

/// Reads a pointer file: `None` when it does not exist, the trimmed version otherwise.
/// The file is untrusted (see [`crate::untrusted`]): it must be a regular file of at most
/// [`MAX_POINTER`] bytes that resolves inside the volume `root`; what it holds is quoted only
/// escaped and cut short.
fn read_pointer(path: &Path, root: &Path) -> Result<Option<String>, VolumeError> {
    let bytes = match untrusted::read(path, Some(root), MAX_POINTER) {
        Ok(bytes) => bytes,
        Err(e) if e.is_missing() => return Ok(None),
        Err(source) => return Err(VolumeError::Untrusted { source }),
    };
    let text = String::from_utf8_lossy(&bytes);
    let version = text.trim();
    check_component(version).map_err(|reason| VolumeError::BadPointer {
        path: path.into(),
        content: untrusted::excerpt(&bytes, 64),
        reason,
    })?;
    Ok(Some(version.to_string()))
}

fn write_pointer(path: &Path, version: &str) -> Result<(), VolumeError> {
    atomic_write(path, format!("{version}\n").as_bytes()).map_err(|source| VolumeError::Io {
        action: "write pointer",
        path: path.into(),
        source,
    })
}
