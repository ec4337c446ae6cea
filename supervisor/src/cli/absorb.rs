//! `molt absorb SNAPSHOT_DIR --to URL`: merge the newest snapshot of a pod that is gone (the
//! state directory a scale-down left) into a live supervisor, once. The snapshot is then
//! marked handed off (a new snapshot in that directory records it), so a second absorb, or a
//! pod started on that directory, refuses to use it again.
//!
//! The handoff id is derived from the snapshot (its payload's sha256 and its time), so an
//! absorb cut off after the receiver merged, and run again, is recognised by the receiver and
//! only marks the snapshot.

use crate::control::{CallError, ControlClient};
use crate::snapshot::{read_snapshot, HandedOff, SnapshotStore, StateLock};
use anyhow::{bail, Context};
use clap::Args;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `molt absorb` arguments.
#[derive(Debug, Args)]
pub struct AbsorbArgs {
    /// The orphan state directory (`<volume>/<app>/state/<instance>`, or a PVC's).
    snapshot_dir: PathBuf,
    /// The live supervisor's control API.
    #[arg(long)]
    to: String,
    /// Bearer token for the control API.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The deadline of each call.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// Absorbs the orphan snapshot.
pub fn run(args: AbsorbArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = &args.snapshot_dir;
    // No supervisor may run on the directory meanwhile: a live pod's state is handed over
    // with `molt handoff`, not taken from under it.
    let _lock = StateLock::acquire(dir).with_context(|| {
        format!(
            "refused: {} is not an orphan; hand a live supervisor's state over with molt handoff",
            dir.display()
        )
    })?;
    let store = SnapshotStore::new(dir);
    let newest = store
        .list()
        .with_context(|| format!("cannot list the snapshots in {}", dir.display()))?
        .into_iter()
        .next();
    let Some(path) = newest else {
        bail!("{} holds no snapshot: nothing to absorb", dir.display());
    };
    // Read without moving anything: a corrupt orphan is reported, not set aside.
    let snap = read_snapshot(&path).with_context(|| format!("refused: {}", path.display()))?;
    if let Some(done) = &snap.ledger.handed_off {
        bail!(
            "refused: {} was already handed to {} (handoff {}, at unix ms {}): absorbing it again \
             would count its state twice; nothing was sent",
            path.display(),
            done.to,
            done.id,
            done.at_ms
        );
    }
    if let Some(pending) = &snap.ledger.pending {
        bail!(
            "refused: {} was written while its state was sealed for handoff {} to {}, whose outcome \
             it does not know: {} may hold the state already; start a supervisor on {} (it asks {} \
             first) instead; nothing was sent",
            path.display(),
            pending.id,
            pending.to,
            pending.to,
            dir.display(),
            pending.to
        );
    }
    if snap.tables.is_some() {
        bail!(
            "refused: {} holds tables, which a merge does not cover yet; nothing was sent",
            path.display()
        );
    }
    let digest = hex::encode(Sha256::digest(&snap.bytes));
    let written_ms = snap
        .written_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let id = format!("absorb-{}-{written_ms}", &digest[..16]);
    let token = args.token_file.as_deref().map(super::read_token).transpose()?;
    let to = ControlClient::new(&args.to, token);

    let info = to.handoff_info(args.timeout)?;
    if info.app != snap.app {
        bail!(
            "refused: the snapshot is of app {:?}, {} runs {:?}; nothing was sent",
            snap.app,
            args.to,
            info.app
        );
    }
    let version = info.version.as_deref().unwrap_or("(nothing serving)");
    if info.merges.is_empty() {
        bail!(
            "refused: {} {version} at {} has no merge hook: it cannot absorb another instance's state; \
             {} is left as it is",
            info.app,
            args.to,
            path.display()
        );
    }
    if !info.merges.contains(&snap.schema) {
        bail!(
            "refused: the snapshot's state is in schema {}, {} {version} merges {:?}; {} is left as it is",
            snap.schema,
            info.app,
            info.merges,
            path.display()
        );
    }
    let from = format!("snapshot {}", path.display());
    let merged = match to.absorb(
        &id,
        &from,
        &snap.app,
        snap.schema,
        snap.bytes.to_vec(),
        args.timeout,
    ) {
        Ok(absorbed) => absorbed.already,
        Err(e) if e.certainly_not_applied() => bail!("{e}; {} is left as it is", path.display()),
        Err(lost) => {
            // The receiver's record decides: asked with `fence`, its answer is final.
            let q = to.absorb_query(&id, true, args.timeout).map_err(|e: CallError| {
                anyhow::anyhow!(
                    "{lost}; and asking whether it absorbed handoff {id} failed: {e}; run molt absorb again \
                     once {} answers (the same snapshot has the same id: it cannot be applied twice)",
                    args.to
                )
            })?;
            if !q.absorbed {
                bail!(
                    "{lost}; {} did not absorb it (now fenced); {} is left as it is",
                    args.to,
                    path.display()
                );
            }
            true
        }
    };
    let mut marked = snap.clone();
    marked.written_at = std::time::SystemTime::now();
    marked.ledger.handed_off = Some(HandedOff {
        id: id.clone(),
        to: args.to.clone(),
        at_ms: crate::handoff::unix_ms(),
    });
    let mark = store.write(&marked).with_context(|| {
        format!(
            "{} absorbed the state, but marking {} failed: do not absorb or restore it again",
            args.to,
            dir.display()
        )
    })?;
    println!(
        "absorbed {} ({} {} state, {} bytes, schema {}) into {} {version} at {}{} in {:.1?}; marked in {}",
        path.display(),
        snap.app,
        snap.version,
        snap.bytes.len(),
        snap.schema,
        info.app,
        args.to,
        if merged {
            " (it had already merged this snapshot: applied once)"
        } else {
            ""
        },
        started.elapsed(),
        mark.display()
    );
    Ok(())
}
