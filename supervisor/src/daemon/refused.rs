//! Why a version change, an upload or a rollback was refused: one type for every refusal,
//! carrying the typed error of the part that refused (the volume's, the loader's, the
//! engine's). It is rendered to text once, in `Supervisor::refuse` (see `refusal.rs`); nothing
//! matches on message text.

use super::DaemonError;
use crate::engine::{Cause, Step, SwapError};
use crate::loader::LoadError;
use crate::manifest::ManifestError;
use crate::volume::VolumeError;

/// A refused change. Every variant names the release (or app) and the check that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The volume refused: the release is missing or failed verification, a pointer is bad,
    /// another writer holds the lock, or the disk failed.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// The `current` pointer names no version: not a regular file, outside the volume, too
    /// long, or not a valid version.
    #[error("{app}: cannot read the current version: {source}")]
    Pointer {
        /// The app.
        app: String,
        /// Why.
        #[source]
        source: Box<VolumeError>,
    },
    /// The manifest says another ABI version than this supervisor speaks.
    #[error(
        "release {release}: its manifest says ABI {found}, this supervisor loads ABI versions {supported:?}"
    )]
    Abi {
        /// `app version`.
        release: String,
        /// The manifest's ABI version.
        found: u32,
        /// [`molt_abi::ABI_VERSIONS`].
        supported: &'static [u32],
    },
    /// The loader refused the library.
    #[error("release {release}: {source}")]
    Load {
        /// `app version`.
        release: String,
        /// The loader's reason.
        #[source]
        source: LoadError,
    },
    /// A library opened in a child process (an upload, which is only stored) was refused.
    #[error("release {release}: {source}")]
    Inspect {
        /// `app version`.
        release: String,
        /// The inspector's reason.
        #[source]
        source: crate::inspect::InspectError,
    },
    /// The engine refused the start, swap or rollback (the message says what still serves).
    #[error(transparent)]
    Engine(#[from] SwapError),
    /// The snapshot to start from could not be read.
    #[error("release {release}: {source}")]
    Snapshot {
        /// `app version`.
        release: String,
        /// Why.
        #[source]
        source: DaemonError,
    },
    /// The release is marked bad on the volume; activating it again needs `--force`.
    #[error("release {release} is marked bad ({reason}): activate it with --force to try it again")]
    KnownBad {
        /// `app version`.
        release: String,
        /// The recorded reason.
        reason: String,
    },
    /// A rollback with nowhere to go.
    #[error("rollback of {app} refused: {why}")]
    NoRollbackTarget {
        /// The app.
        app: String,
        /// Why there is no target.
        why: String,
    },
    /// An upload of another app.
    #[error("release {release}: this supervisor runs app {app:?}")]
    WrongApp {
        /// `app version` of the upload.
        release: String,
        /// The app this supervisor runs.
        app: String,
    },
    /// An upload whose bytes do not hash to what was announced.
    #[error("release {release}: upload sha256 {got}, announced {announced}")]
    UploadDigest {
        /// `app version`.
        release: String,
        /// The digest of the bytes received.
        got: String,
        /// The digest announced.
        announced: String,
    },
    /// An upload whose library file name is not a safe path component.
    #[error("release {release}: library file name {file:?}: {reason}")]
    UploadName {
        /// `app version`.
        release: String,
        /// The file name.
        file: String,
        /// The failed check.
        reason: &'static str,
    },
    /// An upload could not be written to scratch space.
    #[error("release {release}: {what}: {source}")]
    UploadIo {
        /// `app version`.
        release: String,
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Refused {
    /// The name of the check that failed, as `/status` and the volume reports show it.
    pub fn step(&self) -> String {
        match self {
            Refused::Volume(e) => volume_step(e).to_owned(),
            Refused::Pointer { .. } => "current".to_owned(),
            Refused::Abi { .. } => "abi".to_owned(),
            Refused::Load { .. } | Refused::Inspect { .. } => "load".to_owned(),
            Refused::Engine(e) => e.step.to_string(),
            Refused::Snapshot { .. } => "snapshot".to_owned(),
            Refused::KnownBad { .. } => "known bad".to_owned(),
            Refused::NoRollbackTarget { .. } => "rollback".to_owned(),
            Refused::WrongApp { .. } => "app".to_owned(),
            Refused::UploadDigest { .. } => "sha256".to_owned(),
            Refused::UploadName { .. } => "manifest".to_owned(),
            Refused::UploadIo { .. } => "upload".to_owned(),
        }
    }

    /// Whether the message already says what still serves (the engine's errors do).
    pub fn names_what_serves(&self) -> bool {
        matches!(self, Refused::Engine(_))
    }

    /// Whether the refusal is about the release itself, so it is recorded as bad on the
    /// volume. Not when the cause is passing (a drain deadline), another release's fault (a
    /// snapshot this one cannot import at start), or not about a release at all.
    pub fn condemns_release(&self) -> bool {
        match self {
            Refused::Volume(VolumeError::Manifest { .. }) => true,
            Refused::Abi { .. } | Refused::Load { .. } => true,
            Refused::Engine(e) => !matches!(
                (e.step, &e.cause),
                (Step::Drain, _) | (_, Cause::CannotImport { .. }) | (_, Cause::NoPrevious)
            ),
            _ => false,
        }
    }

    /// Whether the refusal is of a version change that was tried (not of a pointer that
    /// names no version, nor of a release known bad, which is not tried).
    pub fn is_swap_attempt(&self) -> bool {
        !matches!(self, Refused::Pointer { .. } | Refused::KnownBad { .. })
    }

    /// How many microseconds traffic was paused before the refusal.
    pub fn pause_us(&self) -> u64 {
        match self {
            Refused::Engine(e) => e.pause_us,
            _ => 0,
        }
    }
}

/// The name of the check a volume error comes from.
pub(super) fn volume_step(e: &VolumeError) -> &'static str {
    match e {
        VolumeError::Manifest { source, .. } => match source.as_ref() {
            ManifestError::ChecksumMismatch { .. } => "sha256",
            ManifestError::LibraryMissing { .. } => "library",
            _ => "manifest",
        },
        VolumeError::NotFound { .. } => "release",
        VolumeError::Immutable { .. } => "immutable",
        VolumeError::Signature(_) => "signature",
        VolumeError::BadPointer { .. } => "current",
        VolumeError::Locked { .. } => "lock",
        _ => "volume",
    }
}
