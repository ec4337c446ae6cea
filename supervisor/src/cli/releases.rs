//! `molt releases`: what is on a volume, and which version is current.

use crate::volume::Volume;
use clap::Args;
use std::path::PathBuf;

/// `molt releases` arguments.
#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// The release volume.
    #[arg(long)]
    volume: PathBuf,
    /// The app.
    #[arg(long)]
    app: String,
}

/// Lists the releases, marking `current` (`*`) and `previous` (`-`).
pub fn run(args: ReleasesArgs) -> anyhow::Result<()> {
    let volume = Volume::new(&args.volume);
    let current = volume.current(&args.app)?;
    let previous = volume.previous(&args.app)?;
    let releases = volume.releases(&args.app)?;
    if releases.is_empty() {
        println!("no releases of {} on {}", args.app, args.volume.display());
    }
    for r in releases {
        let mark = if current.as_deref() == Some(r.version.as_str()) {
            "*"
        } else if previous.as_deref() == Some(r.version.as_str()) {
            "-"
        } else {
            " "
        };
        match &r.manifest {
            Ok(m) => println!(
                "{mark} {:<16} schema {:<3} abi {:<3} {} sha256:{}",
                r.version,
                m.state_schema,
                m.abi,
                m.library,
                &m.sha256[..12.min(m.sha256.len())]
            ),
            Err(e) => println!("{mark} {:<16} BROKEN: {e}", r.version),
        }
    }
    Ok(())
}
