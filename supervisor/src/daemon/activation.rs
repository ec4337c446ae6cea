//! Version changes asked for by an operator through the control API: activate a version, roll
//! back. Both move the volume's pointers under the app's writer lock (one writer of `current`
//! at a time), then change what runs; refused, the pointers go back.
//!
//! A rollback goes where `molt rollback --volume` goes: the version that served before the
//! running one on this supervisor, walking back through its history, never forward and never
//! to a release marked bad. `previous` is then pointed at the next step back.

use super::reconcile::Change;
use super::refusal::Refusing;
use super::refused::Refused;
use super::Supervisor;
use crate::control::status::Outcome;
use crate::volume::Volume;
use std::sync::Arc;
use std::time::Duration;

/// How long a control call waits for another writer of `current` (a push in progress).
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What the pointers held before a change (`None` inside: absent; outer `None`: unreadable,
/// so not restored).
pub(super) struct Pointers {
    current: Option<Option<String>>,
    previous: Option<Option<String>>,
}

impl Supervisor {
    /// Points `current` at `version` and swaps to it. A release marked bad is refused unless
    /// `force` (which clears the mark), and so is one whose verdict cannot be read. On refusal the pointers go back, so the volume keeps
    /// naming what really runs.
    pub fn activate(self: &Arc<Self>, version: &str, force: bool) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        let app = &self.config.app;
        match self.volume.verdict(app, version) {
            Ok(Some(v)) if v.is_bad() && !force => {
                let refused = Refused::KnownBad {
                    release: format!("{app} {version}"),
                    reason: v.reason,
                };
                let refusal = self.refuse_as(Refusing::Request, version, refused);
                return self.outcome(false, refusal.error.clone(), Some(refusal));
            }
            Ok(Some(v)) if v.is_bad() => {
                tracing::warn!(%version, "activating a release marked bad (forced): its mark is cleared");
                if let Err(e) = self.volume.clear_verdict(app, version) {
                    return self.refused_outcome(version, e.into());
                }
            }
            Ok(_) => {}
            // Not taken for "no verdict": what a FIFO or garbage in its place hides is unknown.
            Err(e) => {
                let refusal = self.refuse_as(Refusing::Request, version, e.into());
                return self.outcome(false, refusal.error.clone(), Some(refusal));
            }
        }
        let before = match self.move_pointers(|volume| volume.activate(app, version).map(drop)) {
            Ok(before) => before,
            Err(refused) => return self.refused_outcome(version, refused),
        };
        let outcome = self.reconcile_locked(true, Change::Upgrade);
        if !outcome.ok {
            self.put_back(before);
        }
        outcome
    }

    /// Back to the version this supervisor served before (see the module docs).
    pub fn rollback(self: &Arc<Self>) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        self.rollback_locked(Change::Rollback)
    }

    /// Where a rollback goes, and the step back after it: the newest versions in this
    /// supervisor's history that are not running and not marked bad.
    fn rollback_target(&self) -> Result<(String, Option<String>), Refused> {
        let app = &self.config.app;
        let running = self.running_version();
        let history = self.record.lock().history.clone();
        let mut back = history
            .iter()
            .rev()
            .filter(|v| Some(*v) != running.as_ref() && !self.volume.is_bad(app, v));
        let Some(target) = back.next().cloned() else {
            let why = match (&running, history.is_empty()) {
                (None, _) => "nothing is serving".to_owned(),
                (Some(r), true) => format!("this supervisor served no version before {r}"),
                (Some(_), false) => format!(
                    "every version this supervisor served before ({}) is marked bad",
                    history.join(", ")
                ),
            };
            return Err(Refused::NoRollbackTarget {
                app: app.clone(),
                why,
            });
        };
        Ok((target, back.next().cloned()))
    }

    pub(super) fn rollback_locked(self: &Arc<Self>, why: Change) -> Outcome {
        let app = &self.config.app;
        let (target, next) = match self.rollback_target() {
            Ok(found) => found,
            Err(refused) => {
                let running = self.running_version().unwrap_or_default();
                let refusal = self.refuse_as(Refusing::Request, &running, refused);
                return self.outcome(false, refusal.error.clone(), Some(refusal));
            }
        };
        let before = match self.move_pointers(|volume| {
            volume.verify_release(app, &target)?;
            volume.restore_pointers(app, Some(&target), next.as_deref())
        }) {
            Ok(before) => before,
            Err(refused) => return self.refused_outcome(&target, refused),
        };
        let outcome = self.reconcile_locked(true, why);
        if !outcome.ok {
            self.put_back(before);
        }
        outcome
    }

    /// Runs `change` on the volume's pointers under the app's writer lock; returns what they
    /// held before.
    fn move_pointers(
        &self,
        change: impl FnOnce(&Volume) -> Result<(), crate::volume::VolumeError>,
    ) -> Result<Pointers, Refused> {
        let app = &self.config.app;
        let _lock = self.volume.lock_app(app, LOCK_WAIT)?;
        let before = Pointers {
            current: self.volume.current(app).ok(),
            previous: self.volume.previous(app).ok(),
        };
        change(&self.volume)?;
        Ok(before)
    }

    /// Puts the pointers back after a refused change.
    fn put_back(&self, before: Pointers) {
        let app = &self.config.app;
        let (Some(current), Some(previous)) = (before.current, before.previous) else {
            tracing::error!("the pointers were unreadable before the change: not restoring them");
            return;
        };
        let restored = self.volume.lock_app(app, LOCK_WAIT).and_then(|_lock| {
            self.volume
                .restore_pointers(app, current.as_deref(), previous.as_deref())
        });
        if let Err(e) = restored {
            tracing::error!(error = %e, "could not point `current` back at what ran before");
        }
    }
}
