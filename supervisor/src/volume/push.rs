//! Publishing a release onto the volume, atomically.

use super::{check_name, fsync_dir, Activation, Volume, VolumeError, TEMP_PREFIX};
use crate::manifest::{check_component, sha256_file, Manifest, MANIFEST_FILE};
use sha2::{Digest, Sha256};
use std::fs::{File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What a push publishes besides the library itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// The app's name.
    pub app: String,
    /// The release's version.
    pub version: String,
    /// The molt ABI version the library was built against.
    pub abi: u32,
    /// The state schema the library keeps.
    pub state_schema: u32,
    /// The signature envelope to write into the manifest (see [`crate::signing`]), made over
    /// [`ReleaseInfo::manifest`] with the library's sha256.
    pub signature: Option<String>,
}

impl ReleaseInfo {
    /// The manifest this release gets, for a library file `library` hashing to `sha256`.
    pub fn manifest(&self, library: &str, sha256: &str) -> Manifest {
        Manifest {
            app: self.app.clone(),
            version: self.version.clone(),
            abi: self.abi,
            state_schema: self.state_schema,
            library: library.to_string(),
            sha256: sha256.to_string(),
            signature: self.signature.clone(),
        }
    }
}

/// The release a push left on the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRelease {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its directory.
    pub dir: PathBuf,
    /// The activation, when the push asked for one.
    pub activation: Option<Activation>,
}

/// The result of [`Volume::push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The release was written.
    Created(PushedRelease),
    /// The same library was already published under this version: nothing was written
    /// (activation still happens when asked).
    AlreadyPresent(PushedRelease),
}

impl PushOutcome {
    /// The release, however it got there.
    pub fn release(&self) -> &PushedRelease {
        match self {
            PushOutcome::Created(r) | PushOutcome::AlreadyPresent(r) => r,
        }
    }
}

impl Volume {
    /// Publishes `library` as release `info.app` `info.version`, keeping the library's file
    /// name, and activates it when `activate` is set.
    ///
    /// The release is built in `releases/.tmp-XXXXXX` on the same volume (library copied and
    /// hashed in one pass, `release.toml` written), the files and the directory fsynced, then
    /// renamed to `releases/<version>` and the parent fsynced. If the version exists already:
    /// the same library (same sha256 and metadata) is [`PushOutcome::AlreadyPresent`]; a
    /// different one is refused with [`VolumeError::Immutable`] and the existing release is
    /// untouched.
    pub fn push(
        &self,
        library: &Path,
        info: &ReleaseInfo,
        activate: bool,
    ) -> Result<PushOutcome, VolumeError> {
        let (app, version) = (info.app.as_str(), info.version.as_str());
        check_name("app", app)?;
        check_name("version", version)?;
        let lib_name = library_name(library)?;
        let releases = self.releases_dir(app);
        let dest = self.release_dir(app, version);

        let outcome = if dest.exists() {
            let sha256 = sha256_file(library).map_err(|source| io_err("read library", library, source))?;
            self.existing(info, &lib_name, &sha256)?
        } else {
            if !releases.is_dir() {
                std::fs::create_dir_all(&releases).map_err(|e| io_err("create", &releases, e))?;
                for dir in [releases.as_path(), &self.app_dir(app), &self.root] {
                    fsync_dir(dir).map_err(|e| io_err("fsync", dir, e))?;
                }
            }
            let tmp = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempdir_in(&releases)
                .map_err(|e| io_err("create a temporary directory in", &releases, e))?;
            // Held until the rename: a start after a crash sees the lock gone and removes it.
            let in_use = File::open(tmp.path()).and_then(|f| super::fsutil::hold(&f).map(|()| f));
            let _in_use = in_use.map_err(|e| io_err("lock", tmp.path(), e))?;
            let manifest = build(tmp.path(), library, &lib_name, info)?;
            match std::fs::rename(tmp.path(), &dest) {
                Ok(()) => {
                    let _ = tmp.keep();
                    fsync_dir(&releases).map_err(|e| io_err("fsync", &releases, e))?;
                    let (sha256, dir) = (&manifest.sha256, dest.display());
                    tracing::info!(app, version, %sha256, %dir, "release pushed");
                    PushOutcome::Created(PushedRelease {
                        manifest,
                        dir: dest.clone(),
                        activation: None,
                    })
                }
                // Another push of this version won the race: judge against what it wrote.
                Err(_) if dest.exists() => {
                    drop(tmp);
                    self.existing(info, &lib_name, &manifest.sha256)?
                }
                Err(e) => return Err(io_err("rename into place", &dest, e)),
            }
        };
        if !activate {
            return Ok(outcome);
        }
        let activation = Some(self.activate(app, version)?);
        Ok(match outcome {
            PushOutcome::Created(r) => PushOutcome::Created(PushedRelease { activation, ..r }),
            PushOutcome::AlreadyPresent(r) => PushOutcome::AlreadyPresent(PushedRelease { activation, ..r }),
        })
    }

    /// Judges a push against the release already filed under its version.
    fn existing(&self, info: &ReleaseInfo, lib_name: &str, sha256: &str) -> Result<PushOutcome, VolumeError> {
        let (app, version) = (info.app.as_str(), info.version.as_str());
        let existing = self.verify_release(app, version)?;
        let m = &existing.manifest;
        if !m.sha256.eq_ignore_ascii_case(sha256) {
            return Err(VolumeError::Immutable {
                app: app.into(),
                version: version.into(),
                existing: m.sha256.clone(),
                pushed: sha256.into(),
            });
        }
        let fields = [
            ("abi", m.abi.to_string(), info.abi.to_string()),
            (
                "state_schema",
                m.state_schema.to_string(),
                info.state_schema.to_string(),
            ),
            ("library", m.library.clone(), lib_name.to_string()),
            (
                "signature",
                m.signature.clone().unwrap_or_default(),
                info.signature.clone().unwrap_or_default(),
            ),
        ];
        for (field, existing, pushed) in fields {
            if existing != pushed {
                return Err(VolumeError::Conflict {
                    app: app.into(),
                    version: version.into(),
                    field,
                    existing,
                    pushed,
                });
            }
        }
        tracing::info!(
            app,
            version,
            sha256,
            "release already present with the same library"
        );
        Ok(PushOutcome::AlreadyPresent(PushedRelease {
            manifest: existing.manifest,
            dir: existing.dir,
            activation: None,
        }))
    }
}

/// Fills the temporary release directory: the library (copied and hashed in one pass) and
/// `release.toml`, each fsynced, then the directory itself.
fn build(tmp: &Path, library: &Path, lib_name: &str, info: &ReleaseInfo) -> Result<Manifest, VolumeError> {
    std::fs::set_permissions(tmp, Permissions::from_mode(0o755)).map_err(|e| io_err("chmod", tmp, e))?;
    let target = tmp.join(lib_name);
    let sha256 = copy_hashed(library, &target).map_err(|e| io_err("copy the library to", &target, e))?;
    let manifest = info.manifest(lib_name, &sha256);
    manifest.validate(tmp).map_err(|e| VolumeError::Manifest {
        app: info.app.clone(),
        version: info.version.clone(),
        source: Box::new(e),
    })?;
    // A signature made over other bytes (the library changed after it was signed) is refused
    // here rather than left for every supervisor to refuse.
    if let Some(text) = &manifest.signature {
        let envelope = crate::signing::Envelope::parse(text).ok();
        if !envelope.is_some_and(|e| e.verifies(&manifest)) {
            return Err(VolumeError::BadLibrary {
                path: library.into(),
                reason: format!(
                    "the signature given for {} {} does not match its manifest (library sha256 {sha256}): \
                     was the library changed after it was signed?",
                    info.app, info.version
                ),
            });
        }
    }
    let path = tmp.join(MANIFEST_FILE);
    write_synced(&path, manifest.to_toml().as_bytes()).map_err(|e| io_err("write", &path, e))?;
    fsync_dir(tmp).map_err(|e| io_err("fsync", tmp, e))?;
    Ok(manifest)
}

/// Copies `from` to a new file `to`, fsyncs it, and returns the hex sha256 of the bytes copied.
fn copy_hashed(from: &Path, to: &Path) -> io::Result<String> {
    let mut src = crate::untrusted::open(from, None, crate::untrusted::MAX_LIBRARY)
        .map_err(crate::untrusted::UntrustedError::into_io)?
        .file;
    let mut dst = File::create_new(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
    }
    dst.sync_all()?;
    Ok(hex::encode(hasher.finalize()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create_new(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The library's file name, checked as a path component; the library must be a regular file.
fn library_name(library: &Path) -> Result<String, VolumeError> {
    let bad = |reason: String| VolumeError::BadLibrary {
        path: library.into(),
        reason,
    };
    let name = library
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("no UTF-8 file name".into()))?;
    check_component(name).map_err(|r| bad(format!("file name {name:?}: {r}")))?;
    if name == MANIFEST_FILE {
        return Err(bad(format!("a library cannot be named {MANIFEST_FILE}")));
    }
    let meta = std::fs::metadata(library).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    Ok(name.to_string())
}

fn io_err(action: &'static str, path: &Path, source: io::Error) -> VolumeError {
    VolumeError::Io {
        action,
        path: path.into(),
        source,
    }
}
