//! The `molt` command line: one file per command, parsed by clap.
//!
//! Exit codes: `0` done, `1` refused or failed (the message says what and why, and what still
//! runs), `2` usage error.

mod absorb;
mod activate;
mod chain;
mod check;
mod confirm;
mod demo;
mod handoff;
mod keygen;
mod new;
mod preflight;
mod prune;
mod push;
mod releases;
mod run;
mod status;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// molt: hot-code-swap release manager for long-lived containers.
#[derive(Debug, Parser)]
#[command(name = "molt", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MOLT_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the supervisor: serve the app named by the volume's `current`, swap when it changes.
    Run(run::RunArgs),
    /// Publish a built library as a release (onto a volume, or through control APIs).
    Push(push::PushArgs),
    /// Make a published version the one that runs.
    Activate(activate::ActivateArgs),
    /// Go back to the version that served before (never forward, never to a bad release).
    Rollback(activate::RollbackArgs),
    /// Remove old releases from a volume, keeping what is still needed.
    Prune(prune::PruneArgs),
    /// List the releases on a volume.
    Releases(releases::ReleasesArgs),
    /// Show what a supervisor runs.
    Status(status::StatusArgs),
    /// Make an ed25519 key pair for signing releases.
    Keygen(keygen::KeygenArgs),
    /// Inspect a library: open it in a child process and check it against the ABI.
    Check(check::CheckArgs),
    /// Start an app crate (or, with --next-of, the next version of one) that builds as it is.
    New(new::NewArgs),
    /// Hand a departing supervisor's state to a live peer, exactly once (scale-down).
    Handoff(handoff::HandoffArgs),
    /// Merge the snapshot of a pod that is gone into a live supervisor, once.
    Absorb(absorb::AbsorbArgs),
    /// Show molt at work: push counter v1, then v2 under traffic, then roll back.
    Demo(demo::DemoArgs),
    /// Internal: open a library in this (child) process and report on it (see `inspect`).
    #[command(name = "__inspect", hide = true)]
    Inspect(crate::inspect::ChildArgs),
}

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Inspect(args) = cli.command {
        init_logging(LogFormat::Text, "warn");
        return crate::inspect::child_main(args);
    }
    // The demo tells its own story on stdout; its library logs would only interleave.
    let default_level = if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info"
    };
    init_logging(cli.log_format, default_level);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Push(args) => push::run(args),
        Command::Activate(args) => activate::activate(args),
        Command::Rollback(args) => activate::rollback(args),
        Command::Prune(args) => prune::run(args),
        Command::Releases(args) => releases::run(args),
        Command::Status(args) => status::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Check(args) => check::run(args),
        Command::New(args) => new::run(args),
        Command::Handoff(args) => handoff::run(args),
        Command::Absorb(args) => absorb::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Inspect(_) => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("molt: {}", chain::line(&*e));
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MOLT_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Reads a token file (surrounding whitespace trimmed): a regular file of at most 4 KiB (no
/// FIFO or device); an empty file is an error.
fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let bytes = crate::untrusted::read(path, None, crate::untrusted::MAX_TOKEN_FILE)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = String::from_utf8(bytes)
        .with_context(|| format!("the token file {} is not UTF-8", path.display()))?
        .trim()
        .to_owned();
    anyhow::ensure!(!token.is_empty(), "the token file {} is empty", path.display());
    Ok(token)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap's own checks (argument ids clashing with `--version`, and the like), which
        // otherwise only fire when a debug build parses that subcommand.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
