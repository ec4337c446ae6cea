//! Probation: after a swap, the new version is watched for a window (`--probation`). If its
//! health hook fails, or its requests fail with 5xx too often, the supervisor rolls back by
//! itself (the new version exports in the old schema, like OTP's `{down, Vsn}`) and reports it
//! in `/status` and `/metrics`. A version that cannot be rolled back stays, loudly.

use super::Supervisor;
use crate::control::status::Probation;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the health hook and the error rate are checked.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// 5xx answers tolerated in a window before the rate counts at all.
const MIN_FAILURES: u64 = 5;
/// The share of 5xx answers that fails probation (once `MIN_FAILURES` is reached).
const MAX_FAILURE_RATE: f64 = 0.1;

/// Starts watching `version`, which has just been swapped in.
pub(super) fn start(sup: Arc<Supervisor>, version: String) {
    let seq = sup.swap_seq();
    sup.set_probation(Probation {
        version: version.clone(),
        state: "running".to_owned(),
        reason: None,
    });
    let spawned = std::thread::Builder::new()
        .name("molt-probation".to_owned())
        .spawn(move || {
            let (total0, failed0) = sup.metrics().request_counts();
            let until = Instant::now() + sup.probation_window();
            let verdict = loop {
                if sup.swap_seq() != seq {
                    return; // another swap superseded this one
                }
                if let Some(Err(e)) = sup.engine().map(|e| e.health()) {
                    break Err(format!("health check failed: {e}"));
                }
                let (total, failed) = sup.metrics().request_counts();
                let (total, failed) = (total - total0, failed - failed0);
                if failed >= MIN_FAILURES && failed as f64 > MAX_FAILURE_RATE * total as f64 {
                    break Err(format!("{failed} of {total} requests failed with 5xx"));
                }
                if Instant::now() >= until {
                    break Ok(());
                }
                std::thread::sleep(CHECK_EVERY);
            };
            match verdict {
                Ok(()) if sup.swap_seq() == seq => {
                    tracing::info!(%version, "probation passed");
                    sup.mark_good(&version, "passed probation");
                    sup.set_probation(Probation {
                        version,
                        state: "passed".to_owned(),
                        reason: None,
                    });
                }
                Ok(()) => {}
                Err(reason) => sup.probation_failed(&version, reason),
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the probation watcher: the new version is not on probation");
    }
}

impl Supervisor {
    /// Rolls back because `version` failed probation (called by the probation watcher), and
    /// records it as bad. The rollback is counted once, as `rolled_back`.
    pub(super) fn probation_failed(self: &Arc<Self>, version: &str, reason: String) {
        let _one_at_a_time = self.changing.lock();
        if self.running_version().as_deref() != Some(version) {
            return; // superseded meanwhile
        }
        tracing::error!(%version, %reason, "probation failed: rolling back");
        let app = &self.config.app;
        if let Err(e) = self.volume.mark_bad(
            app,
            version,
            &self.instance,
            &format!("failed probation: {reason}"),
        ) {
            tracing::error!(error = %e, "cannot record {app} {version} as bad");
        }
        let outcome = self.rollback_locked(super::reconcile::Change::ProbationRollback);
        let state = if outcome.ok { "failed" } else { "failed_stuck" };
        if !outcome.ok {
            tracing::error!(%version, error = %outcome.message, "probation failed and the rollback was refused: the new version stays");
        }
        let reason = if outcome.ok {
            reason
        } else {
            format!("{reason}; rollback refused: {}", outcome.message)
        };
        let reason = crate::untrusted::note(&reason);
        self.record.lock().probation = Some(Probation {
            version: version.to_owned(),
            state: state.to_owned(),
            reason: Some(reason),
        });
    }

    /// Records a probation's state.
    pub(super) fn set_probation(&self, probation: Probation) {
        self.record.lock().probation = Some(probation);
    }

    /// The swap counter (see `swap_seq`).
    pub(super) fn swap_seq(&self) -> u64 {
        self.swap_seq.load(Ordering::SeqCst)
    }

    /// The probation window.
    pub(super) fn probation_window(&self) -> std::time::Duration {
        self.config.probation
    }
}
