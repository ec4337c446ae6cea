//! One supervisor per state directory: an exclusive lock on `<state dir>/molt.lock`.
//!
//! Two supervisors writing snapshots into one directory overwrite each other's state, and a
//! restart then keeps whichever wrote last. So `molt run` takes an advisory exclusive lock
//! (`flock`, through [`std::fs::File::try_lock`]) on a lock file inside the directory for as
//! long as it runs, and, once started, writes who holds it (pid, host, start time) into the
//! file. A second supervisor is refused, naming the holder. The kernel drops the lock when the
//! holder's process ends however it ends (even `SIGKILL`), so a stale lock file never blocks a
//! start.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "molt.lock";

/// Why the state directory could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "the state directory {dir} is in use by another supervisor ({holder}): two supervisors \
         on one state directory overwrite each other's snapshots; nothing was started. Give each \
         its own --state-dir, or stop the other one"
    )]
    Held {
        /// The state directory.
        dir: PathBuf,
        /// What the holder wrote into the lock file, escaped and cut short.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock the state directory {dir} ({file}): {source}")]
    Io {
        /// The state directory.
        dir: PathBuf,
        /// The lock file's path.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock on `dir` (which must exist), or says who holds it. Writes nothing.
    pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            dir: dir.to_owned(),
            file: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { file, path }),
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = Vec::new();
                let _ = (&file).take(512).read_to_end(&mut text);
                let holder = String::from_utf8_lossy(&text);
                let holder = match holder.trim() {
                    "" => "its holder has not said who it is yet".to_owned(),
                    held => crate::untrusted::excerpt(held.as_bytes(), 200),
                };
                Err(LockError::Held {
                    dir: dir.to_owned(),
                    holder,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// Writes who holds the lock (pid, host, start time) into the lock file, for a second
    /// supervisor's refusal to name. Called once the holder has started for good, so a start
    /// that is refused leaves the file as it found it.
    pub fn record_holder(&self) -> std::io::Result<()> {
        let host = crate::volume::default_instance_name();
        let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let who = format!("pid {} on host {host}, since {since}\n", std::process::id());
        let mut file = &self.file;
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(who.as_bytes())?;
        file.sync_all()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        first.record_holder().unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {} on host", std::process::id())),
            "{text}"
        );
        assert!(text.contains("is in use by another supervisor"), "{text}");
        drop(first);
        StateLock::acquire(dir.path()).expect("free again once dropped");
    }
}
