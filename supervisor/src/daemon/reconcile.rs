//! The one path every version change takes: read what the volume's `current` names, verify
//! it, load it, and swap to it (or start on it when nothing serves yet), or refuse and say why.

use super::refusal::{volume_step, Refused};
use super::Supervisor;
use crate::control::status::{now_rfc3339, Outcome, SwapRecord};
use crate::engine::{Engine, EngineConfig, SwapReport};
use crate::loader::{Expect, Plugin};
use crate::metrics::SwapResult;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Supervisor {
    /// Makes what runs match what `current` names. `force` retries a version refused before.
    /// Returns what happened; refusals are also logged and kept for `/status`.
    pub fn reconcile(self: &Arc<Self>, force: bool) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        self.reconcile_locked(force, true)
    }

    /// `probation`: put a swapped-in version on probation (not for rollbacks).
    pub(super) fn reconcile_locked(self: &Arc<Self>, force: bool, probation: bool) -> Outcome {
        let app = &self.config.app;
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
                // distinct error (a poll would otherwise repeat it every interval).
                let error = format!("cannot read the current version: {e}");
                let repeated = self
                    .record
                    .lock()
                    .last_refusal
                    .as_ref()
                    .is_some_and(|r| r.step == "current" && r.error.starts_with(&error));
                if repeated {
                    return self.outcome(false, error, None);
                }
                let refusal = self.refuse(
                    "",
                    Refused {
                        release: format!("{app} (the current pointer)"),
                        step: "current".to_owned(),
                        error,
                    },
                );
                return self.outcome(false, refusal.error.clone(), Some(refusal));
            }
        };
        if self.running_version().as_deref() == Some(desired.as_str()) {
            self.record.lock().refused = None;
            return self.outcome(true, format!("{app} {desired} is already serving"), None);
        }
        if !force && self.record.lock().refused.as_deref() == Some(desired.as_str()) {
            return self.outcome(
                false,
                format!("{app} {desired} was refused before (see last_refusal)"),
                None,
            );
        }
        let first = self.engine.get().is_none();
        match self.change_to(&desired) {
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
                if probation && !first && !self.config.probation.is_zero() {
                    super::probation::start(Arc::clone(self), desired.clone());
                }
                self.outcome(true, message, None)
            }
            Err(refused) => {
                let refusal = self.refuse(&desired, refused);
                let message = refusal.error.clone();
                self.outcome(false, message, Some(refusal))
            }
        }
    }

    /// Stage and swap to `version` (or start on it when nothing serves yet).
    pub(super) fn change_to(&self, version: &str) -> Result<Option<SwapReport>, Refused> {
        let app = &self.config.app;
        let release = format!("{app} {version}");
        let refused = |step: &str, error: String| Refused {
            release: release.clone(),
            step: step.to_owned(),
            error,
        };
        let verified = self
            .volume
            .verify_release(app, version)
            .map_err(|e| refused(volume_step(&e), e.to_string()))?;
        if !molt_abi::ABI_VERSIONS.contains(&verified.manifest.abi) {
            return Err(refused(
                "abi",
                format!(
                    "release {release}: its manifest says ABI {}, this supervisor loads ABI versions {:?}",
                    verified.manifest.abi,
                    molt_abi::ABI_VERSIONS
                ),
            ));
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
        let plugin = Plugin::load_trusted(&verified.library, self.run_dir.path(), &expect)
            .map_err(|e| refused("load", format!("release {release}: {e}")))?;
        match self.engine.get() {
            Some(engine) => {
                let report = engine
                    .swap(plugin)
                    .map_err(|e| refused(&e.step.to_string(), e.to_string()))?;
                self.swap_seq.fetch_add(1, Ordering::SeqCst);
                self.metrics
                    .record_swap(SwapResult::Ok, Some(report.steps.pause), Some(report.state_bytes));
                self.metrics.set_active(app, version);
                self.metrics
                    .record_state_lock_wait(crate::metrics::Waiter::Swap, report.waited_for_snapshot);
                tracing::info!(
                    from = %report.from, to = %report.to, pause_us = report.steps.pause.as_micros() as u64,
                    waited_for_snapshot_us = report.waited_for_snapshot.as_micros() as u64,
                    state_bytes = report.state_bytes, schema = report.schema, "swapped"
                );
                let mut rec = self.record.lock();
                rec.active = Some((version.to_owned(), report_schema(engine)));
                rec.swaps += 1;
                rec.refused = None;
                rec.last_swap = Some(swap_record(Some(report.from.clone()), &report, None));
                Ok(Some(report))
            }
            None => {
                let state = self
                    .restorable_state()
                    .map_err(|e| refused("snapshot", e.to_string()))?;
                let restored = state.as_ref().map(|(s, _)| (s.schema, s.bytes.len()));
                let (state, tables) = match state {
                    Some((state, tables)) => (Some(state), tables.unwrap_or_default()),
                    None => (None, Default::default()),
                };
                let engine = Engine::start_with_tables(plugin, state, tables, self.engine_config())
                    .map_err(|e| refused(&e.step.to_string(), e.to_string()))?;
                // `changing` is held: nobody else can have set it.
                let _ = self.engine.set(engine);
                self.metrics.set_active(app, version);
                match restored {
                    Some((schema, bytes)) => {
                        tracing::info!(%release, schema, bytes, "serving, state restored from the snapshot")
                    }
                    None => tracing::info!(%release, "serving, fresh state"),
                }
                let mut rec = self.record.lock();
                rec.refused = None;
                rec.active = self
                    .engine
                    .get()
                    .map(report_schema)
                    .map(|schema| (version.to_owned(), schema));
                Ok(None)
            }
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

fn swap_record(from: Option<String>, report: &SwapReport, error: Option<String>) -> SwapRecord {
    SwapRecord {
        from,
        to: report.to.clone(),
        pause_us: report.steps.pause.as_micros() as u64,
        waited_for_snapshot_us: super::report::micros(report.waited_for_snapshot),
        ok: error.is_none(),
        error,
        state_bytes: report.state_bytes as u64,
        schema: Some(report.schema),
        at: now_rfc3339(),
    }
}

/// The state schema of the engine's active version.
fn report_schema(engine: &Engine) -> u32 {
    engine.active().info().state_schema
}
