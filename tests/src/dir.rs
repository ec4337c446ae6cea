//! A fresh directory per test (like ripgrep's `tests/util.rs`), removed when dropped.

use std::path::{Path, PathBuf};

/// A directory of one test. It lives under the artifacts target directory rather than the
/// system temp dir: plugins are `dlopen`ed from run directories inside it, and `/tmp` is
/// mounted `noexec` on some machines and containers.
#[derive(Debug)]
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    /// A new empty directory whose name starts with `name` (say, the test's name).
    pub fn new(name: &str) -> TestDir {
        let parent = crate::artifacts::target_dir().join("tmp");
        std::fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&parent)
            .unwrap_or_else(|e| panic!("creating a test directory in {}: {e}", parent.display()));
        TestDir { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory (nothing is created).
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.path().join(relative)
    }

    /// Creates a subdirectory (and its parents) and returns its path.
    pub fn mkdir(&self, relative: impl AsRef<Path>) -> PathBuf {
        let path = self.join(relative);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        path
    }

    /// Writes a file (creating its parent directories) and returns its path.
    pub fn write(&self, relative: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Keeps the directory on disk after the test (to look at it) and returns its path.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}
