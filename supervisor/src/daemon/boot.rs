//! The first version change of a starting supervisor.

use super::Supervisor;
use crate::control::status::Outcome;
use std::sync::Arc;

impl Supervisor {
    /// The first reconcile of a starting supervisor. When what `current` names is refused and
    /// nothing serves yet, the previously active release is started instead (loudly), so a
    /// bad push followed by a pod restart does not leave the pod with nothing to serve.
    /// `current` is left as it is: the operator's pointer is not rewritten behind their back.
    pub fn boot(self: &Arc<Self>) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        let outcome = self.reconcile_locked(false, false);
        if outcome.ok || self.engine.get().is_some() {
            return outcome;
        }
        let Ok(Some(previous)) = self.volume.previous(&self.config.app) else {
            return outcome;
        };
        tracing::error!(
            refused = %outcome.message, fallback = %previous,
            "the current release is refused and nothing serves: starting the previous release"
        );
        match self.change_to(&previous) {
            Ok(_) => self.outcome(
                true,
                format!("{}; started {previous} instead", outcome.message),
                None,
            ),
            Err(refused) => {
                let refusal = self.refuse(&previous, refused);
                self.outcome(false, refusal.error.clone(), Some(refusal))
            }
        }
    }
}
