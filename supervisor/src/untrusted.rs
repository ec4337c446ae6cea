//! Reading files nobody vouches for: the volume's pointers, manifests and libraries, and the
//! state directory's snapshots. Whoever can write the volume can put anything there: a FIFO
//! (whose `open` blocks until a writer comes), `/dev/zero` behind a symlink (endless), a
//! symlink to a secret (echoed back in an error), a 1.5 GB one-line manifest.
//!
//! [`open`] is the one way in, and every such read goes through it:
//! - the path is resolved (symlinks followed) and must stay inside `root`, the volume or the
//!   state directory: a symlink that leaves it is refused before anything is opened;
//! - the resolved path is opened with `O_NOFOLLOW | O_NONBLOCK` (so neither a symlink swapped
//!   in meanwhile nor a FIFO can make it block), and the *open handle* must be a regular file:
//!   no FIFO, device, socket or directory;
//! - a file longer than the caller's limit is refused before a byte is read, and [`read`]
//!   reads through `.take(limit)` in case it grows meanwhile.
//!
//! These are blocking calls: async code runs them in `spawn_blocking`. What they read is
//! never echoed: errors name the path and the check; [`excerpt`] shows untrusted text
//! truncated and escaped when a message must quote some.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The most `current` or `previous` may hold (a version is at most 255 bytes).
pub const MAX_POINTER: u64 = 4 * 1024;
/// The most a `release.toml` may hold.
pub const MAX_MANIFEST: u64 = 64 * 1024;
/// The largest library accepted, on the volume or uploaded.
pub const MAX_LIBRARY: u64 = 1 << 30;
/// The most a token file may hold.
pub const MAX_TOKEN_FILE: u64 = 4 * 1024;
/// The most foreign text (a refusal's error, a version echoed from a request, a hook's
/// message) kept where `/status`, an HTTP answer or a supervisor report carries it.
pub const MAX_NOTE: usize = 4 * 1024;

/// Why an untrusted file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UntrustedError {
    /// Nothing is there.
    #[error("{path} does not exist")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// It resolves (through a symlink) to somewhere outside the directory it must stay in.
    #[error("{path} is refused: it resolves to {resolved}, outside {root}")]
    Outside {
        /// The path.
        path: PathBuf,
        /// Where it leads.
        resolved: PathBuf,
        /// Where it must stay.
        root: PathBuf,
    },
    /// It is not a regular file.
    #[error("{path} is refused: it is {kind}, not a regular file")]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// `a FIFO`, `a directory`, `a character device`…
        kind: &'static str,
    },
    /// It is larger than allowed.
    #[error("{path} is refused: it holds {len} bytes, more than the {limit} allowed")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its length (at least this many bytes).
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// Another I/O error.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl UntrustedError {
    /// Whether the file simply does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, UntrustedError::Missing { .. })
    }

    /// The error as an `io::Error` (the same message), for callers whose errors carry one.
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            UntrustedError::Missing { .. } => io::ErrorKind::NotFound,
            UntrustedError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self.to_string())
    }
}

/// An untrusted regular file, open for reading, and its length when it was opened.
#[derive(Debug)]
pub struct Opened {
    /// The open file.
    pub file: File,
    /// Its length.
    pub len: u64,
    /// The path it was opened by (symlinks resolved).
    pub resolved: PathBuf,
}

/// Opens `path` for reading if it resolves inside `root` (`None`: anywhere), is a regular
/// file, and holds at most `limit` bytes. See the module docs.
pub fn open(path: &Path, root: Option<&Path>, limit: u64) -> Result<Opened, UntrustedError> {
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            UntrustedError::Missing { path: path.into() }
        } else {
            UntrustedError::Io {
                path: path.into(),
                source,
            }
        }
    };
    let resolved = path.canonicalize().map_err(io_err)?;
    if let Some(root) = root {
        let real_root = root.canonicalize().map_err(|source| UntrustedError::Io {
            path: root.into(),
            source,
        })?;
        if !resolved.starts_with(&real_root) {
            return Err(UntrustedError::Outside {
                path: path.into(),
                resolved,
                root: real_root,
            });
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&resolved)
        .map_err(|source| match source.raw_os_error() {
            // The last component became a symlink after it was resolved.
            Some(libc::ELOOP) => UntrustedError::NotRegular {
                path: path.into(),
                kind: "a symlink",
            },
            _ => io_err(source),
        })?;
    let meta = file.metadata().map_err(io_err)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let kind = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(UntrustedError::NotRegular {
            path: path.into(),
            kind,
        });
    }
    if meta.len() > limit {
        return Err(UntrustedError::TooLarge {
            path: path.into(),
            len: meta.len(),
            limit,
        });
    }
    Ok(Opened {
        file,
        len: meta.len(),
        resolved,
    })
}

/// Where `path` leads (symlinks resolved), if that is inside `root`: for directories, which
/// [`open`] does not take (a release directory symlinked out of the volume is refused here).
pub fn resolve_within(path: &Path, root: &Path) -> Result<PathBuf, UntrustedError> {
    let resolved = path.canonicalize().map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            UntrustedError::Missing { path: path.into() }
        } else {
            UntrustedError::Io {
                path: path.into(),
                source,
            }
        }
    })?;
    let real_root = root.canonicalize().map_err(|source| UntrustedError::Io {
        path: root.into(),
        source,
    })?;
    if resolved.starts_with(&real_root) {
        Ok(resolved)
    } else {
        Err(UntrustedError::Outside {
            path: path.into(),
            resolved,
            root: real_root,
        })
    }
}

/// Reads an untrusted file whole ([`open`], then at most `limit` bytes).
pub fn read(path: &Path, root: Option<&Path>, limit: u64) -> Result<Vec<u8>, UntrustedError> {
    let opened = open(path, root, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len).unwrap_or(0));
    opened
        .file
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| UntrustedError::Io {
            path: path.into(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(UntrustedError::TooLarge {
            path: path.into(),
            len: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// At most `max` bytes of untrusted text, escaped (no newlines, quotes or control characters
/// survive), with the length when it was cut: fit for a log line or `/status`.
pub fn excerpt(text: &[u8], max: usize) -> String {
    let shown = &text[..text.len().min(max)];
    let mut out = shown.escape_ascii().to_string();
    if text.len() > max {
        out.push_str(&format!("… ({} bytes)", text.len()));
    }
    out
}

/// `text` cut (on character boundaries) to what serves as at most [`MAX_NOTE`] bytes of JSON:
/// foreign text kept in a record that others read. A long text keeps its start and its end
/// (where a refusal says what still serves), and says how much was cut between. Control
/// characters count six bytes (`\u0001`), quotes and backslashes two, as JSON escapes them;
/// nothing is escaped here.
pub fn note(text: &str) -> String {
    fn served(c: char) -> usize {
        match c {
            '"' | '\\' => 2,
            c if c.is_control() => 6,
            c => c.len_utf8(),
        }
    }
    if text.chars().map(served).sum::<usize>() <= MAX_NOTE {
        return text.to_owned();
    }
    let (head_budget, tail_budget) = (MAX_NOTE * 3 / 4, MAX_NOTE / 8);
    let mut head = 0;
    let mut used = 0;
    for (i, c) in text.char_indices() {
        used += served(c);
        if used > head_budget {
            break;
        }
        head = i + c.len_utf8();
    }
    let mut tail = text.len();
    used = 0;
    for (i, c) in text.char_indices().rev() {
        used += served(c);
        if used > tail_budget || i < head {
            break;
        }
        tail = i;
    }
    format!(
        "{}… ({} bytes cut) …{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_inside_are_read_and_the_rest_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("ok"), b"1.0.0\n").unwrap();
        assert_eq!(read(&root.join("ok"), Some(&root), 64).unwrap(), b"1.0.0\n");

        std::fs::write(dir.path().join("secret"), b"root:x:0:0").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("out")).unwrap();
        let err = read(&root.join("out"), Some(&root), 64).unwrap_err();
        assert!(matches!(err, UntrustedError::Outside { .. }), "{err}");
        assert!(!err.to_string().contains("root:x"), "{err}");
        std::os::unix::fs::symlink("ok", root.join("in")).unwrap();
        assert_eq!(read(&root.join("in"), Some(&root), 64).unwrap(), b"1.0.0\n");

        let err = read(&root, None, 64).unwrap_err();
        assert!(
            err.to_string().ends_with("it is a directory, not a regular file"),
            "{err}"
        );
        let err = read(Path::new("/dev/zero"), None, 64).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("it is a character device, not a regular file"),
            "{err}"
        );
        let fifo = root.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = read(&fifo, Some(&root), 64).unwrap_err();
        assert!(
            err.to_string().ends_with("it is a FIFO, not a regular file"),
            "{err}"
        );

        std::fs::write(root.join("big"), vec![b'x'; 100]).unwrap();
        let err = read(&root.join("big"), Some(&root), 64).unwrap_err();
        assert!(
            matches!(
                err,
                UntrustedError::TooLarge {
                    len: 100,
                    limit: 64,
                    ..
                }
            ),
            "{err}"
        );
        assert!(read(&root.join("absent"), Some(&root), 64)
            .unwrap_err()
            .is_missing());
    }

    #[test]
    fn excerpts_are_escaped_and_cut() {
        assert_eq!(excerpt(b"1.0\n\"x\"", 64), "1.0\\n\\\"x\\\"");
        assert_eq!(excerpt(&[b'a'; 10], 4), "aaaa… (10 bytes)");
    }

    #[test]
    fn notes_keep_their_start_and_end_and_say_what_was_cut() {
        assert_eq!(note("1.0.0"), "1.0.0");
        let long = format!("{}; counter 1.0.0 still serving", "x".repeat(300_000));
        let kept = note(&long);
        assert!(kept.len() < MAX_NOTE, "{}", kept.len());
        assert!(
            kept.starts_with("xxx") && kept.ends_with("; counter 1.0.0 still serving"),
            "{kept}"
        );
        assert!(kept.contains(" bytes cut) …"), "{kept}");
        let accents = "é".repeat(3000);
        assert!(note(&accents).starts_with('é') && note(&accents).ends_with('é'));
        let controls = "\u{1}".repeat(21_838);
        let served = serde_json::to_string(&note(&controls)).unwrap();
        assert!(served.len() < MAX_NOTE + 64, "{}", served.len());
    }
}
