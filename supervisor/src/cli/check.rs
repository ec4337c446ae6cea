//! `molt check LIB [--against OLD | --volume DIR --app NAME] [--state SNAPSHOT]`: open a
//! library in a child process, print what it says it is, then check the rules, run its
//! lifecycle once and dry-run the migration from the old version and back (see
//! [`crate::inspect::DryRun`]). Exit 1 when a rule fails.

use crate::inspect::{DryRun, Inspection, Inspector, DEFAULT_DEADLINE};
use crate::loader::{Expect, PluginInfo};
use crate::volume::Volume;
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `molt check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The library (a cdylib built against molt-abi).
    library: PathBuf,
    /// How long opening the library (and, separately, the dry run) may take before it is refused.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The library LIB would replace: dry-run the upgrade from it and the rollback to it.
    #[arg(long, value_name = "OLD_LIB", conflicts_with = "volume")]
    against: Option<PathBuf>,
    /// Take the library to replace from a release volume: the release `current` names.
    #[arg(long, value_name = "DIR", requires = "app")]
    volume: Option<PathBuf>,
    /// The app on `--volume`.
    #[arg(long, requires = "volume")]
    app: Option<String>,
    /// A snapshot file (from a supervisor's state directory): migrate its state rather than
    /// the old version's freshly created state.
    #[arg(long, value_name = "SNAPSHOT_FILE")]
    state: Option<PathBuf>,
}

/// Opens a copy of `library` in a child process ([`crate::inspect`]) with `deadline`, and
/// returns what it found. A constructor that exits, crashes or hangs is a refusal.
pub fn inspect_with(library: &Path, deadline: Duration) -> anyhow::Result<Inspection> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let inspector = Inspector::current()
        .context("cannot find the molt binary to inspect with")?
        .with_deadline(deadline);
    Ok(inspector.inspect(library, scratch.path(), &Expect::any())?)
}

/// What the library says it is ([`inspect_with`] with the default deadline).
pub fn inspect(library: &Path) -> anyhow::Result<PluginInfo> {
    Ok(inspect_with(library, DEFAULT_DEADLINE)?.info)
}

/// Prints the library's app, version, ABI, schemas, architecture and constructors, then the
/// dry run's rules and steps.
pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let Inspection { info, elf } = inspect_with(&args.library, args.timeout)?;
    println!("{}: ok", args.library.display());
    println!("  app           {}", info.name);
    println!("  version       {}", info.version);
    println!("  abi           {}", info.abi_version);
    println!("  state schema  {}", info.state_schema);
    println!("  imports       {:?}", info.imports);
    println!("  exports       {:?}", info.exports);
    if info.tick_interval_ms > 0 {
        println!("  tick          every {} ms", info.tick_interval_ms);
    }
    println!("  machine       {}", elf.machine);
    println!(
        "  constructors  {} (.init_array: code that runs whenever the library is opened)",
        elf.constructors
    );
    println!("  sha256        {}", info.sha256);

    let against = match (&args.against, &args.volume, &args.app) {
        (Some(old), _, _) => Some(old.clone()),
        (None, Some(volume), Some(app)) => Some(running_library(volume, app)?),
        _ => None,
    };
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let inspector = Inspector::current()
        .context("cannot find the molt binary to inspect with")?
        .with_deadline(args.timeout);
    let dry_run = inspector.dry_run(
        &args.library,
        against.as_deref(),
        args.state.as_deref(),
        scratch.path(),
    )?;
    print!("{}", render(&dry_run));
    let failed: Vec<&str> = dry_run
        .rules
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.rule.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} {} refused by molt check: {}",
            info.name,
            info.version,
            failed.join("; ")
        );
    }
    Ok(())
}

/// The library of the release `current` names on `volume`, verified.
fn running_library(volume: &Path, app: &str) -> anyhow::Result<PathBuf> {
    let volume = Volume::new(volume);
    let current = volume
        .current(app)?
        .with_context(|| format!("{} has no current release of {app}", volume.root().display()))?;
    Ok(volume.verify_release(app, &current)?.library)
}

/// The dry run as text: rules, then the steps with sizes and times.
fn render(dry_run: &DryRun) -> String {
    let mut out = String::new();
    match &dry_run.old {
        Some(old) => out.push_str(&format!(
            "checked against {} {} (schema {}); state: {}\n",
            old.name, old.version, old.state_schema, dry_run.state
        )),
        None => out.push_str(&format!("checked alone; state: {}\n", dry_run.state)),
    }
    out.push_str("rules\n");
    for rule in &dry_run.rules {
        let mark = if rule.ok { "ok  " } else { "FAIL" };
        out.push_str(&format!("  {mark}  {}: {}\n", rule.rule, rule.detail));
    }
    if !dry_run.steps.is_empty() {
        out.push_str("steps\n");
        for step in &dry_run.steps {
            out.push_str(&format!(
                "  {:<34} schema {:<3} {:>10} bytes  {:>9.3} ms\n",
                step.what,
                step.schema,
                step.bytes,
                step.took.as_secs_f64() * 1e3
            ));
        }
    }
    out
}
