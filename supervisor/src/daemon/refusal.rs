//! Refusals: a version change that did not happen, recorded for `/status`, logged and counted.

use super::Supervisor;
use crate::control::status::{now_rfc3339, Outcome, Refusal, SwapRecord};
use crate::manifest::ManifestError;
use crate::metrics::SwapResult;
use crate::volume::VolumeError;

/// A refused version change: what, at which check, why.
pub(super) struct Refused {
    pub(super) release: String,
    pub(super) step: String,
    pub(super) error: String,
}

impl Supervisor {
    pub(super) fn refuse(&self, version: &str, refused: Refused) -> Refusal {
        let still_running = self.running_id();
        // Every refusal says what still runs (the engine's own errors already do).
        let error = if refused.error.contains("still serving") || refused.error.contains("nothing is serving")
        {
            refused.error
        } else {
            match &still_running {
                Some(id) => format!("{}; {id} still serving", refused.error),
                None => format!("{}; nothing is serving", refused.error),
            }
        };
        let refusal = Refusal {
            release: refused.release,
            step: refused.step,
            error,
            still_running: still_running.clone(),
            at: now_rfc3339(),
        };
        tracing::warn!(
            release = %refusal.release, step = %refusal.step, error = %refusal.error,
            still_running = still_running.as_deref().unwrap_or("nothing"), "release refused"
        );
        self.metrics.record_swap(SwapResult::Refused, None, None);
        let mut rec = self.record.lock();
        rec.refused = Some(version.to_owned());
        rec.last_refusal = Some(refusal.clone());
        // A refusal with no version (an unreadable `current`) is no swap attempt.
        if self.engine.get().is_some() && !version.is_empty() {
            rec.last_swap = Some(SwapRecord {
                from: self.running_version(),
                to: version.to_owned(),
                pause_us: 0,
                waited_for_snapshot_us: 0,
                ok: false,
                error: Some(refusal.error.clone()),
                state_bytes: 0,
                schema: None,
                at: now_rfc3339(),
            });
        }
        refusal
    }

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
}

/// The name of the check a volume error comes from, for `/status`.
pub(super) fn volume_step(e: &VolumeError) -> &'static str {
    match e {
        VolumeError::Manifest { source, .. } => match source.as_ref() {
            ManifestError::ChecksumMismatch { .. } => "sha256",
            ManifestError::LibraryMissing { .. } => "library",
            _ => "manifest",
        },
        VolumeError::NotFound { .. } => "release",
        VolumeError::Immutable { .. } => "immutable",
        VolumeError::Signature(_) => "signature",
        _ => "volume",
    }
}
