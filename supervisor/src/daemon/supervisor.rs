//! The supervisor's shared state and the one path every version change takes: read what the
//! volume's `current` names, verify it, load it, and swap to it (or refuse, and say why).

use super::{DaemonError, RunConfig};
use crate::control::status::{now_rfc3339, Outcome, Probation, Refusal, SnapshotRecord, SwapRecord};
use crate::engine::{Engine, EngineConfig, State, SwapReport};
use crate::front::{Reply, Service};
use crate::loader::{Expect, Plugin};
use crate::manifest::ManifestError;
use crate::metrics::{Metrics, SwapResult};
use crate::snapshot::SnapshotStore;
use crate::volume::{Volume, VolumeError};
use molt_abi::{Request, Response};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

mod report;
mod upload;

/// One supervisor: its volume, its engine (once a version serves), its records.
pub struct Supervisor {
    config: RunConfig,
    volume: Volume,
    instance: String,
    snapshots: SnapshotStore,
    run_dir: tempfile::TempDir,
    /// Opens libraries that are only stored or checked, in a child process.
    inspector: crate::inspect::Inspector,
    engine: OnceLock<Engine>,
    metrics: Arc<Metrics>,
    record: Mutex<Record>,
    /// One version change at a time, from reading `current` to the end of the swap.
    changing: Mutex<()>,
    /// Bumped by every completed swap, so a probation can tell it has been superseded.
    swap_seq: AtomicU64,
    started: SystemTime,
    started_at: Instant,
}

#[derive(Default)]
struct Record {
    /// The serving version and its schema, as `/status` reports it: updated together with
    /// `swaps` and `last_swap`, so a reader never sees the new version with the old count.
    active: Option<(String, u32)>,
    swaps: u64,
    last_swap: Option<SwapRecord>,
    last_refusal: Option<Refusal>,
    probation: Option<Probation>,
    last_snapshot: Option<SnapshotRecord>,
    /// The desired version last refused: not retried until `current` names another, or an
    /// operator asks again through the control API.
    refused: Option<String>,
}

/// A refused version change: what, at which check, why.
struct Refused {
    release: String,
    step: String,
    error: String,
}

impl Supervisor {
    /// Prepares a supervisor: directories, the run directory for library copies, and a check
    /// of the latest snapshot (a corrupt one stops start-up unless `discard_corrupt_state`).
    pub fn open(config: RunConfig) -> Result<Arc<Supervisor>, DaemonError> {
        let volume = Volume::new(&config.volume);
        let instance = crate::volume::default_instance_name();
        let state_dir = match &config.state_dir {
            Some(dir) => dir.clone(),
            None => volume
                .state_dir(&config.app, &instance)
                .map_err(|e| DaemonError::State(e.to_string()))?,
        };
        let instance = state_dir
            .file_name()
            .map_or(instance, |n| n.to_string_lossy().into_owned());
        for dir in [&state_dir, &volume.app_dir(&config.app)] {
            std::fs::create_dir_all(dir)
                .map_err(|source| super::io(format!("creating {}", dir.display()), source))?;
        }
        let run_parent = config.run_dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&run_parent)
            .map_err(|source| super::io(format!("creating {}", run_parent.display()), source))?;
        let run_dir = tempfile::Builder::new()
            .prefix(&format!("molt-run-{}-", std::process::id()))
            .tempdir_in(&run_parent)
            .map_err(|source| super::io("creating the private run directory", source))?;
        // A push cut off an hour ago or more left a `.tmp-*` directory nothing will finish.
        match volume.clean_stale_temp(&config.app, std::time::Duration::from_secs(3600)) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(?removed, "removed leftovers of interrupted pushes")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not clean leftovers of interrupted pushes"),
        }
        let inspector = crate::inspect::Inspector::current()
            .map_err(|source| super::io("finding the molt binary (for inspecting uploads)", source))?
            .with_deadline(config.inspect_timeout);
        let sup = Supervisor {
            inspector,
            snapshots: SnapshotStore::new(&state_dir),
            volume,
            instance,
            run_dir,
            engine: OnceLock::new(),
            metrics: Arc::new(Metrics::new()),
            record: Mutex::new(Record::default()),
            changing: Mutex::new(()),
            swap_seq: AtomicU64::new(0),
            started: SystemTime::now(),
            started_at: Instant::now(),
            config,
        };
        sup.restorable_state()?;
        Ok(Arc::new(sup))
    }

    /// The latest snapshot's state, checked: a corrupt one is an error (and has been renamed
    /// aside by the store) unless `discard_corrupt_state`, in which case the next older one is
    /// tried, down to none.
    fn restorable_state(&self) -> Result<Option<State>, DaemonError> {
        loop {
            match self.snapshots.latest() {
                Ok(None) => return Ok(None),
                Ok(Some(snap)) if snap.app != self.config.app => {
                    return Err(DaemonError::State(format!(
                        "the snapshot in {} is of app {:?}, this supervisor runs {:?}: point --state-dir elsewhere",
                        self.snapshots.dir().display(),
                        snap.app,
                        self.config.app
                    )));
                }
                Ok(Some(snap)) => {
                    tracing::info!(version = %snap.version, schema = snap.schema, bytes = snap.bytes.len(), "snapshot found");
                    return Ok(Some(State {
                        schema: snap.schema,
                        bytes: snap.bytes,
                    }));
                }
                Err(e) if self.config.discard_corrupt_state => {
                    tracing::error!(error = %e, "corrupt snapshot kept aside; --discard-corrupt-state: trying the next older one");
                }
                Err(e) => {
                    return Err(DaemonError::State(format!(
                        "{e}; it was kept aside, not deleted. Nothing was started. To start anyway, \
                         from the next older snapshot or empty state, pass --discard-corrupt-state"
                    )))
                }
            }
        }
    }

    /// The app's directory on the volume (where `current` lives).
    pub fn app_dir(&self) -> PathBuf {
        self.volume.app_dir(&self.config.app)
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics, shared.
    pub fn metrics_arc(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// The engine, once a version serves.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.get()
    }

    /// Whether a version serves.
    pub fn is_ready(&self) -> bool {
        self.engine.get().is_some()
    }

    /// The serving version.
    pub fn running_version(&self) -> Option<String> {
        self.engine.get().map(|e| e.active().info().version.clone())
    }

    fn running_id(&self) -> Option<String> {
        self.engine.get().map(|e| e.active().id().to_owned())
    }

    /// Whether a control call's bearer token is acceptable.
    pub fn token_matches(&self, given: Option<&str>) -> bool {
        match (&self.config.token, given) {
            (None, _) => true,
            (Some(want), Some(given)) => {
                // Compare in constant time: the length is not secret, the contents are.
                want.len() == given.len()
                    && want
                        .bytes()
                        .zip(given.bytes())
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0
            }
            (Some(_), None) => false,
        }
    }

    /// Makes what runs match what `current` names. `force` retries a version refused before.
    /// Returns what happened; refusals are also logged and kept for `/status`.
    pub fn reconcile(self: &Arc<Self>, force: bool) -> Outcome {
        let _one_at_a_time = self.changing.lock();
        self.reconcile_locked(force, true)
    }

    /// `probation`: put a swapped-in version on probation (not for rollbacks).
    fn reconcile_locked(self: &Arc<Self>, force: bool, probation: bool) -> Outcome {
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
            Err(e) => return self.outcome(false, format!("cannot read the current version: {e}"), None),
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
    fn change_to(&self, version: &str) -> Result<Option<SwapReport>, Refused> {
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
        if verified.manifest.abi != molt_abi::ABI_VERSION {
            return Err(refused(
                "abi",
                format!(
                    "release {release}: its manifest says ABI {}, this supervisor speaks {}",
                    verified.manifest.abi,
                    molt_abi::ABI_VERSION
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
                tracing::info!(
                    from = %report.from, to = %report.to, pause_us = report.steps.pause.as_micros() as u64,
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
                let restored = state.as_ref().map(|s| (s.schema, s.bytes.len()));
                let engine = Engine::start(plugin, state, self.engine_config())
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

    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            drain_timeout: self.config.drain_timeout,
            hook_timeout: self.config.hook_timeout,
            ..EngineConfig::default()
        }
    }

    fn refuse(&self, version: &str, refused: Refused) -> Refusal {
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
        if self.engine.get().is_some() {
            rec.last_swap = Some(SwapRecord {
                from: self.running_version(),
                to: version.to_owned(),
                pause_us: 0,
                ok: false,
                error: Some(refusal.error.clone()),
                state_bytes: 0,
                schema: None,
                at: now_rfc3339(),
            });
        }
        refusal
    }

    fn outcome(&self, ok: bool, message: String, refusal: Option<Refusal>) -> Outcome {
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

    fn rollback_locked(self: &Arc<Self>) -> Outcome {
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

    /// Rolls back because `version` failed probation (called by the probation watcher).
    pub(super) fn probation_failed(self: &Arc<Self>, version: &str, reason: String) {
        let _one_at_a_time = self.changing.lock();
        if self.running_version().as_deref() != Some(version) {
            return; // superseded meanwhile
        }
        tracing::error!(%version, %reason, "probation failed: rolling back");
        let outcome = self.rollback_locked();
        let state = if outcome.ok { "failed" } else { "failed_stuck" };
        if outcome.ok {
            if let Some(swap) = &outcome.swap {
                self.metrics.record_swap(
                    SwapResult::RolledBack,
                    Some(std::time::Duration::from_micros(swap.pause_us)),
                    Some(swap.state_bytes as usize),
                );
            }
        } else {
            tracing::error!(%version, error = %outcome.message, "probation failed and the rollback was refused: the new version stays");
        }
        let reason = if outcome.ok {
            reason
        } else {
            format!("{reason}; rollback refused: {}", outcome.message)
        };
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

    fn restore_pointer(&self, before: Option<String>) {
        if let Some(before) = before {
            if let Err(e) = self.volume.activate(&self.config.app, &before) {
                tracing::error!(error = %e, "could not point `current` back at {before}");
            }
        }
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.snapshots.dir()
    }
}

impl Service for Supervisor {
    fn serve(&self, req: &Request<'_>) -> Reply {
        match self.engine.get() {
            Some(engine) => {
                let served = engine.handle(req);
                Reply {
                    response: served.response,
                    version: served.version,
                }
            }
            None => Reply {
                response: Response::new(503, format!("no version of {} is serving yet\n", self.config.app)),
                version: Arc::from(""),
            },
        }
    }
}

fn swap_record(from: Option<String>, report: &SwapReport, error: Option<String>) -> SwapRecord {
    SwapRecord {
        from,
        to: report.to.clone(),
        pause_us: report.steps.pause.as_micros() as u64,
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

/// The name of the check a volume error comes from, for `/status`.
fn volume_step(e: &VolumeError) -> &'static str {
    match e {
        VolumeError::Manifest { source, .. } => match source.as_ref() {
            ManifestError::ChecksumMismatch { .. } => "sha256",
            ManifestError::LibraryMissing { .. } => "library",
            _ => "manifest",
        },
        VolumeError::NotFound { .. } => "release",
        VolumeError::Immutable { .. } => "immutable",
        _ => "volume",
    }
}
