//! `molt check LIB`: load a library in a scratch directory and print what it says it is.

use crate::loader::{Expect, Plugin, PluginInfo};
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};

/// `molt check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The library (a cdylib built against molt-abi).
    library: PathBuf,
}

/// Loads `library` (a copy, in a scratch directory) and returns its descriptor's contents.
///
/// Loading runs the library's initialisers, as running it would: inspect only what you mean
/// to run.
pub fn inspect(library: &Path) -> anyhow::Result<PluginInfo> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let plugin = Plugin::load(library, scratch.path(), &Expect::any())?;
    Ok(plugin.info().clone())
}

/// Prints the library's app, version, ABI and schemas.
pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let info = inspect(&args.library)?;
    println!("{}: ok", args.library.display());
    println!("  app           {}", info.name);
    println!("  version       {}", info.version);
    println!("  abi           {}", info.abi_version);
    println!("  state schema  {}", info.state_schema);
    println!("  imports       {:?}", info.imports);
    println!("  exports       {:?}", info.exports);
    Ok(())
}
