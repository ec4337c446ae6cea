//! The child's side: `molt __inspect`, a hidden subcommand. It opens the library (copy, hash,
//! pre-check, `dlopen`, descriptor checks) in its scratch directory and writes a [`Report`].

use crate::loader::{Expect, Plugin};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// What the child writes to its report file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) enum Report {
    /// The library opened and its descriptor passed.
    Ok(Box<super::Inspection>),
    /// The dry run's findings (`--dry-run`).
    DryRun(Box<super::DryRun>),
    /// The loader refused it (its message).
    Refused(String),
}

/// `molt __inspect` arguments (internal: written by [`super::Inspector`]).
#[derive(Debug, Args)]
pub struct ChildArgs {
    /// The library.
    #[arg(long)]
    library: PathBuf,
    /// Where the copy goes.
    #[arg(long)]
    scratch: PathBuf,
    /// Where the report goes.
    #[arg(long)]
    report: PathBuf,
    /// The app name expected.
    #[arg(long)]
    name: Option<String>,
    /// The version expected.
    #[arg(long)]
    version_is: Option<String>,
    /// The state schema expected.
    #[arg(long)]
    schema: Option<u32>,
    /// The sha256 expected.
    #[arg(long)]
    sha256: Option<String>,
    /// Run the rules, the lifecycle and the migration dry run instead (`molt check`).
    #[arg(long)]
    dry_run: bool,
    /// The library the checked one would replace (with `--dry-run`).
    #[arg(long)]
    against: Option<PathBuf>,
    /// A snapshot file whose state the dry run migrates (with `--dry-run`).
    #[arg(long)]
    state: Option<PathBuf>,
}

/// Runs the child: this process exists to be crashed, hung or exited by the library.
pub fn child_main(args: ChildArgs) -> ExitCode {
    if args.dry_run {
        let ask = super::dry_run::Ask {
            library: &args.library,
            against: args.against.as_deref(),
            state: args.state.as_deref(),
            scratch: &args.scratch,
        };
        let report = match super::dry_run::run(&ask) {
            Ok(dry_run) => Report::DryRun(Box::new(dry_run)),
            Err(message) => Report::Refused(message),
        };
        return write_report(&args.report, &report);
    }
    let expect = Expect {
        name: args.name,
        version: args.version_is,
        state_schema: args.schema,
        sha256: args.sha256,
    };
    let report = crate::loader::precheck(&args.library).and_then(|elf| {
        let plugin = Plugin::load_trusted(&args.library, &args.scratch, &expect)?;
        Ok(super::Inspection {
            info: plugin.info().clone(),
            elf,
        })
    });
    let report = match report {
        Ok(inspection) => Report::Ok(Box::new(inspection)),
        Err(e) => Report::Refused(e.to_string()),
    };
    write_report(&args.report, &report)
}

fn write_report(path: &std::path::Path, report: &Report) -> ExitCode {
    let written = serde_json::to_vec(report)
        .map_err(std::io::Error::other)
        .and_then(|json| std::fs::write(path, json));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("molt __inspect: cannot write the report {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}
