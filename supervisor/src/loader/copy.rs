//! The private copy of a library that `dlopen` actually opens.
//!
//! Never `dlopen` a file on the release volume: overwriting a mapped `.so` in place crashes the
//! process, and `dlopen` of a path that is already loaded returns the old handle. Each load
//! gets a fresh name instead: `<stem>-<pid>-<counter>.so`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Loads so far in this process: the per-process part of a copy's name.
static COPIES: AtomicU64 = AtomicU64::new(0);

/// A copy of a library in the run directory, removed when dropped: once `dlopen` has mapped
/// it, the mapping stays valid without the file, so run directories do not fill up.
#[derive(Debug)]
pub(crate) struct RunCopy {
    path: PathBuf,
}

impl RunCopy {
    /// Copies `library` into `run_dir` (created if missing) under a name no other load uses.
    pub(crate) fn create(library: &Path, run_dir: &Path) -> io::Result<RunCopy> {
        std::fs::create_dir_all(run_dir)?;
        let stem = library
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".to_owned());
        let mut source = File::open(library)?;
        loop {
            let n = COPIES.fetch_add(1, Ordering::Relaxed);
            let path = run_dir.join(format!("{stem}-{}-{n}.so", std::process::id()));
            // `create_new`: a leftover file of a dead process with a recycled pid is never
            // reused (it might be someone else's mapping); take the next number instead.
            let mut target = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            let copy = RunCopy { path };
            io::copy(&mut source, &mut target)?;
            return Ok(copy);
        }
    }

    /// Where the copy is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunCopy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not remove a library copy");
        }
    }
}
