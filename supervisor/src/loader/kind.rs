//! What kind of file a library path names, checked before anything is copied or opened, so
//! the two commonest authoring slips get a message that says how to fix them:
//!
//! - the path does not exist, usually because the crate is not built as a `cdylib` (cargo then
//!   writes only `lib<name>.rlib`, and no `.so` appears where the author expects it);
//! - the path is that `.rlib`: a static archive (`!<arch>`), which `dlopen` calls an "invalid
//!   ELF header".

use super::LoadError;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The first bytes of an `ar` archive, which a `.rlib` is.
const AR_MAGIC: &[u8] = b"!<arch>\n";

/// Refuses a path that is missing or names a static archive; anything else is left to the
/// copy, the ELF check and `dlopen`.
pub(crate) fn check(library: &Path) -> Result<(), LoadError> {
    // Opened as an untrusted file: a FIFO or a device is not even opened for reading here.
    let mut file = match crate::untrusted::open(library, None, u64::MAX) {
        Ok(opened) => opened.file,
        Err(e) if e.is_missing() => {
            return Err(LoadError::NotFound {
                library: library.to_owned(),
                rlib: sibling_rlib(library),
            })
        }
        // Other refusals (a FIFO, a directory, permissions…) are the copy's to report.
        Err(_) => return Ok(()),
    };
    let mut head = [0u8; 8];
    let read = file.read(&mut head).unwrap_or(0);
    if head[..read] == *AR_MAGIC {
        return Err(LoadError::StaticLibrary {
            library: library.to_owned(),
        });
    }
    Ok(())
}

/// `lib<name>.rlib` beside a missing `lib<name>.so`: the sign of a crate built without
/// `crate-type = ["cdylib"]`.
fn sibling_rlib(library: &Path) -> Option<PathBuf> {
    let rlib = library.with_extension("rlib");
    (rlib != library && rlib.is_file()).then_some(rlib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_paths_and_archives_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let so = dir.path().join("libapp.so");
        let err = check(&so).unwrap_err();
        assert!(matches!(&err, LoadError::NotFound { rlib: None, .. }), "{err}");
        assert!(
            err.to_string().contains("crate-type = [\"cdylib\", \"rlib\"]"),
            "{err}"
        );

        let rlib = dir.path().join("libapp.rlib");
        std::fs::write(
            &rlib,
            b"!<arch>\n/               0           0     0     0       8       `\n",
        )
        .unwrap();
        let err = check(&so).unwrap_err();
        assert!(
            matches!(&err, LoadError::NotFound { rlib: Some(r), .. } if *r == rlib),
            "{err}"
        );
        assert!(err.to_string().contains("libapp.rlib exists"), "{err}");
        let err = check(&rlib).unwrap_err();
        assert!(matches!(err, LoadError::StaticLibrary { .. }), "{err}");
        assert!(err.to_string().contains("not a shared library"), "{err}");

        std::fs::write(&so, b"\x7fELF").unwrap();
        assert!(check(&so).is_ok());
    }
}
