//! What can go wrong when loading a library, and when calling one of its hooks.

use std::fmt;
use std::path::PathBuf;

/// A library was refused by the loader. Every variant names the library (its path on the
/// release volume, not the private copy) and the check that failed; nothing was loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The path does not exist. `rlib` is `lib<name>.rlib` beside it, when there is one: the
    /// crate was built without `crate-type = ["cdylib"]`.
    #[error(
        "library {library}: no such file{}; molt loads the `.so` that cargo builds for a crate with \
         `[lib] crate-type = [\"cdylib\", \"rlib\"]` in its Cargo.toml: add that line, run \
         `cargo build --release`, and give target/release/lib<name>.so",
        rlib.as_ref().map(|r| format!(" ({} exists: the crate is built as an rlib only)", r.display())).unwrap_or_default()
    )]
    NotFound {
        /// The library.
        library: PathBuf,
        /// A `.rlib` of the same name beside it.
        rlib: Option<PathBuf>,
    },
    /// The file is a static archive (a `.rlib`), not a shared library.
    #[error(
        "library {library}: a Rust static library (rlib), not a shared library; add \
         `[lib] crate-type = [\"cdylib\", \"rlib\"]` to the crate's Cargo.toml and give the \
         `lib<name>.so` cargo then builds"
    )]
    StaticLibrary {
        /// The library.
        library: PathBuf,
    },
    /// Copying the library into the run directory failed.
    #[error("library {library}: cannot copy it to the run directory {run_dir}: {source}")]
    Copy {
        /// The library.
        library: PathBuf,
        /// The run directory it was copied to.
        run_dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The library could not be opened as an untrusted regular file.
    #[error("library {library}: {source}")]
    Unreadable {
        /// The library.
        library: PathBuf,
        /// The check that failed.
        source: crate::untrusted::UntrustedError,
    },
    /// The bytes copied (the ones that would be loaded) do not hash to the release's sha256.
    #[error("library {library}: sha256 check failed for the bytes copied to load: the release says {expected}, they hash to {actual}")]
    Checksum {
        /// The library.
        library: PathBuf,
        /// The release's digest.
        expected: String,
        /// The copy's digest.
        actual: String,
    },
    /// The ELF pre-check refused the file (nothing of it was run): not ELF, another machine,
    /// not a shared object, truncated, no entry function.
    #[error("library {library}: {source}")]
    Elf {
        /// The library.
        library: PathBuf,
        /// The check that failed.
        source: super::ElfError,
    },
    /// `dlopen` refused the file (not an ELF file, wrong architecture, missing dependency…).
    #[error("library {library}: dlopen failed: {source}")]
    Open {
        /// The library.
        library: PathBuf,
        /// dlopen's own message.
        source: libloading::Error,
    },
    /// The library does not export `molt_app_descriptor` (no `export_app!`).
    #[error("library {library}: no entry symbol `molt_app_descriptor` (is `molt_abi::export_app!` missing?): {source}")]
    MissingSymbol {
        /// The library.
        library: PathBuf,
        /// dlsym's message.
        source: libloading::Error,
    },
    /// The entry symbol returned a null pointer.
    #[error("library {library}: `molt_app_descriptor` returned a null descriptor")]
    NullDescriptor {
        /// The library.
        library: PathBuf,
    },
    /// The descriptor does not start with the molt magic: not a molt plugin.
    #[error("library {library}: descriptor magic is {found:#018x}, not molt's {expected:#018x}: not a molt plugin")]
    BadMagic {
        /// The library.
        library: PathBuf,
        /// The magic found.
        found: u64,
        /// [`molt_abi::ABI_MAGIC`].
        expected: u64,
    },
    /// The plugin was built against another ABI version.
    #[error(
        "library {library}: {} was built against molt ABI version {found}, this supervisor loads \
         ABI versions {supported:?}; rebuild it against molt-abi {} (ABI {})",
        app.as_deref().unwrap_or("the app"),
        molt_abi::CRATE_VERSION,
        molt_abi::ABI_VERSION
    )]
    AbiVersion {
        /// The library.
        library: PathBuf,
        /// The app's name and version (`counter 2.0.0`), when the descriptor lets them be read.
        app: Option<String>,
        /// The version the plugin claims.
        found: u32,
        /// [`molt_abi::ABI_VERSIONS`].
        supported: &'static [u32],
    },
    /// The descriptor is smaller than the one this supervisor knows.
    #[error("library {library}: descriptor is {found} bytes, this supervisor needs at least {expected}")]
    DescriptorSize {
        /// The library.
        library: PathBuf,
        /// The size the plugin claims.
        found: u32,
        /// [`molt_abi::DESCRIPTOR_V1_SIZE`], the smallest descriptor of any ABI version.
        expected: u32,
    },
    /// The app name or version is not UTF-8.
    #[error("library {library}: descriptor field `{field}` is not UTF-8")]
    BadUtf8 {
        /// The library.
        library: PathBuf,
        /// `name` or `version`.
        field: &'static str,
    },
    /// The descriptor does not match what the release promised (its manifest).
    #[error("library {library}: {field} is {found}, the release says {expected}")]
    Mismatch {
        /// The library.
        library: PathBuf,
        /// `name`, `version` or `state schema`.
        field: &'static str,
        /// What [`crate::loader::Expect`] asked for.
        expected: String,
        /// What the descriptor says.
        found: String,
    },
}

/// One of the hooks a plugin exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `create`: a fresh instance.
    Create,
    /// `handle`: one request.
    Handle,
    /// `export_state`.
    Export,
    /// `import_state`.
    Import,
    /// `health`.
    Health,
    /// `upgrade_record` (ABI version 2).
    UpgradeRecord,
    /// `downgrade_record` (ABI version 2).
    DowngradeRecord,
    /// `tick`: periodic work.
    Tick,
    /// `merge_state`: absorbing a peer's state (a handoff).
    Merge,
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::Create => "create",
            Hook::Handle => "handle",
            Hook::Export => "export_state",
            Hook::Import => "import_state",
            Hook::Health => "health",
            Hook::UpgradeRecord => "upgrade_record",
            Hook::DowngradeRecord => "downgrade_record",
            Hook::Tick => "tick",
            Hook::Merge => "merge_state",
        })
    }
}

/// How a hook failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookErrorKind {
    /// The hook returned an error ([`molt_abi::STATUS_ERROR`], or a broken answer).
    Error,
    /// The hook panicked; the plugin's shim caught it ([`molt_abi::STATUS_PANIC`]).
    Panic,
}

/// A hook returned an error or panicked. The message is the plugin's own, verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HookError {
    /// The hook that failed.
    pub hook: Hook,
    /// Error or panic.
    pub kind: HookErrorKind,
    /// The plugin's message (for a panic, `panicked: …`).
    pub message: String,
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            // The shims already start a panic's message with `panicked`: don't say it twice.
            HookErrorKind::Panic if self.message.starts_with("panicked") => {
                write!(f, "{} {}", self.hook, self.message)
            }
            HookErrorKind::Panic => write!(f, "{} panicked: {}", self.hook, self.message),
            _ => write!(f, "{} failed: {}", self.hook, self.message),
        }
    }
}
