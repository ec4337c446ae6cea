//! `molt push LIB`: publish a release onto a volume, or through control APIs (rolling).

use super::confirm::{self, Move, WaitArgs};
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
    /// Activate the release even if it is marked bad (clears the mark).
    #[arg(long)]
    force: bool,
    /// After a confirmed push to a volume, remove old releases beyond the newest N (see
    /// `molt prune`).
    #[arg(long, value_name = "N", requires = "volume")]
    keep: Option<usize>,
    #[command(flatten)]
    wait: WaitArgs,
}

/// What a push onto a volume does after storing the release.
#[derive(Debug, Clone)]
pub struct VolumePush {
    /// Make it current (confirmed unless `wait` is `None`).
    pub activate: bool,
    /// How long to wait for the supervisors; `None`: not at all.
    pub wait: Option<std::time::Duration>,
    /// Activate even a release marked bad.
    pub force: bool,
    /// Prune to the newest N releases after a confirmed activation.
    pub keep: Option<usize>,
}

/// Publishes `library` onto `volume` (reading app, version and schema from the library itself)
/// and activates it, confirmed, waiting up to a minute for the supervisors, signed with
/// `sign_key` when given; returns what happened, line by line.
pub fn to_volume(
    library: &Path,
    volume: &Volume,
    activate: bool,
    sign_key: Option<&SecretKey>,
) -> anyhow::Result<Vec<String>> {
    let how = VolumePush {
        activate,
        wait: Some(std::time::Duration::from_secs(60)),
        force: false,
        keep: None,
    };
    to_volume_with(library, volume, &how, sign_key)
}

/// Publishes `library` onto `volume` (signed with `sign_key` when given), then does what `how`
/// says: a confirmed activation (see `confirm.rs`) and retention.
pub fn to_volume_with(
    library: &Path,
    volume: &Volume,
    how: &VolumePush,
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
    // A full or read-only volume: say what `current` still names, the pointers untouched.
    let outcome = volume.push(library, &push, false).map_err(|e| {
        let still = volume.current(&info.name).ok().flatten();
        anyhow::anyhow!(
            "{e}; nothing was published, current still names {}",
            still.as_deref().unwrap_or("nothing")
        )
    })?;
    let pushed = outcome.release();
    let mut lines = vec![match outcome {
        PushOutcome::Created(_) => format!("pushed {release} to {}", pushed.dir.display()),
        PushOutcome::AlreadyPresent(_) => format!("{release} is already on the volume (same sha256)"),
    }];
    if !how.activate {
        return Ok(lines);
    }
    let app = info.name.as_str();
    super::activate::refuse_bad(volume, app, &info.version, how.force)?;
    lines.extend(confirm::change(
        volume,
        app,
        &info.version,
        Move::Activate,
        how.wait,
    )?);
    if let Some(keep) = how.keep {
        let pruned = volume.prune(app, keep, std::time::Duration::from_secs(30))?;
        lines.extend(super::prune::describe(app, keep, &pruned));
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
        let how = VolumePush {
            activate: !args.no_activate,
            wait: args.wait.wait(),
            force: args.force,
            keep: args.keep,
        };
        for line in to_volume_with(&args.library, &Volume::new(volume), &how, key.as_ref())? {
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
