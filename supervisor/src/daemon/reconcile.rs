//! The one path every version change takes: read what the volume's `current` names, verify
//! it, load it, and swap to it (or start on it when nothing serves yet), or refuse and say why.
//!
//! Every change also keeps this supervisor's history, the versions it served before, oldest
//! first: changing to a version in the history goes back (the history is cut at it, so a
//! rollback never bounces forward); changing to any other version pushes the one that served.
//! Rollbacks walk it back (see `activation.rs`).

use super::refused::Refused;
use super::Supervisor;
use crate::control::status::{now_rfc3339, Outcome, SwapRecord};
use crate::engine::{Engine, EngineConfig, SwapReport};
use crate::loader::{Expect, Plugin};
use crate::metrics::SwapResult;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The most versions a supervisor remembers having served.
const HISTORY: usize = 32;

/// The key under which an unreadable `current` is refused (it names no version).
pub(super) const UNREADABLE_CURRENT: &str = "(unreadable current)";

/// Why a version change is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Forward, because `current` (or an operator) names another version: on probation.
    Upgrade,
    /// Back, asked by an operator.
    Rollback,
    /// Back, because the version failed its probation.
    ProbationRollback,
    /// The first version of a starting supervisor.
    Boot,
}

impl Supervisor {
    /// Makes what runs match what `current` names. `force` retries a version refused before.
    /// Returns what happened; refusals are also logged and kept for `/status`.
    pub fn reconcile(self: &Arc<Self>, force: bool) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        self.reconcile_locked(force, Change::Upgrade)
    }

    pub(super) fn reconcile_locked(self: &Arc<Self>, force: bool, why: Change) -> Outcome {
        let app = &self.config.app;
        let seen = self.seen();
        let desired = match self.volume.current(app) {
            Ok(Some(version)) => version,
            Ok(None) => {
                return self.outcome(
                    true,
                    format!("no version of {app} is active on the volume yet"),
                    None,
                )
            }
            Err(e) => {
                // A `current` that is no version (a FIFO, a directory, garbage, a symlink out of
                // the volume) is a refusal like any other: logged and in `/status`, once per
                // distinct error (a poll tick does not log the same refusal again).
                let key = format!("{UNREADABLE_CURRENT} {e}");
                if !force && self.record.lock().refused_before(&key, seen) {
                    return self.outcome(false, format!("{e} (refused before, see last_refusal)"), None);
                }
                let refused = Refused::Pointer {
                    app: app.clone(),
                    source: Box::new(e),
                };
                let outcome = self.refused_outcome(UNREADABLE_CURRENT, refused);
                self.record.lock().remember_refused(key, seen);
                return outcome;
            }
        };
        if self.running_version().as_deref() == Some(desired.as_str()) {
            self.record.lock().refused = None;
            return self.outcome(true, format!("{app} {desired} is already serving"), None);
        }
        if !force && self.record.lock().refused_before(&desired, seen) {
            return self.outcome(
                false,
                format!("{app} {desired} was refused before (see last_refusal)"),
                None,
            );
        }
        // A release marked bad (its probation failed, or it was refused by a supervisor of this
        // volume) is not followed when `current` names it again, by hand or by a stale writer:
        // `molt activate --force` is the one way to try it again, and it clears the mark first.
        // A release this supervisor refused itself (and so marked) is not refused again: the
        // first refusal, with its real cause, stays the one reported.
        if !force {
            if let Ok(Some(verdict)) = self.volume.verdict(app, &desired) {
                if verdict.is_bad() && self.record.lock().refused.as_deref() == Some(desired.as_str()) {
                    return self.outcome(
                        false,
                        format!("{app} {desired} was refused before and is marked bad (see last_refusal)"),
                        None,
                    );
                }
                if verdict.is_bad() {
                    let refused = Refused::KnownBad {
                        release: format!("{app} {desired}"),
                        reason: verdict.reason,
                    };
                    let outcome = self.refused_outcome(&desired, refused);
                    self.record.lock().remember_refused(desired, seen);
                    return outcome;
                }
            }
        }
        let first = self.engine.get().is_none();
        match self.change_to(&desired, why) {
            Ok(report) => {
                let message = match &report {
                    Some(r) => format!(
                        "{app} {} → {}: swapped, paused {} µs, {} bytes of state in schema {}",
                        r.from,
                        r.to,
                        r.steps.pause.as_micros(),
                        r.state_bytes,
                        r.schema
                    ),
                    None => format!("{app} {desired} is serving"),
                };
                if why == Change::Upgrade && !first && !self.config.probation.is_zero() {
                    super::probation::start(Arc::clone(self), desired.clone());
                }
                self.outcome(true, message, None)
            }
            Err(refused) => {
                let outcome = self.refused_outcome(&desired, refused);
                self.record.lock().remember_refused(desired, seen);
                outcome
            }
        }
    }

    /// Changes to `version`: on a rollback, back to the version kept loaded behind the active
    /// one (the engine's rollback, no load) when it is the target; else stage and swap to it, or start on it when nothing
    /// serves yet. A boot marker names the version while it loads and imports (see `boot.rs`).
    pub(super) fn change_to(&self, version: &str, why: Change) -> Result<Option<SwapReport>, Refused> {
        let from = self.running_version();
        // Only a start is marked: a death in a live swap proves nothing against the release (see
        // `boot.rs`), and a swap writes nothing into the state directory.
        let starting = why == Change::Boot || self.engine.get().is_none();
        let marker = starting.then(|| self.boot_marker(version));
        let report = match self.engine.get() {
            Some(engine) => {
                // A rollback to the version just replaced reuses it (no load); any other change,
                // an activation of an older version included, swaps to a fresh load and keeps
                // the replaced version, so the kept generations age out in order.
                let back = matches!(why, Change::Rollback | Change::ProbationRollback);
                let kept = back
                    && engine
                        .generations()
                        .first()
                        .is_some_and(|p| p.info().version == version);
                let report = if kept {
                    engine.rollback()?
                } else {
                    engine.swap(self.stage(version)?)?
                };
                Some(report)
            }
            None => {
                let plugin = self.stage(version)?;
                let release = plugin.id().to_owned();
                let state = self.restorable_state().map_err(|source| Refused::Snapshot {
                    release: release.clone(),
                    source,
                })?;
                let restored = state.as_ref().map(|(s, _)| (s.schema, s.bytes.len()));
                let (state, tables) = match state {
                    Some((state, tables)) => (Some(state), tables.unwrap_or_default()),
                    None => (None, Default::default()),
                };
                let engine = Engine::start_with_tables(plugin, state, tables, self.engine_config())?;
                // `changing` is held: nobody else can have set it.
                let _ = self.engine.set(engine);
                match restored {
                    Some((schema, bytes)) => {
                        tracing::info!(%release, schema, bytes, "serving, state restored from the snapshot")
                    }
                    None => tracing::info!(%release, "serving, fresh state"),
                }
                None
            }
        };
        drop(marker);
        self.changed(version, from, why, report.as_ref());
        Ok(report)
    }

    /// Verifies `version` on the volume and loads a private copy of its library.
    fn stage(&self, version: &str) -> Result<Arc<Plugin>, Refused> {
        let app = &self.config.app;
        let verified = self.volume.verify_release(app, version)?;
        let release = format!("{app} {version}");
        if !molt_abi::ABI_VERSIONS.contains(&verified.manifest.abi) {
            return Err(Refused::Abi {
                release,
                found: verified.manifest.abi,
                supported: molt_abi::ABI_VERSIONS,
            });
        }
        let expect = Expect {
            name: Some(app.clone()),
            version: Some(version.to_owned()),
            state_schema: Some(verified.manifest.state_schema),
            sha256: Some(verified.manifest.sha256.clone()),
        };
        // The release passed the volume's checks and is what `current` names: it is loaded to
        // be run, in this process. The loader hashes the bytes it copies and loads, so a file
        // swapped on the volume after the check above is refused, not run.
        Plugin::load_trusted(&verified.library, self.run_dir.path(), &expect)
            .map_err(|source| Refused::Load { release, source })
    }

    /// Records a completed change: metrics (once), history, `/status`, the volume report, and
    /// the verdict when the change needs no probation.
    fn changed(&self, version: &str, from: Option<String>, why: Change, report: Option<&SwapReport>) {
        let app = &self.config.app;
        if let Some(r) = report {
            self.swap_seq.fetch_add(1, Ordering::SeqCst);
            let result = match why {
                Change::ProbationRollback => SwapResult::RolledBack,
                _ => SwapResult::Ok,
            };
            self.metrics
                .record_swap(result, Some(r.steps.pause), Some(r.state_bytes));
            self.metrics
                .record_state_lock_wait(crate::metrics::Waiter::Swap, r.waited_for_snapshot);
        }
        self.metrics.set_active(app, version);
        let schema = self.engine.get().map(|e| e.active().info().state_schema);
        {
            let mut rec = self.record.lock();
            let from = from.or_else(|| rec.ran_before_restart.take());
            match rec.history.iter().position(|v| v == version) {
                Some(at) => rec.history.truncate(at),
                None => {
                    if let Some(from) = from.filter(|f| f != version) {
                        rec.history.push(from);
                    }
                }
            }
            let excess = rec.history.len().saturating_sub(HISTORY);
            rec.history.drain(..excess);
            rec.active = schema.map(|s| (version.to_owned(), s));
            rec.refused = None;
            if let Some(r) = report {
                rec.swaps += 1;
                rec.last_swap = Some(swap_record(r));
            }
        }
        let on_probation = why == Change::Upgrade && report.is_some() && !self.config.probation.is_zero();
        if !on_probation && why != Change::ProbationRollback {
            self.mark_good(version, "served");
        }
        self.publish();
    }

    /// Records `version` as good on the volume.
    pub(super) fn mark_good(&self, version: &str, how: &str) {
        if let Err(e) = self
            .volume
            .mark_good(&self.config.app, version, &self.instance, how)
        {
            tracing::warn!(error = %e, version, "cannot record the release as good on the volume");
        }
    }

    pub(super) fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            drain_timeout: self.config.drain_timeout,
            hook_timeout: self.config.hook_timeout,
            ..EngineConfig::default()
        }
    }
}

fn swap_record(report: &SwapReport) -> SwapRecord {
    SwapRecord {
        from: Some(report.from.clone()),
        to: report.to.clone(),
        pause_us: report.steps.pause.as_micros() as u64,
        waited_for_snapshot_us: super::report::micros(report.waited_for_snapshot),
        ok: true,
        error: None,
        state_bytes: report.state_bytes as u64,
        schema: Some(report.schema),
        at: now_rfc3339(),
    }
}
