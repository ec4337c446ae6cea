//! The volume's error type.

use crate::manifest::ManifestError;
use std::io;
use std::path::PathBuf;

/// Why a volume operation was refused or failed. Messages name the app, version or path and
/// the check that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// An app name, version or instance name is not a safe path component.
    #[error("{what} {value:?} is refused: {reason}")]
    InvalidName {
        /// `app`, `version` or `instance`.
        what: &'static str,
        /// The refused name.
        value: String,
        /// The check that failed.
        reason: &'static str,
    },
    /// A filesystem operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The release is not on the volume.
    #[error("release {app} {version} is not on the volume (no directory {dir})")]
    NotFound {
        /// The app.
        app: String,
        /// The version.
        version: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The release's manifest or library failed a check.
    #[error("release {app} {version} failed verification: {source}")]
    Manifest {
        /// The app.
        app: String,
        /// The version.
        version: String,
        /// The failed check.
        source: Box<ManifestError>,
    },
    /// The release's signature was refused (see [`crate::signing`]).
    #[error(transparent)]
    Signature(#[from] crate::signing::SignatureError),
    /// A push tried to replace an existing release's library with different bytes.
    #[error(
        "release {app} {version} already exists with library sha256 {existing}, the pushed library \
         has sha256 {pushed}: releases are immutable, push it under a new version"
    )]
    Immutable {
        /// The app.
        app: String,
        /// The version.
        version: String,
        /// The existing release's digest.
        existing: String,
        /// The pushed library's digest.
        pushed: String,
    },
    /// A push of the same library declared different release metadata.
    #[error(
        "release {app} {version} already exists with {field} = {existing}, the push says {pushed}: \
         releases are immutable, push it under a new version"
    )]
    Conflict {
        /// The app.
        app: String,
        /// The version.
        version: String,
        /// The manifest field that differs.
        field: &'static str,
        /// The existing value.
        existing: String,
        /// The pushed value.
        pushed: String,
    },
    /// A rollback was asked for but no previous version is recorded.
    #[error("app {app}: no previous version recorded in {path}: nothing to roll back to")]
    NoPrevious {
        /// The app.
        app: String,
        /// The `previous` pointer file.
        path: PathBuf,
    },
    /// A file on the volume was refused before it was read (a FIFO, a device, a directory, a
    /// symlink out of the volume, too large).
    #[error("{source}")]
    Untrusted {
        /// The check that failed.
        source: crate::untrusted::UntrustedError,
    },
    /// A pointer file (`current` / `previous`) does not hold a valid version.
    #[error("pointer {path} holds \"{content}\", not a valid version: {reason}")]
    BadPointer {
        /// The pointer file.
        path: PathBuf,
        /// What it holds, escaped and cut short ([`crate::untrusted::excerpt`]).
        content: String,
        /// The check that failed.
        reason: &'static str,
    },
    /// The library given to push is not usable.
    #[error("library {path} cannot be pushed: {reason}")]
    BadLibrary {
        /// The library given to push.
        path: PathBuf,
        /// The check that failed.
        reason: String,
    },
    /// A supervisor report on the volume does not parse, or is not of the instance and app
    /// its file name and directory say.
    #[error("supervisor report {path} is refused: {reason}")]
    BadReport {
        /// The report.
        path: PathBuf,
        /// The check that failed.
        reason: String,
    },
    /// The app has no directory on the volume.
    #[error("app {app} is not on the volume (no directory {dir})")]
    NoApp {
        /// The app.
        app: String,
        /// Its directory.
        dir: PathBuf,
    },
    /// Another writer holds the app's lock.
    #[error(
        "app {app}: another writer holds {path} (a push, activation or rollback in progress); \
         waited {waited:?}: nothing was changed"
    )]
    Locked {
        /// The app.
        app: String,
        /// The lock file.
        path: PathBuf,
        /// How long this writer waited.
        waited: std::time::Duration,
    },
}
