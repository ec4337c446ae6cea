//! `molt check LIB`: open a library in a child process and print what it says it is.

use crate::inspect::{Inspection, Inspector, DEFAULT_DEADLINE};
use crate::loader::{Expect, PluginInfo};
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `molt check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The library (a cdylib built against molt-abi).
    library: PathBuf,
    /// How long opening the library may take before it is refused.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
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

/// Prints the library's app, version, ABI, schemas, architecture and constructors.
pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let Inspection { info, elf } = inspect_with(&args.library, args.timeout)?;
    println!("{}: ok", args.library.display());
    println!("  app           {}", info.name);
    println!("  version       {}", info.version);
    println!("  abi           {}", info.abi_version);
    println!("  state schema  {}", info.state_schema);
    println!("  imports       {:?}", info.imports);
    println!("  exports       {:?}", info.exports);
    println!("  machine       {}", elf.machine);
    println!(
        "  constructors  {} (.init_array: code that runs whenever the library is opened)",
        elf.constructors
    );
    println!("  sha256        {}", info.sha256);
    Ok(())
}
