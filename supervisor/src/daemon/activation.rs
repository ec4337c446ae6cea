//! Version changes asked for by an operator: activate a version, roll back.

use super::refusal::{volume_step, Refused};
use super::Supervisor;
use crate::control::status::Outcome;
use std::sync::Arc;

impl Supervisor {
    /// Points `current` at `version` and swaps to it. On refusal the pointer goes back, so the
    /// volume keeps naming what really runs.
    pub fn activate(self: &Arc<Self>, version: &str) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        let app = &self.config.app;
        let before = self.volume.current(app).ok().flatten();
        if let Err(e) = self.volume.activate(app, version) {
            let refusal = self.refuse(
                version,
                Refused {
                    release: format!("{app} {version}"),
                    step: volume_step(&e).to_owned(),
                    error: e.to_string(),
                },
            );
            return self.outcome(false, refusal.error.clone(), Some(refusal));
        }
        let outcome = self.reconcile_locked(true, true);
        if !outcome.ok {
            self.restore_pointer(before);
        }
        outcome
    }

    /// Back to the version this supervisor ran before (see `rollback_locked`): `current` is
    /// pointed at it and the engine swaps (the newer version exports in the older schema).
    /// Refused, nothing changes.
    pub fn rollback(self: &Arc<Self>) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        self.rollback_locked()
    }

    pub(super) fn rollback_locked(self: &Arc<Self>) -> Outcome {
        let app = &self.config.app;
        let running = self.running_version();
        // Back to what *this* supervisor ran before: the newest kept generation. The volume's
        // `previous` is shared by every supervisor on the volume, and another one's rollback
        // may already have swapped it with `current`; it is only the fallback after a restart,
        // when nothing is kept.
        let target = self
            .engine
            .get()
            .and_then(|e| e.generations().first().map(|p| p.info().version.clone()))
            .or_else(|| self.volume.previous(app).ok().flatten());
        let refused = |why: String| {
            let still = self.running_id().map_or("nothing is serving".to_owned(), |id| {
                format!("{id} still serving")
            });
            self.outcome(false, format!("rollback of {app} refused: {why}; {still}"), None)
        };
        let Some(target) = target else {
            return refused(
                "no earlier version is known (none kept, no `previous` on the volume)".to_owned(),
            );
        };
        if running.as_deref() == Some(target.as_str()) {
            return refused(format!(
                "{target} is already serving: there is nothing to roll back"
            ));
        }
        let before = self.volume.current(app).ok().flatten();
        if let Err(e) = self.volume.activate(app, &target) {
            return refused(e.to_string());
        }
        let outcome = self.reconcile_locked(true, false);
        if !outcome.ok {
            self.restore_pointer(before);
        } else {
            tracing::info!(from = running.as_deref().unwrap_or("-"), to = %target, "rolled back");
        }
        outcome
    }

    pub(super) fn restore_pointer(&self, before: Option<String>) {
        if let Some(before) = before {
            if let Err(e) = self.volume.activate(&self.config.app, &before) {
                tracing::error!(error = %e, "could not point `current` back at {before}");
            }
        }
    }
}
