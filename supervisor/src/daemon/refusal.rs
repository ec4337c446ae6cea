//! Recording a refusal: a version change (or upload, or rollback) that did not happen is
//! rendered to text once, here, then logged, counted, kept for `/status`, reported on the
//! volume, and (when it is the release's fault) recorded as a bad release. What it keeps is
//! cut to [`crate::untrusted::MAX_NOTE`] ([`crate::untrusted::note`]): the error quotes foreign
//! text (a plugin's import error, the version a request named), and `/status`, the HTTP
//! answer and the supervisor's report on the volume must stay small.

use super::refused::Refused;
use super::Supervisor;
use crate::control::status::{now_rfc3339, Outcome, Refusal, SwapRecord};
use crate::engine::Action;
use crate::metrics::SwapResult;
use crate::untrusted::note;
use crate::volume::{now_ms, RefusalNote};

/// What was refused: a change of the running version, or a request that would have changed
/// nothing that runs (an upload, a rollback with nowhere to go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusing {
    /// A version change: the version is not retried until `current` names another.
    Change,
    /// A request: nothing is blocked, nothing is marked.
    Request,
}

impl Supervisor {
    /// Records the refusal of a change to `version` (see the module docs).
    pub(super) fn refuse(&self, version: &str, refused: Refused) -> Refusal {
        self.refuse_as(Refusing::Change, version, refused)
    }

    pub(super) fn refuse_as(&self, what: Refusing, version: &str, refused: Refused) -> Refusal {
        let app = &self.config.app;
        let still_running = self.running_id();
        let mut error = note(&refused.to_string());
        if !refused.names_what_serves() {
            match &still_running {
                Some(id) => error.push_str(&format!("; {id} still serving")),
                None => error.push_str("; nothing is serving"),
            }
        }
        let version = note(version);
        let version = version.as_str();
        let step = refused.step();
        let pause_us = refused.pause_us();
        let refusal = Refusal {
            release: format!("{app} {version}"),
            step: step.clone(),
            error: error.clone(),
            still_running: still_running.clone(),
            at: now_rfc3339(),
        };
        // The engine has logged its own refusals of swaps and rollbacks, with the pause.
        let engine_logged = matches!(&refused, Refused::Engine(e) if e.action != Action::Start);
        if !engine_logged {
            tracing::warn!(
                release = %refusal.release, step = %refusal.step, error = %refusal.error,
                still_running = still_running.as_deref().unwrap_or("nothing"), "release refused"
            );
        }
        if what == Refusing::Change && refused.condemns_release() {
            if let Err(e) = self.volume.mark_bad(app, version, &self.instance, &error) {
                tracing::error!(error = %e, "cannot record {app} {version} as bad on the volume");
            }
        }
        self.metrics.record_swap(SwapResult::Refused, None, None);
        {
            let mut rec = self.record.lock();
            rec.last_refusal = Some(refusal.clone());
            if what == Refusing::Change {
                // The reconcile that asked remembers what it saw (`remember_refused`).
                rec.refused = Some(version.to_owned());
                rec.refused_seen = None;
                rec.refused_note = Some(RefusalNote {
                    version: version.to_owned(),
                    step,
                    error: error.clone(),
                    at_ms: now_ms(),
                });
                if self.engine.get().is_some() && refused.is_swap_attempt() {
                    rec.last_swap = Some(SwapRecord {
                        from: self.running_version(),
                        to: version.to_owned(),
                        pause_us,
                        waited_for_snapshot_us: 0,
                        ok: false,
                        error: Some(error),
                        state_bytes: 0,
                        schema: None,
                        at: now_rfc3339(),
                    });
                }
            }
        }
        self.publish();
        refusal
    }

    /// The answer to a version change: what serves now, the swap it caused, or the refusal.
    pub(super) fn outcome(&self, ok: bool, message: String, refusal: Option<Refusal>) -> Outcome {
        let swap = if ok {
            self.record.lock().last_swap.clone().filter(|s| s.ok)
        } else {
            None
        };
        Outcome {
            ok,
            message,
            version: self.running_version(),
            swap,
            refusal,
        }
    }

    /// A refused change as an [`Outcome`].
    pub(super) fn refused_outcome(&self, version: &str, refused: Refused) -> Outcome {
        let refusal = self.refuse(version, refused);
        self.outcome(false, refusal.error.clone(), Some(refusal))
    }
}
