//! The supervisor's shared state: its volume, its engine (once a version serves), its records
//! for `/status`, and how it is opened. What it does lives beside this file, one job a file:
//! `reconcile` (the one path every version change takes), `refusal`, `boot`, `activation`
//! (activate and rollback), `probation`, `report` (`/status` and snapshots), `upload`,
//! `traffic` (serving requests) and `control_api` (what the control API calls).

use super::{DaemonError, RunConfig};
use crate::control::status::{Probation, Refusal, SnapshotRecord, SwapRecord};
use crate::engine::{Engine, State};
use crate::metrics::Metrics;
use crate::snapshot::SnapshotStore;
use crate::tables::TableStore;
use crate::volume::{RefusalNote, Volume};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

/// One supervisor: its volume, its engine (once a version serves), its records.
pub struct Supervisor {
    pub(super) config: RunConfig,
    pub(super) volume: Volume,
    pub(super) instance: String,
    pub(super) snapshots: SnapshotStore,
    pub(super) run_dir: tempfile::TempDir,
    /// Held while the process lives: marks `run_dir` in use (see `leftovers`).
    _run_dir_lock: std::fs::File,
    /// Opens libraries that are only stored or checked, in a child process.
    pub(super) inspector: crate::inspect::Inspector,
    /// The state directory's lock, held for the supervisor's life.
    lock: crate::snapshot::StateLock,
    pub(super) engine: OnceLock<Engine>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) record: Mutex<Record>,
    /// One version change at a time, from reading `current` to the end of the swap.
    pub(super) changing: Mutex<()>,
    /// Bumped by every completed swap, so a probation can tell it has been superseded.
    pub(super) swap_seq: AtomicU64,
    pub(super) started: SystemTime,
    pub(super) started_at: Instant,
    /// When it started, in milliseconds since the Unix epoch (for its volume report).
    pub(super) started_ms: u64,
    /// The host name, for its volume report.
    pub(super) host: String,
    /// One writer of this supervisor's volume report at a time.
    pub(super) publishing: Mutex<()>,
    /// Set once the report is marked stopped: nothing writes it again.
    pub(super) withdrawn: std::sync::atomic::AtomicBool,
    /// This supervisor's part in handoffs: its own state's phase, the ids it absorbed.
    pub(super) handoffs: super::handoff::Handoffs,
    /// The latest snapshot as `open` read and checked it, with its version, kept for the first
    /// start so that a start reads the snapshot once (a large one takes seconds to read).
    /// Taken by the first [`Supervisor::restorable_state`]; a later call reads the file again.
    pub(super) first_restore: Mutex<Option<(String, Restorable)>>,
}

#[derive(Default)]
pub(super) struct Record {
    /// The serving version and its schema, as `/status` reports it: updated together with
    /// `swaps` and `last_swap`, so a reader never sees the new version with the old count.
    pub(super) active: Option<(String, u32)>,
    pub(super) swaps: u64,
    pub(super) last_swap: Option<SwapRecord>,
    pub(super) last_refusal: Option<Refusal>,
    pub(super) probation: Option<Probation>,
    pub(super) last_snapshot: Option<SnapshotRecord>,
    /// App requests answered when the last snapshot was written (what a lost final snapshot
    /// loses is counted from here).
    pub(super) requests_at_snapshot: u64,
    /// Set while snapshot writes fail; cleared by the next success.
    pub(super) snapshot_failure: Option<crate::control::SnapshotFailure>,
    /// The desired version last refused: not retried until `current` is written again (by
    /// any writer, even with the same version), or an operator asks again through the control
    /// API. A poll of an unchanged `current` does not retry it.
    pub(super) refused: Option<String>,
    /// What was seen of `current` when the reconcile that refused `refused` began (`None`:
    /// not known, so the next wake-up retries).
    pub(super) refused_seen: Option<Seen>,
    /// The last refused change, as the volume report carries it.
    pub(super) refused_note: Option<RefusalNote>,
    /// The versions this supervisor served before the running one, oldest first (see
    /// `reconcile.rs`); read back from its volume report after a restart.
    pub(super) history: Vec<String>,
    /// What the previous process of this instance ran, until the first version starts.
    pub(super) ran_before_restart: Option<String>,
}

/// What a reconcile saw of `current` as it began: the pointer file's stamp, and how many
/// changes of it the watcher had reported. Two reconciles that see the same have seen the same
/// write of `current`. Both are needed: the stamp alone can repeat (an inode number reused
/// within one tick of the file clock), and a volume without inotify reports no changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    stamp: Option<crate::volume::PointerStamp>,
    changes: u64,
}

impl Supervisor {
    /// What is seen of `current` now; taken before `current` is read.
    pub(super) fn seen(&self) -> Seen {
        Seen {
            changes: self.metrics.wakeups(crate::metrics::WakeSource::Change),
            stamp: self.volume.current_stamp(&self.config.app),
        }
    }
}

impl Record {
    /// Remembers that `key` (a desired version, or a pointer error) was refused by a
    /// reconcile that began having seen `seen`.
    pub(super) fn remember_refused(&mut self, key: String, seen: Seen) {
        self.refused = Some(key);
        self.refused_seen = Some(seen);
    }

    /// Whether `key` was refused by a reconcile that saw the same write of `current` as `seen`.
    pub(super) fn refused_before(&self, key: &str, seen: Seen) -> bool {
        self.refused.as_deref() == Some(key) && self.refused_seen == Some(seen)
    }
}

/// A snapshot's state: the bytes, and the tables when it has them.
pub(super) type Restorable = (State, Option<Arc<TableStore>>);

impl Supervisor {
    /// Prepares a supervisor: directories, the run directory for library copies, and a check
    /// of the latest snapshot (a corrupt one stops start-up unless `discard_corrupt_state`).
    pub fn open(config: RunConfig) -> Result<Arc<Supervisor>, DaemonError> {
        let volume = Volume::new(&config.volume).with_trust(config.trusted_keys.clone());
        let instance = crate::volume::default_instance_name();
        let state_dir = match &config.state_dir {
            Some(dir) => dir.clone(),
            None => volume
                .state_dir(&config.app, &instance)
                .map_err(|e| DaemonError::State(e.to_string()))?,
        };
        // The name this supervisor reports under on the volume (`supervisors/<instance>.json`):
        // its state directory's name, which is the host's name when the directory is the
        // volume's default. A directory given by `--state-dir` is named the same in every pod
        // of a deployment (`/state`), so its name is qualified with the host's: otherwise the
        // pods' reports overwrite one another and a push cannot tell who answered.
        let instance = match state_dir.file_name().map(|n| n.to_string_lossy().into_owned()) {
            Some(name) if name == instance => name,
            Some(name) => format!("{name}@{instance}"),
            None => instance,
        };
        for dir in [&state_dir, &volume.app_dir(&config.app)] {
            std::fs::create_dir_all(dir)
                .map_err(|source| super::error::io(format!("creating {}", dir.display()), source))?;
        }
        let run_parent = config.run_dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&run_parent)
            .map_err(|source| super::error::io(format!("creating {}", run_parent.display()), source))?;
        // One supervisor per state directory, held until this one ends.
        let lock = crate::snapshot::StateLock::acquire(&state_dir).map_err(DaemonError::Locked)?;
        let (run_dir, _run_dir_lock) = super::leftovers::claim_run_dir(&run_parent)?;
        let snapshots = SnapshotStore::new(&state_dir);
        super::leftovers::clean(&volume, &config.app, &snapshots, &run_parent);
        // What this instance ran before a restart, and where its rollbacks went.
        let earlier = volume.report(&config.app, &instance);
        let record = Record {
            history: earlier.as_ref().map(|r| r.history.clone()).unwrap_or_default(),
            ran_before_restart: earlier.and_then(|r| r.running),
            ..Record::default()
        };
        let inspector = crate::inspect::Inspector::current()
            .map_err(|source| super::error::io("finding the molt binary (for inspecting uploads)", source))?
            .with_deadline(config.inspect_timeout);
        let sup = Supervisor {
            inspector,
            lock,
            snapshots,
            _run_dir_lock,
            volume,
            instance,
            run_dir,
            engine: OnceLock::new(),
            metrics: Arc::new(Metrics::new()),
            record: Mutex::new(record),
            changing: Mutex::new(()),
            swap_seq: AtomicU64::new(0),
            started: SystemTime::now(),
            started_at: Instant::now(),
            started_ms: crate::volume::now_ms(),
            host: crate::volume::host_name(),
            publishing: Mutex::new(()),
            withdrawn: std::sync::atomic::AtomicBool::new(false),
            handoffs: Default::default(),
            first_restore: Mutex::new(None),
            config,
        };
        let first = sup.read_restorable_state()?;
        *sup.first_restore.lock() = first;
        if let Err(e) = sup.lock.record_holder() {
            tracing::warn!(lock = %sup.lock.path().display(), error = %e, "cannot write who holds the state directory's lock");
        }
        sup.recover_from_crash();
        Ok(Arc::new(sup))
    }

    /// The latest snapshot's state: the one `open` read, the first time; read again after.
    pub(super) fn restorable_state(&self) -> Result<Option<Restorable>, DaemonError> {
        if let Some((_, state)) = self.first_restore.lock().take() {
            return Ok(Some(state));
        }
        Ok(self.read_restorable_state()?.map(|(_, state)| state))
    }

    /// The version of the snapshot the first start restores, while it has not started.
    pub(super) fn first_restore_version(&self) -> Option<String> {
        self.first_restore
            .lock()
            .as_ref()
            .map(|(version, _)| version.clone())
    }

    /// The latest snapshot's version and state, read and checked: a corrupt one is an error
    /// (and has been renamed aside by the store) unless `discard_corrupt_state`, in which case
    /// the next older one is tried, down to none.
    fn read_restorable_state(&self) -> Result<Option<(String, Restorable)>, DaemonError> {
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
                Ok(Some(snap)) if snap.ledger.handed_off.is_some() => {
                    let handed = snap.ledger.handed_off.as_ref();
                    let (id, to) = handed.map_or(("", ""), |h| (h.id.as_str(), h.to.as_str()));
                    tracing::warn!(
                        handoff = id, to, version = %snap.version,
                        "the latest snapshot's state was handed to a peer: it is not served again; starting empty"
                    );
                    return Ok(None);
                }
                Ok(Some(snap)) if snap.ledger.pending.is_some() && self.settle_pending_at_start(&snap)? => {
                    // Handed off after all: recorded now, and the start is empty.
                    return Ok(None);
                }
                Ok(Some(snap)) => {
                    let records = snap.tables.as_ref().map_or(0, |t| t.records());
                    tracing::info!(version = %snap.version, schema = snap.schema, bytes = snap.bytes.len(), records, "snapshot found");
                    self.restore_ledger(&snap.ledger);
                    let state = State {
                        schema: snap.schema,
                        bytes: snap.bytes,
                    };
                    return Ok(Some((snap.version, (state, snap.tables))));
                }
                Err(crate::snapshot::SnapshotError::Corrupt { path, .. })
                    if self.config.discard_corrupt_state =>
                {
                    // The operator said so: set it aside (renamed, never deleted) and go on
                    // with the next older snapshot, or empty state.
                    let aside = self
                        .snapshots
                        .set_aside(&path)
                        .map_err(|e| DaemonError::State(format!("{e}; nothing was started")))?;
                    tracing::error!(
                        snapshot = %path.display(), aside = %aside.display(),
                        "--discard-corrupt-state: the corrupt snapshot is set aside; trying the next older one"
                    );
                }
                Err(e @ crate::snapshot::SnapshotError::Corrupt { .. }) => {
                    return Err(DaemonError::State(format!(
                        "{e}. Nothing was started, and no start will serve an older snapshot in its \
                         place on its own. To start anyway, from the next older snapshot or empty \
                         state, pass --discard-corrupt-state (the corrupt file is set aside, not deleted)"
                    )))
                }
                Err(e) => {
                    return Err(DaemonError::State(format!("{e}; nothing was started")));
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

    /// Whether a version serves and no handoff of this supervisor's state is under way or
    /// done (readiness goes false first in a handoff, so a Service stops routing here).
    pub fn is_ready(&self) -> bool {
        self.engine.get().is_some() && self.handoffs.ready()
    }

    /// Readiness (`GET /readyz`): a version serves, and the last snapshot write did not fail.
    ///
    /// Snapshot failures make the pod unready on purpose: every request it acknowledges while
    /// its state cannot be written is one a crash would lose, so the load balancer should send
    /// traffic elsewhere until a snapshot succeeds again. The pod is not restarted (liveness
    /// stays green): a restart would lose everything since the last snapshot that did succeed.
    pub fn readiness(&self) -> Result<(), String> {
        if self.engine.get().is_none() {
            return Err(format!("no version of {} serves yet", self.config.app));
        }
        if !self.handoffs.ready() {
            return Err(self.handoffs.sealed_reason().trim_end().to_owned());
        }
        match &self.record.lock().snapshot_failure {
            None => Ok(()),
            Some(f) => Err(format!(
                "snapshot writes are failing ({} in a row since {}): {}; the state changed since the \
                 last snapshot is only in memory",
                f.consecutive, f.since, f.error
            )),
        }
    }

    /// The serving version.
    pub fn running_version(&self) -> Option<String> {
        self.engine.get().map(|e| e.active().info().version.clone())
    }

    pub(super) fn running_id(&self) -> Option<String> {
        self.engine.get().map(|e| e.active().id().to_owned())
    }

    /// Whether a control call's bearer token is acceptable.
    pub fn token_matches(&self, given: Option<&str>) -> bool {
        match (&self.config.token, given) {
            (None, _) => true,
            (Some(want), Some(given)) => {
                // Constant time in the contents (`subtle`); the length is not secret.
                bool::from(subtle::ConstantTimeEq::ct_eq(want.as_bytes(), given.as_bytes()))
            }
            (Some(_), None) => false,
        }
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.snapshots.dir()
    }
}
