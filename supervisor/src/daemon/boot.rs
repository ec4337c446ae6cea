//! Boot that always serves something, and the boot marker.
//!
//! On start the supervisor serves `current` if it verifies and can import the snapshot;
//! otherwise the newest good release that can; then the snapshot's own release; then any
//! other release on the volume, newest first. Releases marked bad are skipped. So it never
//! serves nothing while some release on the volume can import the snapshot. `current` is
//! left as it is: the operator's pointer is not rewritten behind their back (the fallback is
//! logged as an error and shown in `/status`).
//!
//! A library whose constructor or `create`/`import` kills the process (an `exit`, an abort, a
//! segfault) would kill every restart the same way. So before loading, the supervisor writes
//! a boot marker naming the version into its state directory when it starts (not in a live
//! swap), and removes it once the load and import returned. A marker found at start names a
//! release that killed the previous process while starting: it is recorded as bad and
//! skipped, and a container restart recovers by itself. A death in a live swap is no proof
//! against the release (the process may have been killed from outside) and leaves no marker:
//! if the release is what kills, `current` names it, and the next start, under a marker,
//! shows it.

use super::reconcile::{Change, UNREADABLE_CURRENT};
use super::refused::Refused;
use super::Supervisor;
use crate::control::status::Outcome;
use std::path::PathBuf;
use std::sync::Arc;

/// The boot marker's file name, in the state directory.
pub const BOOT_MARKER: &str = "loading";

/// Removes the boot marker when dropped (the load returned, either way).
pub(super) struct Marker(Option<PathBuf>);

impl Drop for Marker {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the boot marker");
            }
        }
    }
}

impl Supervisor {
    /// Writes the boot marker for `version` (see the module docs).
    pub(super) fn boot_marker(&self, version: &str) -> Marker {
        let path = self.snapshots.dir().join(BOOT_MARKER);
        let text = format!("{version}\n{}\nboot\n", std::process::id());
        match crate::volume::atomic_write(&path, text.as_bytes()) {
            Ok(()) => Marker(Some(path)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the boot marker: a crash while loading would not be recognised");
                Marker(None)
            }
        }
    }

    /// At start: a boot marker left by the previous process names a release that killed it
    /// while loading or importing. Record it as bad and remove the marker.
    pub(super) fn recover_from_crash(&self) {
        let path = self.snapshots.dir().join(BOOT_MARKER);
        let Ok(text) = crate::volume::read_small(&path, 1024) else {
            return;
        };
        let mut lines = text.lines();
        let version = lines.next().unwrap_or("").trim().to_owned();
        let pid = lines.next().unwrap_or("?").trim().to_owned();
        let at_boot = lines.next().is_some_and(|w| w.trim() == "boot");
        let app = &self.config.app;
        if !at_boot {
            // A process that dies in a live swap may have been killed from outside (an OOM
            // kill, a node drain): not proof against the release. If the release is what
            // kills, `current` names it, and the next start loads it at boot, where a second
            // death marks it bad.
            tracing::warn!(%version, %pid, "the previous process died while swapping to this release; it is tried again");
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the boot marker");
            }
            return;
        }
        let reason = format!(
            "the supervisor process (pid {pid}) died while loading or importing {app} {version}: \
             its constructor, create or import hook killed it"
        );
        tracing::error!(%version, %reason, "a release crashed the previous start: recording it as bad");
        if let Err(e) = self.volume.mark_bad(app, &version, &self.instance, &reason) {
            tracing::error!(error = %e, "cannot record {app} {version} as bad");
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the boot marker");
        }
    }

    /// The first version of a starting supervisor (see the module docs).
    pub fn boot(self: &Arc<Self>) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        let app = self.config.app.clone();
        let seen = self.seen();
        let current = match self.volume.current(&app) {
            Ok(current) => current,
            Err(e) => {
                let refused = Refused::Pointer {
                    app: app.clone(),
                    source: Box::new(e),
                };
                self.refuse(UNREADABLE_CURRENT, refused);
                None
            }
        };
        let snapshot = self
            .first_restore_version()
            .or_else(|| self.snapshots.latest().ok().flatten().map(|s| s.version));
        if current.is_none() && snapshot.is_none() && self.record.lock().last_refusal.is_none() {
            let outcome = self.outcome(
                true,
                format!("no version of {app} is active on the volume yet"),
                None,
            );
            self.publish();
            return outcome;
        }
        let mut candidates: Vec<String> = Vec::new();
        let verdicts = self.volume.verdicts(&app).unwrap_or_default();
        let releases: Vec<String> = self
            .volume
            .releases(&app)
            .map(|rs| rs.into_iter().rev().map(|r| r.version).collect())
            .unwrap_or_default();
        let good = releases
            .iter()
            .filter(|v| verdicts.get(*v).is_some_and(|v| !v.is_bad()));
        let order = current
            .iter()
            .chain(good)
            .chain(snapshot.iter())
            .chain(releases.iter());
        for version in order {
            if candidates.contains(version) {
                continue;
            }
            if let Some(verdict) = verdicts.get(version).filter(|v| v.is_bad()) {
                if current.as_ref() == Some(version) {
                    self.refuse(
                        version,
                        Refused::KnownBad {
                            release: format!("{app} {version}"),
                            reason: verdict.reason.clone(),
                        },
                    );
                }
                continue;
            }
            candidates.push(version.clone());
        }
        for version in &candidates {
            match self.change_to(version, Change::Boot) {
                Ok(_) => {
                    let mut message = format!("{app} {version} is serving");
                    if current.as_ref() != Some(version) {
                        // Not retried on every wake-up: only when `current` names another.
                        let key = current.clone().unwrap_or_else(|| UNREADABLE_CURRENT.to_owned());
                        self.record.lock().remember_refused(key, seen);
                        let named = current.as_deref().unwrap_or("nothing usable");
                        tracing::error!(current = named, serving = %version, "`current` could not start: serving another release instead");
                        message.push_str(&format!(" (current names {named}, which could not start)"));
                    }
                    return self.outcome(true, message, None);
                }
                Err(refused) => {
                    self.refuse(version, refused);
                }
            }
        }
        self.publish();
        let tried = if candidates.is_empty() {
            "no release on the volume is a candidate (none, or all marked bad)".to_owned()
        } else {
            format!("tried {}; see last_refusal", candidates.join(", "))
        };
        let message = crate::untrusted::note(&format!("no version of {app} could start: {tried}"));
        self.outcome(false, message, None)
    }
}
