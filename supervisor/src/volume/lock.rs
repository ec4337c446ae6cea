//! One writer of `current` at a time: an exclusive lock on `<volume>/<app>/.lock`, taken by
//! every process that moves the pointers (`molt push/activate/rollback --volume`, a
//! supervisor's control API). Concurrent activations serialize: each waits its turn, up to a
//! bound, and then does (and reports) its own change. The lock is an OS file lock
//! (`flock`), released when the holder exits, even by a crash.

use super::{check_name, Volume, VolumeError};
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The lock file, under the app's directory.
pub const LOCK_FILE: &str = ".lock";

/// How often a waiting writer tries again.
const RETRY: Duration = Duration::from_millis(20);

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct AppLock {
    file: File,
    path: PathBuf,
}

impl AppLock {
    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for AppLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl Volume {
    /// Takes the app's writer lock, waiting up to `wait` for another writer to finish.
    pub fn lock_app(&self, app: &str, wait: Duration) -> Result<AppLock, VolumeError> {
        check_name("app", app)?;
        let dir = self.app_dir(app);
        std::fs::create_dir_all(&dir).map_err(|source| VolumeError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        // Read-only is enough for the lock, so a lock file created by another user (a
        // supervisor in a container) still serves; it is created only when missing. It is
        // opened as an untrusted file: a FIFO or a symlink out of the volume in its place is
        // refused, never waited on.
        let file = match crate::untrusted::open(&path, Some(&self.root), u64::MAX) {
            Ok(opened) => opened.file,
            Err(e) if e.is_missing() => OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|source| VolumeError::Io {
                    action: "open lock file",
                    path: path.clone(),
                    source,
                })?,
            Err(source) => return Err(VolumeError::Untrusted { source }),
        };
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(AppLock { file, path }),
                Err(TryLockError::WouldBlock) if started.elapsed() < wait => std::thread::sleep(RETRY),
                Err(TryLockError::WouldBlock) => {
                    return Err(VolumeError::Locked {
                        app: app.to_owned(),
                        path,
                        waited: wait,
                    })
                }
                Err(TryLockError::Error(source)) => {
                    return Err(VolumeError::Io {
                        action: "lock",
                        path,
                        source,
                    })
                }
            }
        }
    }
}
