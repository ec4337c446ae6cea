//! `molt releases`: what is on a volume, which version is current, which are known good or
//! bad, and which supervisors run what.

use crate::manifest::Manifest;
use crate::signing::Envelope;
use crate::volume::{Judgement, Volume};
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

/// Who signed a release, as `molt releases` shows it: `signed-by ed25519:…` when the
/// signature verifies with the key it names (whether that key is trusted is each supervisor's
/// `--trusted-key`), `BAD-SIGNATURE ed25519:…` when it does not, `unsigned` without one.
fn signer(m: &Manifest) -> String {
    let Some(text) = &m.signature else {
        return "unsigned".to_owned();
    };
    match Envelope::parse(text) {
        Ok(e) if e.verifies(m) => format!("signed-by {}", e.key.fingerprint()),
        Ok(e) => format!("BAD-SIGNATURE {}", e.key.fingerprint()),
        Err(_) => "BAD-SIGNATURE".to_owned(),
    }
}

/// Lists the releases, marking `current` (`*`) and `previous` (`-`), with who signed each and
/// their verdicts (good, bad, untried).
pub fn run(args: ReleasesArgs) -> anyhow::Result<()> {
    let volume = Volume::new(&args.volume);
    // First: it refuses an invalid app name, which `current` would report as unusable.
    let releases = volume.releases(&args.app)?;
    let current = match volume.current(&args.app) {
        Ok(current) => current,
        Err(e) => {
            println!("current is unusable: {e}");
            None
        }
    };
    let previous = volume.previous(&args.app).ok().flatten();
    let verdicts = volume.verdicts(&args.app)?;
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
        let verdict = match verdicts.get(&r.version) {
            Some(v) if v.judgement == Judgement::Good => "good".to_owned(),
            Some(v) => format!("BAD ({}, by {})", v.reason, v.by),
            None => "untried".to_owned(),
        };
        match &r.manifest {
            Ok(m) => println!(
                "{mark} {:<16} schema {:<3} abi {:<3} {} sha256:{} {}  {verdict}",
                r.version,
                m.state_schema,
                m.abi,
                m.library,
                &m.sha256[..12.min(m.sha256.len())],
                signer(m)
            ),
            Err(e) => println!("{mark} {:<16} BROKEN: {e}", r.version),
        }
    }
    for s in volume.live_supervisors(&args.app)? {
        println!(
            "supervisor {} (pid {} on {}) runs {}",
            s.instance,
            s.pid,
            s.host,
            s.running.as_deref().unwrap_or("nothing")
        );
    }
    Ok(())
}
