//! `molt prune --volume DIR --app NAME --keep N`: remove old releases (see
//! `crate::volume::Volume::prune` for what is never removed).

use crate::volume::{Pruned, Volume};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// `molt prune` arguments.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The release volume.
    #[arg(long)]
    volume: PathBuf,
    /// The app.
    #[arg(long)]
    app: String,
    /// How many of the newest releases to keep (besides those still needed).
    #[arg(long, value_name = "N")]
    keep: usize,
}

/// Prunes and says what went and what stayed for a reason.
pub fn run(args: PruneArgs) -> anyhow::Result<()> {
    let volume = Volume::new(&args.volume);
    let pruned = volume.prune(&args.app, args.keep, Duration::from_secs(30))?;
    for line in describe(&args.app, args.keep, &pruned) {
        println!("{line}");
    }
    Ok(())
}

/// The lines that tell what a prune did.
pub fn describe(app: &str, keep: usize, pruned: &Pruned) -> Vec<String> {
    let mut lines = Vec::new();
    if pruned.removed.is_empty() {
        lines.push(format!("{app}: nothing to prune beyond the newest {keep}"));
    } else {
        lines.push(format!("{app}: removed {}", pruned.removed.join(", ")));
    }
    for (version, why) in &pruned.protected {
        lines.push(format!("{app}: kept {version} ({why})"));
    }
    lines
}
