//! Foreign code at arm's length: opening a library you do not (yet) run, in a child process.
//!
//! Opening a library runs its constructors, and reading its descriptor calls its entry
//! symbol. A constructor that calls `exit`, crashes or hangs, or a `molt_app_descriptor` that
//! is not the function it claims to be, would take the opener down with it. So everything that
//! only *inspects* a library (`molt check`, `molt push`'s pre-checks, `POST /releases`, which
//! only stores) does it through an [`Inspector`]:
//!
//! 1. the ELF pre-check runs here ([`crate::loader::precheck`]: reads the file, runs
//!    nothing): another machine's ELF, a truncated file or an entry symbol that is no function
//!    is refused before any process starts;
//! 2. molt re-executes itself (`molt __inspect`, a hidden subcommand) to copy, hash, open and
//!    read the library in a scratch directory, and write what it found to a report file;
//! 3. this side waits for it with a deadline: a report is the answer; an exit without one, a
//!    signal, or the deadline (the child is then killed) is a refusal that says which.
//!
//! Nothing the child does can reach the calling process. It is not a sandbox: the child runs
//! as the same user, with the same files; it keeps a bad library from taking molt down, not
//! from doing harm. A release that is *run* is loaded in the supervisor itself (see the
//! README's limits).

mod child;
mod dry_run;
mod lifecycle;
mod rules;
mod wait;

pub use child::{child_main, ChildArgs};
pub use dry_run::{DryRun, Step};
pub use rules::Rule;

use crate::loader::{ElfFacts, Expect, LoadError, PluginInfo};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long an inspection may take by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The hidden subcommand the child runs.
pub const SUBCOMMAND: &str = "__inspect";

/// What an inspection found: the descriptor's contents (with the digest of the bytes
/// opened) and the ELF facts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inspection {
    /// What the library says it is.
    pub info: PluginInfo,
    /// What its ELF headers say (architecture, constructors).
    pub elf: ElfFacts,
}

/// Why an inspection refused a library. Every message names the library and the check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// Refused before or while loading, with the loader's reason.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The child reported a refusal (the loader's message, as the child rendered it).
    #[error("{0}")]
    Refused(String),
    /// The child exited without a report: a constructor called `exit`, or similar.
    #[error(
        "library {library}: opening it ended the inspecting process with exit status {code} before \
         it could report (does a constructor call exit?){stderr}"
    )]
    Exited {
        /// The library.
        library: PathBuf,
        /// The exit status.
        code: i32,
        /// The end of the child's stderr, escaped, or nothing.
        stderr: String,
    },
    /// The child was killed by a signal: a constructor or the entry symbol crashed.
    #[error(
        "library {library}: opening it crashed the inspecting process with signal {signal} ({name}){stderr}"
    )]
    Crashed {
        /// The library.
        library: PathBuf,
        /// The signal number.
        signal: i32,
        /// Its name.
        name: &'static str,
        /// The end of the child's stderr, escaped, or nothing.
        stderr: String,
    },
    /// The child did not finish within the deadline and was killed.
    #[error(
        "library {library}: opening it did not finish within {} (does a constructor hang?); \
         the inspecting process was killed", humantime::format_duration(*.deadline)
    )]
    TimedOut {
        /// The library.
        library: PathBuf,
        /// The deadline.
        deadline: Duration,
    },
    /// The child could not be started, or its report not read.
    #[error("cannot inspect library {library}: {what}: {source}")]
    Io {
        /// The library.
        library: PathBuf,
        /// What failed.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Opens libraries in a child process (see the module docs).
#[derive(Debug, Clone)]
pub struct Inspector {
    exe: PathBuf,
    deadline: Duration,
}

impl Inspector {
    /// An inspector that runs `exe` (a `molt` binary) as the child.
    pub fn new(exe: impl Into<PathBuf>) -> Inspector {
        Inspector {
            exe: exe.into(),
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// An inspector that runs this very binary (which must be `molt`).
    pub fn current() -> std::io::Result<Inspector> {
        Ok(Inspector::new(std::env::current_exe()?))
    }

    /// The same inspector with another deadline.
    pub fn with_deadline(self, deadline: Duration) -> Inspector {
        Inspector { deadline, ..self }
    }

    /// The deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Inspects `library`: pre-checks it here, then opens a copy of it in a child process
    /// (scratch directory under `scratch_parent`, which must allow executable mappings) and
    /// checks its descriptor against `expect` (and its bytes against `expect.sha256`).
    pub fn inspect(
        &self,
        library: &Path,
        scratch_parent: &Path,
        expect: &Expect,
    ) -> Result<Inspection, InspectError> {
        crate::loader::precheck(library)?;
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        if let Some(name) = &expect.name {
            args.extend(["--name".into(), name.into()]);
        }
        if let Some(version) = &expect.version {
            args.extend(["--version-is".into(), version.into()]);
        }
        if let Some(schema) = expect.state_schema {
            args.extend(["--schema".into(), schema.to_string().into()]);
        }
        if let Some(sha) = &expect.sha256 {
            args.extend(["--sha256".into(), sha.into()]);
        }
        match self.spawn(library, scratch_parent, &args)? {
            child::Report::Ok(inspection) => Ok(*inspection),
            child::Report::Refused(message) => Err(InspectError::Refused(message)),
            child::Report::DryRun(_) => Err(InspectError::Refused(format!(
                "library {}: the inspecting process answered with a dry run",
                library.display()
            ))),
        }
    }

    /// `molt check`'s dry run in a child process: the rules, the lifecycle (threads that
    /// outlive `destroy`, a library that stays mapped) and the migration from `against` to
    /// `library` and back, on the state of the snapshot file `state` or on fresh state.
    pub fn dry_run(
        &self,
        library: &Path,
        against: Option<&Path>,
        state: Option<&Path>,
        scratch_parent: &Path,
    ) -> Result<DryRun, InspectError> {
        crate::loader::precheck(library)?;
        let mut args: Vec<std::ffi::OsString> = vec!["--dry-run".into()];
        if let Some(old) = against {
            crate::loader::precheck(old)?;
            args.extend(["--against".into(), old.into()]);
        }
        if let Some(state) = state {
            args.extend(["--state".into(), state.into()]);
        }
        match self.spawn(library, scratch_parent, &args)? {
            child::Report::DryRun(dry_run) => Ok(*dry_run),
            child::Report::Refused(message) => Err(InspectError::Refused(message)),
            child::Report::Ok(_) => Err(InspectError::Refused(format!(
                "library {}: the inspecting process did not run the dry run",
                library.display()
            ))),
        }
    }

    /// Runs the child on `library` with `args` and reads its report.
    fn spawn(
        &self,
        library: &Path,
        scratch_parent: &Path,
        args: &[std::ffi::OsString],
    ) -> Result<child::Report, InspectError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| InspectError::Io {
                library: library.to_owned(),
                what,
                source,
            }
        };
        std::fs::create_dir_all(scratch_parent).map_err(io("creating the scratch directory"))?;
        let scratch = tempfile::Builder::new()
            .prefix("molt-inspect-")
            .tempdir_in(scratch_parent)
            .map_err(io("creating the scratch directory"))?;
        let report = scratch.path().join("report.json");
        let stderr_path = scratch.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).map_err(io("creating the child's stderr file"))?;
        let mut command = Command::new(&self.exe);
        command
            .arg(SUBCOMMAND)
            .arg("--library")
            .arg(library)
            .arg("--scratch")
            .arg(scratch.path())
            .arg("--report")
            .arg(&report)
            .env("MOLT_LOG", "warn")
            .env_remove("MOLT_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // A group of its own, so that what a constructor starts can be ended with it.
            .process_group(0);
        command.args(args);
        let child = command
            .spawn()
            .map_err(io(&format!("starting {}", self.exe.display())))?;
        let status = wait::with_deadline(child, self.deadline).map_err(io("waiting for the child"))?;
        let tail = || stderr_tail(&stderr_path);
        let Some(status) = status else {
            return Err(InspectError::TimedOut {
                library: library.to_owned(),
                deadline: self.deadline,
            });
        };
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Err(InspectError::Crashed {
                library: library.to_owned(),
                signal,
                name: wait::signal_name(signal),
                stderr: tail(),
            });
        }
        let code = status.code().unwrap_or(-1);
        let parsed = match (code, std::fs::read(&report)) {
            (0, Ok(bytes)) => serde_json::from_slice::<child::Report>(&bytes).ok(),
            _ => None,
        };
        parsed.ok_or_else(|| InspectError::Exited {
            library: library.to_owned(),
            code,
            stderr: tail(),
        })
    }
}

/// The last bytes the child wrote to stderr, escaped and cut, as `; it wrote: …` (or nothing).
fn stderr_tail(path: &Path) -> String {
    const SHOWN: usize = 240;
    let bytes = crate::untrusted::read(path, None, 1 << 20).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text.len().saturating_sub(SHOWN);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!(
        "; it wrote: {}",
        crate::untrusted::excerpt(&text.as_bytes()[start..], SHOWN)
    )
}
