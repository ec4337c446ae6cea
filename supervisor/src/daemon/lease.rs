//! A sealed handoff whose coordinator is gone (`molt handoff` killed, its host lost) is not
//! left sealed for ever: past its lease the departing supervisor asks the receiver itself,
//! fencing the id, and commits or aborts as the receiver's record says (docs/DESIGN.md,
//! "Handoff"). The receiver's answer is final either way, so this cannot race a coordinator
//! that is merely slow into a different outcome. A supervisor stopped while sealed asks the
//! same question once before its final snapshot.

use super::{DaemonError, Supervisor};
use crate::control::ControlClient;
use crate::snapshot::{HandedOff, Snapshot};
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
        if !self.settle_handoff(&id, &to) {
            tracing::error!(handoff = %id, %to, "staying sealed, asking again in {RETRY:?}");
        }
    }

    /// At shutdown, before the final snapshot: a sealed handoff is settled with the receiver
    /// if it answers, so the snapshot holds the state plainly (aborted) or the record of the
    /// handoff (committed); otherwise it records the handoff as pending (see `handoff`).
    pub(super) fn settle_handoff_on_stop(&self) {
        let Some((id, to)) = self.handoffs.sealed() else {
            return;
        };
        tracing::warn!(handoff = %id, %to, "stopping while sealed: asking the receiver whether it absorbed the state");
        if !self.settle_handoff(&id, &to) {
            tracing::error!(
                handoff = %id, %to,
                "the receiver cannot say: the final snapshot records the handoff as pending, and a start \
                 on it asks the receiver before serving the state"
            );
        }
    }

    /// Asks `to` whether it absorbed handoff `id`, fencing it, and commits or aborts as it
    /// answers; `false` when it cannot be asked.
    fn settle_handoff(&self, id: &str, to: &str) -> bool {
        let receiver = ControlClient::new(to, self.config.token.clone());
        match receiver.absorb_query(id, true, RETRY) {
            Ok(q) if q.absorbed => {
                if let Err(e) = self.handoff_commit(id) {
                    tracing::error!(handoff = %id, error = %e, "the receiver holds the state; recording it failed");
                }
                true
            }
            Ok(_) => {
                let _ = self.handoff_abort(id);
                true
            }
            Err(e) => {
                tracing::error!(handoff = %id, %to, error = %e, "cannot ask the receiver");
                false
            }
        }
    }

    /// At start, a newest snapshot that records handoff `snap.ledger.pending` (the process
    /// stopped or died sealed): asks the receiver, fencing the id. `true` when it absorbed the
    /// state: the handoff is recorded now (a snapshot marked handed off) and the start serves
    /// nothing of it. `false` when it did not: the state is this supervisor's again. An error
    /// when the receiver cannot say: nothing starts, since serving the state could count it
    /// twice (docs/DESIGN.md, "Handoff").
    pub(super) fn settle_pending_at_start(&self, snap: &Snapshot) -> Result<bool, DaemonError> {
        let Some(pending) = &snap.ledger.pending else {
            return Ok(false);
        };
        let (id, to) = (&pending.id, &pending.to);
        tracing::warn!(handoff = %id, %to, "the latest snapshot was written while sealed for a handoff: asking the receiver");
        let receiver = ControlClient::new(to, self.config.token.clone());
        let absorbed = receiver.absorb_query(id, true, RETRY).map_err(|e| {
            DaemonError::State(format!(
                "the latest snapshot in {} was written while this state was sealed for handoff {id} to {to}, \
                 and {to} cannot say whether it absorbed it: {e}. Nothing was started: serving the state \
                 could count it twice. A start asks again; it serves the state once {to} answers that it \
                 did not absorb it",
                self.snapshots.dir().display()
            ))
        })?;
        if !absorbed.absorbed {
            tracing::warn!(handoff = %id, %to, "the receiver did not absorb it (and fenced it): the state is served here");
            return Ok(false);
        }
        let mut record = snap.clone();
        record.ledger.pending = None;
        record.ledger.handed_off = Some(HandedOff {
            id: id.clone(),
            to: to.clone(),
            at_ms: crate::handoff::unix_ms(),
        });
        let path = self.snapshots.write(&record).map_err(|e| {
            DaemonError::State(format!(
                "{to} absorbed handoff {id}, but the snapshot recording it failed: {e}; nothing was started"
            ))
        })?;
        tracing::warn!(
            handoff = %id, %to, snapshot = %path.display(),
            "the receiver absorbed it: the handoff is recorded, and the state is not served here"
        );
        Ok(true)
    }
}
