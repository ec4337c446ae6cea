//! `molt activate VERSION` and `molt rollback`, on a volume or through a control API. On a
//! volume the change is confirmed (see `confirm.rs`); through a control API the supervisor
//! answers for itself. Both rollbacks go to the same place: the version that served before on
//! the supervisor, never forward, never to a release marked bad.

use super::confirm::{self, Move, WaitArgs};
use crate::control::ControlClient;
use crate::volume::Volume;
use anyhow::bail;
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
    #[command(flatten)]
    wait: WaitArgs,
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
    /// Activate it even if it is marked bad (clears the mark).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    target: Target,
}

/// `molt rollback` arguments.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    target: Target,
}

/// Prints a control API's answer; a refusal is an error (exit 1).
fn answered(outcome: crate::control::Outcome) -> anyhow::Result<()> {
    if outcome.ok {
        println!("{}", outcome.message);
        Ok(())
    } else {
        bail!("{}", outcome.message)
    }
}

/// Makes a version current.
pub fn activate(args: ActivateArgs) -> anyhow::Result<()> {
    if let Some(client) = args.target.client()? {
        return answered(client.activate_with(&args.version, args.force)?);
    }
    let Some((volume, app)) = args.target.volume() else {
        bail!("--volume needs --app");
    };
    refuse_bad(&volume, app, &args.version, args.force)?;
    print(confirm::change(
        &volume,
        app,
        &args.version,
        Move::Activate,
        args.target.wait.wait(),
    )?);
    Ok(())
}

/// Refuses a release marked bad unless `force`, which clears the mark.
pub fn refuse_bad(volume: &Volume, app: &str, version: &str, force: bool) -> anyhow::Result<()> {
    match volume.verdict(app, version)? {
        Some(v) if v.is_bad() && !force => bail!(
            "{app} {version} is marked bad ({}, by {} at {}): pass --force to activate it anyway",
            v.reason,
            v.by,
            v.at
        ),
        Some(v) if v.is_bad() => {
            volume.clear_verdict(app, version)?;
            println!("{app} {version} was marked bad; --force: trying it again");
        }
        _ => {}
    }
    Ok(())
}

/// Goes back to the version that served before.
pub fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    if let Some(client) = args.target.client()? {
        return answered(client.rollback()?);
    }
    let Some((volume, app)) = args.target.volume() else {
        bail!("--volume needs --app");
    };
    let (target, next, whence) = rollback_target(&volume, app)?;
    println!("rolling {app} back to {target} ({whence})");
    print(confirm::change(
        &volume,
        app,
        &target,
        Move::Rollback { next },
        args.target.wait.wait(),
    )?);
    Ok(())
}

/// Where `molt rollback --volume` goes: what the live supervisors served before (they must
/// agree), or with none live, the volume's `previous`; never a release marked bad.
fn rollback_target(volume: &Volume, app: &str) -> anyhow::Result<(String, Option<String>, String)> {
    let live = volume.live_supervisors(app)?;
    let mut targets = Vec::new();
    for s in &live {
        let mut back = s
            .history
            .iter()
            .rev()
            .filter(|v| Some(*v) != s.running.as_ref() && !volume.is_bad(app, v))
            .cloned();
        targets.push((s, back.next(), back.next()));
    }
    if let Some((first, target, next)) = targets.first() {
        if targets.iter().any(|(_, t, _)| t != target) {
            let each: Vec<String> = targets
                .iter()
                .map(|(s, t, _)| {
                    format!(
                        "{} would go back to {}",
                        s.instance,
                        t.as_deref().unwrap_or("nothing")
                    )
                })
                .collect();
            bail!(
                "rollback of {app} refused: the live supervisors served different versions before ({}); \
                 roll each back through its control API",
                each.join(", ")
            );
        }
        let Some(target) = target else {
            bail!(
                "rollback of {app} refused: {} served no other good version before {}",
                first.instance,
                first.running.as_deref().unwrap_or("nothing")
            );
        };
        return Ok((
            target.clone(),
            next.clone(),
            "what the live supervisors served before".to_owned(),
        ));
    }
    match volume.previous(app)? {
        Some(p) if volume.is_bad(app, &p) => bail!("rollback of {app} refused: previous ({p}) is marked bad"),
        Some(p) => Ok((p, None, "previous; no supervisor is live".to_owned())),
        None => bail!("rollback of {app} refused: no supervisor is live and no previous version is recorded"),
    }
}

fn print(lines: Vec<String>) {
    for line in lines {
        println!("{line}");
    }
}
