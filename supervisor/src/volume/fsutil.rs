//! Durable file replacement: write a temp file in the same directory, fsync it, rename it over
//! the target, fsync the directory. A reader sees the old file or the new one, never a mix, and
//! after a crash the rename is either there or not.
//!
//! Temporaries are marked in use with an exclusive `flock` held by their writer
//! ([`hold`]) from just after creation until they are renamed or dropped. The kernel drops the
//! lock when the writer dies, even by SIGKILL, so [`remove_if_abandoned`] can tell a write in
//! progress from one a crash cut off, and the next start removes the leftovers at once.

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How old an unlocked temporary must be before it counts as abandoned: its writer takes the
/// lock in the next system call after creating it, so a second covers the gap many times over.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(1);

/// Atomically replaces `path` with `bytes` (mode `0644`): temp file in the same directory,
/// fsync, rename, fsync the directory. The temp file is named `.<name>.tmp-XXXXXX`; a crash
/// can leave one behind, never a half-written `path`.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    atomic_write_with(path, 0o644, |w| w.write_all(bytes))
}

/// Like [`atomic_write`], but the content is streamed by `write` (through a buffer, so large
/// contents are not assembled in memory first) and the file gets permission bits `mode`.
pub fn atomic_write_with<F>(path: &Path, mode: u32, write: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.tmp-", name.to_string_lossy()))
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    hold(tmp.as_file())?;
    {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        write(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fsync_dir(dir)
}

/// Marks the temporary open as `file` (a file or a directory) as in use until `file` is closed:
/// an exclusive `flock`, which the kernel releases when the process dies.
pub fn hold(file: &File) -> io::Result<()> {
    file.lock()
}

/// Removes the temporary file or directory at `path` if its writer is gone: nobody holds its
/// lock ([`hold`]) and it is at least [`ABANDONED_AFTER`] old. Returns whether it was removed.
pub fn remove_if_abandoned(path: &Path) -> io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if age < ABANDONED_AFTER || meta.file_type().is_symlink() {
        return Ok(false);
    }
    let handle = open_nonblocking(path)?;
    match handle.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    if meta.is_dir() {
        std::fs::remove_dir_all(path)?;
    } else {
        std::fs::remove_file(path)?;
    }
    Ok(true)
}

/// Fsyncs a directory, making renames and creations inside it durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The entries of a directory as (UTF-8 name, path); a missing directory is empty; non-UTF-8
/// names are skipped.
pub fn list_dir(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, entry.path()));
        }
    }
    Ok(out)
}

/// Reads a small regular file as text (lossy UTF-8), at most `limit` bytes: a FIFO, a device
/// or a directory in its place is an error, not a hang.
pub fn read_small(path: &Path, limit: u64) -> io::Result<String> {
    use std::io::Read;
    // Looked at before opening: opening a FIFO for reading would wait for a writer.
    if !std::fs::symlink_metadata(path)?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let file = open_nonblocking(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Opens `path` for reading without following a final symlink and without blocking on a FIFO
/// (which `File::open` would, until a writer comes).
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("current");
        atomic_write(&path, b"1.0.0\n").unwrap();
        atomic_write(&path, b"2.0.0\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"2.0.0\n");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o600, 0o600);
    }

    #[test]
    fn only_unlocked_temporaries_past_the_grace_are_abandoned() {
        let tmp = tempfile::tempdir().unwrap();
        let backdate = |p: &Path| {
            let old = SystemTime::now() - ABANDONED_AFTER * 2;
            File::open(p).unwrap().set_modified(old).unwrap();
        };
        let (live, dead, young) = (
            tmp.path().join("live"),
            tmp.path().join("dead"),
            tmp.path().join("young"),
        );
        std::fs::create_dir(&live).unwrap();
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("half"), b"cut off").unwrap();
        std::fs::write(&young, b"just created").unwrap();
        let writer = File::open(&live).unwrap();
        hold(&writer).unwrap();
        backdate(&live);
        backdate(&dead);
        assert!(
            !remove_if_abandoned(&live).unwrap(),
            "a held temporary was removed"
        );
        assert!(remove_if_abandoned(&dead).unwrap());
        assert!(
            !remove_if_abandoned(&young).unwrap(),
            "a temporary younger than the grace was removed"
        );
        assert!(live.exists() && !dead.exists() && young.exists());
        drop(writer);
        assert!(
            remove_if_abandoned(&live).unwrap(),
            "the lock went with its writer"
        );
    }

    #[test]
    fn failed_writer_leaves_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        atomic_write(&path, b"old").unwrap();
        let err = atomic_write_with(&path, 0o600, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("cut off"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
