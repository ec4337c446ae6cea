//! `release.toml`: the manifest of one release on the volume, and its checks.
//!
//! A release directory holds a manifest and the library it names:
//! ```text
//! <volume>/<app>/releases/<version>/release.toml
//! <volume>/<app>/releases/<version>/<library>
//! ```
//! ```toml
//! app = "counter"
//! version = "1.0.0"
//! abi = 1
//! state_schema = 1
//! library = "libcounter_v1.so"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! signature = "ed25519 <public key hex> <signature hex>"   # optional: see crate::signing
//! ```
//! [`Manifest::verify`] is the gate every release passes before anything loads it: the fields
//! are well formed, the library is a plain file inside the release directory, and its bytes
//! hash to the manifest's `sha256`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// The manifest's file name inside a release directory.
pub const MANIFEST_FILE: &str = "release.toml";

/// The longest app name, version or library file name accepted, in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;

/// The parsed `release.toml` of one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The app's name (a safe path component, see [`check_component`]).
    pub app: String,
    /// The release's version (a safe path component; ordered numeric-aware on the volume).
    pub version: String,
    /// The molt ABI version the library was built against.
    pub abi: u32,
    /// The state schema the library keeps.
    pub state_schema: u32,
    /// The library's file name, inside the release directory.
    pub library: String,
    /// Lowercase hex SHA-256 of the library's bytes.
    pub sha256: String,
    /// The signature envelope, `ed25519 <public key hex> <signature hex>` (see
    /// [`crate::signing`]); checked against the trusted keys before the library is opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Why a manifest or its release was refused. Every message names the release and the check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// `release.toml` could not be read.
    #[error("release {dir}: cannot read {MANIFEST_FILE}: {source}")]
    Read {
        /// The release directory.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// `release.toml` is not valid TOML or does not have the manifest's fields.
    #[error(
        "release {dir}: {MANIFEST_FILE} is not a valid manifest: {}",
        parse_message(source)
    )]
    Parse {
        /// The release directory.
        dir: PathBuf,
        /// The parser's error.
        source: Box<toml::de::Error>,
    },
    /// A field is malformed.
    #[error("release {dir}: field `{field}` = {value:?} is invalid: {reason}")]
    InvalidField {
        /// The release directory.
        dir: PathBuf,
        /// The field's name in `release.toml`.
        field: &'static str,
        /// The refused value.
        value: String,
        /// The check that failed.
        reason: String,
    },
    /// The manifest's app or version disagrees with where the release sits on the volume.
    #[error("release {dir}: manifest `{field}` is {found:?} but the release is filed under {expected:?}")]
    Identity {
        /// The release directory.
        dir: PathBuf,
        /// `app` or `version`.
        field: &'static str,
        /// What the volume path says.
        expected: String,
        /// What the manifest says.
        found: String,
    },
    /// The `library` field names something that is not a plain file inside the release directory.
    #[error("release {dir}: library {library:?} is refused: {reason}")]
    LibraryPath {
        /// The release directory.
        dir: PathBuf,
        /// The manifest's `library` field.
        library: String,
        /// The check that failed.
        reason: String,
    },
    /// The library file is missing or unreadable.
    #[error("release {dir}: library {library:?} cannot be opened: {source}")]
    LibraryMissing {
        /// The release directory.
        dir: PathBuf,
        /// The manifest's `library` field.
        library: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The library's bytes do not hash to the manifest's `sha256`.
    #[error(
        "release {app} {version}: sha256 check failed for {file}: \
         the manifest expects {expected}, the file hashes to {actual}"
    )]
    ChecksumMismatch {
        /// The app.
        app: String,
        /// The version.
        version: String,
        /// The library file that was hashed (in the release directory).
        file: PathBuf,
        /// The manifest's digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
}

impl Manifest {
    /// Reads and parses `<release_dir>/release.toml` (no checks beyond the TOML shape; see
    /// [`Manifest::verify`]).
    pub fn read(release_dir: &Path) -> Result<Manifest, ManifestError> {
        let dir = release_dir.to_path_buf();
        // Untrusted: a regular file of at most MAX_MANIFEST bytes inside the release directory.
        let path = release_dir.join(MANIFEST_FILE);
        let bytes = crate::untrusted::read(&path, Some(release_dir), crate::untrusted::MAX_MANIFEST)
            .map_err(|e| ManifestError::Read {
                dir: dir.clone(),
                source: e.into_io(),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| ManifestError::Read {
            dir: dir.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"),
        })?;
        Manifest::parse(&text, release_dir)
    }

    /// Parses manifest text; `release_dir` only names the release in errors.
    pub fn parse(text: &str, release_dir: &Path) -> Result<Manifest, ManifestError> {
        toml::from_str(text).map_err(|e| ManifestError::Parse {
            dir: release_dir.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// The manifest as `release.toml` text.
    pub fn to_toml(&self) -> String {
        // A struct of strings, integers and an optional string always serializes.
        toml::to_string(self).expect("a manifest of strings and integers serializes to TOML")
    }

    /// Checks the fields' shapes: `app`, `version` and `library` are safe path components
    /// ([`check_component`]), `sha256` is 64 hex digits, `signature` (when present) is a well-formed envelope (whether
    /// it verifies, and by whom, is [`crate::signing::TrustedKeys::check`]'s question).
    pub fn validate(&self, release_dir: &Path) -> Result<(), ManifestError> {
        let invalid = |field: &'static str, value: &str, reason: String| ManifestError::InvalidField {
            dir: release_dir.to_path_buf(),
            field,
            value: value.to_string(),
            reason,
        };
        check_component(&self.app).map_err(|r| invalid("app", &self.app, r.to_string()))?;
        check_component(&self.version).map_err(|r| invalid("version", &self.version, r.to_string()))?;
        check_sha256(&self.sha256).map_err(|r| invalid("sha256", &self.sha256, r.to_string()))?;
        if let Some(sig) = &self.signature {
            crate::signing::Envelope::parse(sig).map_err(|e| invalid("signature", sig, e.to_string()))?;
        }
        Ok(())
    }

    /// Checks that the manifest describes `app` `version`, the names under which the release
    /// is filed on the volume.
    pub fn check_identity(&self, release_dir: &Path, app: &str, version: &str) -> Result<(), ManifestError> {
        for (field, expected, found) in [("app", app, &self.app), ("version", version, &self.version)] {
            if expected != found {
                return Err(ManifestError::Identity {
                    dir: release_dir.to_path_buf(),
                    field,
                    expected: expected.to_string(),
                    found: found.clone(),
                });
            }
        }
        Ok(())
    }

    /// The library's path, after checking it is a plain file name inside `release_dir`: no
    /// absolute path, no `..`, no separator, and (symlinks resolved) a regular file that stays
    /// inside the release directory. The file must exist.
    pub fn library_path(&self, release_dir: &Path) -> Result<PathBuf, ManifestError> {
        let refuse = |reason: String| ManifestError::LibraryPath {
            dir: release_dir.to_path_buf(),
            library: self.library.clone(),
            reason,
        };
        check_component(&self.library).map_err(|r| refuse(r.to_string()))?;
        let path = release_dir.join(&self.library);
        let missing = |source| ManifestError::LibraryMissing {
            dir: release_dir.to_path_buf(),
            library: self.library.clone(),
            source,
        };
        let real_dir = release_dir.canonicalize().map_err(missing)?;
        let real = path.canonicalize().map_err(missing)?;
        if !real.starts_with(&real_dir) {
            return Err(refuse(format!(
                "it resolves to {}, outside the release directory",
                real.display()
            )));
        }
        if !std::fs::metadata(&real).map_err(missing)?.is_file() {
            return Err(refuse(format!("{} is not a regular file", real.display())));
        }
        Ok(path)
    }

    /// The full gate: [`validate`](Manifest::validate), [`library_path`](Manifest::library_path),
    /// and the library's SHA-256 against the manifest's. Returns the verified library path.
    pub fn verify(&self, release_dir: &Path) -> Result<PathBuf, ManifestError> {
        self.validate(release_dir)?;
        let path = self.library_path(release_dir)?;
        let actual = sha256_file(&path).map_err(|source| ManifestError::LibraryMissing {
            dir: release_dir.to_path_buf(),
            library: self.library.clone(),
            source,
        })?;
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(ManifestError::ChecksumMismatch {
                app: self.app.clone(),
                version: self.version.clone(),
                file: path,
                expected: self.sha256.clone(),
                actual,
            });
        }
        tracing::debug!(app = %self.app, version = %self.version, sha256 = %actual, "release verified");
        Ok(path)
    }
}

/// Checks that `value` can be used as one path component on the volume (an app name, a
/// version, a library file name, an instance name): non-empty, at most [`MAX_COMPONENT_LEN`]
/// bytes, printable ASCII without spaces, no `/` or `\`, not starting with `.` (which also
/// refuses `.`, `..` and the `.tmp-*` directories of unfinished pushes). Returns the failed
/// check.
pub fn check_component(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("empty");
    }
    if value.len() > MAX_COMPONENT_LEN {
        return Err("longer than 255 bytes");
    }
    if value.starts_with('.') {
        return Err("starts with '.'");
    }
    if value.contains(['/', '\\']) {
        return Err("contains a path separator");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("not printable ASCII without spaces");
    }
    Ok(())
}

/// Checks that `value` is a SHA-256 digest in hex: 64 hex digits.
pub fn check_sha256(value: &str) -> Result<(), &'static str> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("not 64 hex digits");
    }
    Ok(())
}

/// The lowercase hex SHA-256 of a library file's bytes, read in a streaming way. The file is
/// untrusted ([`crate::untrusted::open`]): a regular file of at most
/// [`crate::untrusted::MAX_LIBRARY`] bytes.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let limit = crate::untrusted::MAX_LIBRARY;
    let opened =
        crate::untrusted::open(path, None, limit).map_err(crate::untrusted::UntrustedError::into_io)?;
    let mut hasher = Sha256::new();
    io::copy(&mut io::Read::take(opened.file, limit), &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// A TOML error without the excerpt of the file it quotes (the file is untrusted: its
/// contents are not echoed), with where it is, escaped and cut short.
fn parse_message(e: &toml::de::Error) -> String {
    let at = e
        .span()
        .map_or(String::new(), |span| format!(" (at byte {})", span.start));
    format!("{}{at}", crate::untrusted::excerpt(e.message().as_bytes(), 160))
}

#[cfg(test)]
mod tests;
