//! A rolling push over several supervisors: one at a time, each must serve the new version and
//! pass its probation before the next is touched; on the first failure the push stops and the
//! supervisors it already upgraded are rolled back.

use crate::control::{ControlClient, UploadInfo};
use anyhow::{bail, Context};
use std::net::ToSocketAddrs;
use std::path::Path;
use std::time::{Duration, Instant};

/// Expands `--to` values: `http://HOST:PORT` as is, `dns+http://NAME:PORT` to one
/// `http://IP:PORT` per address NAME resolves to (sorted, so the order is stable).
pub fn resolve_targets(to: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for target in to {
        match target.strip_prefix("dns+http://") {
            Some(rest) => {
                let host_port = rest.trim_end_matches('/');
                let mut addrs: Vec<_> = host_port
                    .to_socket_addrs()
                    .with_context(|| format!("cannot resolve {host_port} (from {target})"))?
                    .collect();
                addrs.sort();
                addrs.dedup();
                if addrs.is_empty() {
                    bail!("{target} resolves to no address");
                }
                out.extend(addrs.into_iter().map(|a| format!("http://{a}")));
            }
            None if target.starts_with("http://") => out.push(target.clone()),
            None => bail!("--to {target:?}: expected http://HOST:PORT or dns+http://NAME:PORT"),
        }
    }
    Ok(out)
}

/// Pushes to each supervisor in turn (see the module docs).
pub fn push(
    clients: &[ControlClient],
    library: &Path,
    upload: &UploadInfo,
    activate: bool,
    probation_timeout: Duration,
) -> anyhow::Result<()> {
    let release = format!("{} {}", upload.app, upload.version);
    let total = clients.len();
    let mut upgraded: Vec<&ControlClient> = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let n = i + 1;
        println!("[{n}/{total}] {}: uploading {release}", client.base());
        let step = client
            .upload(library, upload)
            .map_err(anyhow::Error::from)
            .and_then(|stored| {
                println!("[{n}/{total}] {}: {}", client.base(), stored.message);
                if !activate {
                    return Ok(false);
                }
                let outcome = client.activate(&upload.version)?;
                println!("[{n}/{total}] {}: {}", client.base(), outcome.message);
                Ok(true)
            });
        let activated = match step {
            Ok(activated) => activated,
            Err(e) => return fail(&release, n, total, client, e, &upgraded),
        };
        if !activated {
            continue;
        }
        upgraded.push(client);
        if let Err(e) = await_probation(client, &upload.version, probation_timeout) {
            // That supervisor rolls itself back when probation fails; leave it to it.
            upgraded.pop();
            return fail(&release, n, total, client, e, &upgraded);
        }
        println!(
            "[{n}/{total}] {}: serving {release}, probation passed",
            client.base()
        );
    }
    println!(
        "pushed {release} to {total} supervisor(s){}",
        if activate { ", all serving it" } else { "" }
    );
    Ok(())
}

/// Waits until `client` serves `version` and its probation (if it has one) has passed.
fn await_probation(client: &ControlClient, version: &str, timeout: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    loop {
        let status = client.status()?;
        let probation = status.probation.as_ref().filter(|p| p.version == version);
        match probation.map(|p| p.state.as_str()) {
            Some("failed") | Some("failed_stuck") => {
                let reason = probation.and_then(|p| p.reason.clone()).unwrap_or_default();
                bail!(
                    "{version} failed probation: {reason}; now serving {:?}",
                    status.version
                );
            }
            Some("running") => {}
            // Passed, or the supervisor runs without probation: serving the version is enough.
            _ if status.version.as_deref() == Some(version) => return Ok(()),
            _ => bail!("{version} is not serving (serving {:?})", status.version),
        }
        if Instant::now() >= until {
            bail!("{version}: probation still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn fail(
    release: &str,
    n: usize,
    total: usize,
    client: &ControlClient,
    error: anyhow::Error,
    upgraded: &[&ControlClient],
) -> anyhow::Result<()> {
    let error = crate::cli::chain::line(&*error);
    eprintln!("[{n}/{total}] {}: FAILED: {error}", client.base());
    let mut rollback_errors = Vec::new();
    for done in upgraded.iter().rev() {
        match done.rollback() {
            Ok(outcome) => eprintln!("  rolled back {}: {}", done.base(), outcome.message),
            Err(e) => {
                eprintln!(
                    "  rollback of {} FAILED: {}",
                    done.base(),
                    crate::cli::chain::line(&e)
                );
                rollback_errors.push(done.base().to_owned());
            }
        }
    }
    let untouched = total - n;
    bail!(
        "rolling push of {release} stopped at {n}/{total} ({}): {error}; {} upgraded supervisor(s) rolled back{}; \
         {untouched} never touched",
        client.base(),
        upgraded.len() - rollback_errors.len(),
        if rollback_errors.is_empty() { String::new() } else { format!(", rollback failed on {rollback_errors:?}") },
    )
}
