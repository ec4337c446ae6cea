//! The private copy of a library that `dlopen` actually opens, and the bytes that are hashed.
//!
//! Never `dlopen` a file on the release volume: overwriting a mapped `.so` in place crashes the
//! process, and `dlopen` of a path that is already loaded returns the old handle. Each load
//! gets a fresh name instead: `<stem>-<pid>-<counter>.so`.
//!
//! The library is read exactly once: opened as an untrusted regular file (no symlink as its
//! last component, no FIFO or device, at most [`MAX_LIBRARY`] bytes), and hashed *while* it is
//! copied. The digest returned is the copy's, and the copy is what gets pre-checked and
//! opened: whatever happens to the file on the volume meanwhile, the bytes loaded are the
//! bytes hashed.

use crate::untrusted::{self, MAX_LIBRARY};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Loads so far in this process: the per-process part of a copy's name.
static COPIES: AtomicU64 = AtomicU64::new(0);

/// A copy of a library in the run directory, removed when dropped: once `dlopen` has mapped
/// it, the mapping stays valid without the file, so run directories do not fill up.
#[derive(Debug)]
pub(crate) struct RunCopy {
    path: PathBuf,
    /// The copy, open read-only: what the pre-check reads.
    file: File,
    /// Lowercase hex SHA-256 of the copied bytes.
    sha256: String,
}

impl RunCopy {
    /// Copies `library` into `run_dir` (created if missing) under a name no other load uses,
    /// hashing the bytes as they are copied.
    pub(crate) fn create(library: &Path, run_dir: &Path) -> io::Result<RunCopy> {
        let source =
            untrusted::open(library, None, MAX_LIBRARY).map_err(untrusted::UntrustedError::into_io)?;
        std::fs::create_dir_all(run_dir)?;
        let stem = library
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".to_owned());
        loop {
            let n = COPIES.fetch_add(1, Ordering::Relaxed);
            let path = run_dir.join(format!("{stem}-{}-{n}.so", std::process::id()));
            // `create_new`: a leftover file of a dead process with a recycled pid is never
            // reused (it might be someone else's mapping); take the next number instead.
            let mut target = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o500)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            // Removed on any error below.
            let mut copy = RunCopy {
                file: File::open(&path)?,
                path,
                sha256: String::new(),
            };
            let mut hasher = Sha256::new();
            let mut reader = source.file.take(MAX_LIBRARY + 1);
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                total += n as u64;
                if total > MAX_LIBRARY {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} grew past the {MAX_LIBRARY} bytes allowed", library.display()),
                    ));
                }
                hasher.update(&buf[..n]);
                target.write_all(&buf[..n])?;
            }
            target.sync_all()?;
            copy.sha256 = hex::encode(hasher.finalize());
            return Ok(copy);
        }
    }

    /// Where the copy is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The copy, open for reading.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The SHA-256 of the copied bytes.
    pub(crate) fn sha256(&self) -> &str {
        &self.sha256
    }
}

impl Drop for RunCopy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not remove a library copy");
        }
    }
}
