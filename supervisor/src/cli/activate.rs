//! `molt activate VERSION` and `molt rollback`, on a volume or through a control API.

use crate::control::ControlClient;
use crate::volume::Volume;
use clap::Args;
use std::path::PathBuf;

/// Where a version change is made.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["volume", "control"])))]
pub struct Target {
    /// The release volume (needs --app).
    #[arg(long, requires = "app")]
    volume: Option<PathBuf>,
    /// The app on the volume.
    #[arg(long)]
    app: Option<String>,
    /// A supervisor's control API, e.g. http://127.0.0.1:7070.
    #[arg(long)]
    control: Option<String>,
    /// Bearer token for the control API.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

impl Target {
    fn client(&self) -> anyhow::Result<Option<ControlClient>> {
        let token = self.token_file.as_deref().map(super::read_token).transpose()?;
        Ok(self.control.as_deref().map(|url| ControlClient::new(url, token)))
    }

    fn volume(&self) -> Option<(Volume, &str)> {
        Some((Volume::new(self.volume.as_ref()?), self.app.as_deref()?))
    }
}

/// `molt activate` arguments.
#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// The version to make current.
    #[arg(id = "release", value_name = "VERSION")]
    version: String,
    #[command(flatten)]
    target: Target,
}

/// `molt rollback` arguments.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    target: Target,
}

/// Makes a version current.
pub fn activate(args: ActivateArgs) -> anyhow::Result<()> {
    if let Some(client) = args.target.client()? {
        println!("{}", client.activate(&args.version)?.message);
    } else if let Some((volume, app)) = args.target.volume() {
        let a = volume.activate(app, &args.version)?;
        match (a.changed, &a.previous) {
            (false, _) => println!("{app} {} was already current", a.current),
            (true, Some(prev)) => println!("{app}: current is now {} (previous: {prev})", a.current),
            (true, None) => println!("{app}: current is now {}", a.current),
        }
    }
    Ok(())
}

/// Goes back to the previously active version.
pub fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    if let Some(client) = args.target.client()? {
        println!("{}", client.rollback()?.message);
    } else if let Some((volume, app)) = args.target.volume() {
        let a = volume.rollback(app)?;
        println!(
            "{app}: rolled back to {} (previous: {})",
            a.current,
            a.previous.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}
