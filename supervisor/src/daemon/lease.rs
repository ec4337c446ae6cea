//! A sealed handoff whose coordinator is gone (`molt handoff` killed, its host lost) is not
//! left sealed for ever: past its lease the departing supervisor asks the receiver itself,
//! fencing the id, and commits or aborts as the receiver's record says (docs/DESIGN.md,
//! "Handoff"). The receiver's answer is final either way, so this cannot race a coordinator
//! that is merely slow into a different outcome.

use super::Supervisor;
use crate::control::ControlClient;
use std::time::Duration;

/// How long to wait before asking again when the receiver does not answer.
const RETRY: Duration = Duration::from_secs(5);

impl Supervisor {
    /// Settles this supervisor's handoff if its lease ran out; called periodically.
    pub(super) fn settle_expired_handoff(&self) {
        let Some((id, to)) = self.handoffs.expired_lease(RETRY) else {
            return;
        };
        tracing::warn!(handoff = %id, %to, "handoff lease ran out with no commit or abort: asking the receiver");
        let receiver = ControlClient::new(&to, self.config.token.clone());
        match receiver.absorb_query(&id, true, RETRY) {
            Ok(q) if q.absorbed => {
                if let Err(e) = self.handoff_commit(&id) {
                    tracing::error!(handoff = %id, error = %e, "the receiver holds the state; recording it failed");
                }
            }
            Ok(_) => {
                let _ = self.handoff_abort(&id);
            }
            Err(e) => tracing::error!(
                handoff = %id, %to, error = %e,
                "cannot ask the receiver: staying sealed, asking again in {RETRY:?}"
            ),
        }
    }
}
