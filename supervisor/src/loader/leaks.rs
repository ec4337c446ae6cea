//! Libraries left mapped after their plugin was closed.
//!
//! When the last handle on a plugin goes, the loader `dlclose`s it and expects the kernel
//! mapping of its private copy to be gone. Two things keep it mapped: a thread still running
//! (or parked) in its code, whose thread-locals registered destructors there, and a
//! thread-local with a destructor that a host thread (one that served a request) touched:
//! glibc keeps an object with pending TLS destructors loaded until every such thread exits.
//! Each such load then stays mapped for as long as those threads live, one more copy per
//! swap. So after every close the loader looks for the copy's path in `/proc/self/maps`
//! (Linux; elsewhere nothing is checked), warns once naming the release and the likely
//! causes, and keeps the record so that `/status` and `/metrics` can count what is still
//! mapped now (a library whose threads ended has gone since: it is no longer counted).

use parking_lot::Mutex;
use std::path::{Path, PathBuf};

/// A library that was still mapped after its plugin was closed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftMapped {
    /// The release, as the loader names it (`app version (file)`).
    pub release: String,
    /// The private copy's path (deleted on disk; `/proc/self/maps` still shows it).
    pub copy: PathBuf,
}

static LEFT: Mutex<Vec<LeftMapped>> = Mutex::new(Vec::new());

/// Called right after `dlclose` of `copy`: records and warns if it is still mapped.
pub(super) fn after_close(release: &str, copy: &Path) {
    if !is_mapped(copy) {
        tracing::debug!(release, "library unmapped");
        return;
    }
    tracing::warn!(
        release,
        copy = %copy.display(),
        "library still mapped after its last instance was destroyed: a thread it started may \
         still run, or a thread-local with a destructor keeps it loaded (no thread or \
         thread-local may outlive destroy; `molt check` shows threads that do)"
    );
    LEFT.lock().push(LeftMapped {
        release: release.to_owned(),
        copy: copy.to_owned(),
    });
}

/// The libraries closed earlier that are still mapped now.
pub fn left_mapped() -> Vec<LeftMapped> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return LEFT.lock().clone();
    };
    let mut left = LEFT.lock();
    left.retain(|l| maps_names(&maps, &l.copy));
    left.clone()
}

/// Whether `copy` appears in this process's memory map.
pub fn is_mapped(copy: &Path) -> bool {
    std::fs::read_to_string("/proc/self/maps").is_ok_and(|maps| maps_names(&maps, copy))
}

/// Whether a line of `maps` maps `path` (whose file may be deleted: ` (deleted)` follows).
fn maps_names(maps: &str, path: &Path) -> bool {
    let path = path.to_string_lossy();
    maps.lines().any(|line| {
        line.split_once('/').is_some_and(|(_, rest)| {
            let mapped = format!("/{rest}");
            let mapped = mapped.strip_suffix(" (deleted)").unwrap_or(&mapped);
            mapped == path
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_deleted_mappings() {
        let maps = "7f00-7f01 r-xp 00000000 08:01 42 /run/x/libapp-1-3.so (deleted)\n\
                    7f02-7f03 r--p 00000000 08:01 43 /usr/lib/libc.so.6\n";
        assert!(maps_names(maps, Path::new("/run/x/libapp-1-3.so")));
        assert!(!maps_names(maps, Path::new("/run/x/libapp-1-30.so")));
        assert!(maps_names(maps, Path::new("/usr/lib/libc.so.6")));
    }
}
