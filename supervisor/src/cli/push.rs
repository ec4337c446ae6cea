//! `molt push LIB`: publish a release onto a volume, or through control APIs (rolling).

use crate::cli::check::inspect;
use crate::control::{ControlClient, UploadInfo};
use crate::signing::SecretKey;
use crate::volume::{PushOutcome, ReleaseInfo, Volume};
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};

mod rolling;
mod sign;

/// `molt push` arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["volume", "to"])))]
pub struct PushArgs {
    /// The built library.
    library: PathBuf,
    /// Publish onto this release volume.
    #[arg(long)]
    volume: Option<PathBuf>,
    /// Publish through these supervisors' control APIs, one at a time (`http://HOST:PORT`, or
    /// `dns+http://NAME:PORT` for every address NAME resolves to, e.g. a headless Service).
    #[arg(long, num_args = 1..)]
    to: Vec<String>,
    /// Store the release without making it current.
    #[arg(long)]
    no_activate: bool,
    /// Bearer token for the control APIs.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Sign the release with this secret key (`molt keygen`'s `molt.key`).
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// How long to wait for each supervisor's probation to end.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    probation_timeout: std::time::Duration,
}

/// Publishes `library` onto `volume` (reading app, version and schema from the library itself)
/// and activates it when asked, signed with `sign_key` when given; returns what happened,
/// line by line.
pub fn to_volume(
    library: &Path,
    volume: &Volume,
    activate: bool,
    sign_key: Option<&SecretKey>,
) -> anyhow::Result<Vec<String>> {
    let info = inspect(library)?;
    let release = format!("{} {}", info.name, info.version);
    let mut push = ReleaseInfo {
        app: info.name.clone(),
        version: info.version.clone(),
        abi: info.abi_version,
        state_schema: info.state_schema,
        signature: None,
    };
    if sign_key.is_some() {
        let (file, sha256) = sign::identity(library)?;
        push.signature = sign::envelope(sign_key, &push, &file, &sha256);
    }
    let outcome = volume.push(library, &push, activate)?;
    let pushed = outcome.release();
    let mut lines = vec![match outcome {
        PushOutcome::Created(_) => format!("pushed {release} to {}", pushed.dir.display()),
        PushOutcome::AlreadyPresent(_) => format!("{release} is already on the volume (same sha256)"),
    }];
    if let Some(activation) = &pushed.activation {
        lines.push(match (&activation.previous, activation.changed) {
            (_, false) => format!("{release} was already current"),
            (Some(prev), true) => format!("activated {release} (previous: {prev})"),
            (None, true) => format!("activated {release}"),
        });
    }
    Ok(lines)
}

/// Reads what the library says it is, then publishes it.
pub fn run(args: PushArgs) -> anyhow::Result<()> {
    let file = args
        .library
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable file name", args.library.display()))?
        .to_owned();
    if let Some(volume) = &args.volume {
        let key = sign::read_key(args.sign_key.as_deref())?;
        for line in to_volume(
            &args.library,
            &Volume::new(volume),
            !args.no_activate,
            key.as_ref(),
        )? {
            println!("{line}");
        }
        return Ok(());
    }
    let info = inspect(&args.library)?;
    let token = args.token_file.as_deref().map(super::read_token).transpose()?;
    let sha256 = crate::manifest::sha256_file(&args.library)
        .with_context(|| format!("cannot read {}", args.library.display()))?;
    let mut upload = UploadInfo {
        app: info.name.clone(),
        version: info.version.clone(),
        state_schema: info.state_schema,
        abi: info.abi_version,
        file,
        sha256,
        signature: None,
    };
    let key = sign::read_key(args.sign_key.as_deref())?;
    upload.signature = sign::envelope(key.as_ref(), &upload.release_info(), &upload.file, &upload.sha256);
    let targets = rolling::resolve_targets(&args.to)?;
    if targets.is_empty() {
        bail!("--to named no supervisor");
    }
    let clients: Vec<ControlClient> = targets
        .iter()
        .map(|t| ControlClient::new(t, token.clone()))
        .collect();
    rolling::push(
        &clients,
        &args.library,
        &upload,
        !args.no_activate,
        args.probation_timeout,
    )
}
