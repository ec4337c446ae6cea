//! The departing side of a handoff (docs/DESIGN.md, "Handoff"): readiness false, the seal
//! that drains traffic, the export it keeps, and the commit or abort that ends it.
//!
//! The seal is a lock every request holds shared while it runs ([`Supervisor::serve`] in
//! `traffic`); sealing takes it exclusively under the drain deadline, so once it is held no
//! request is in flight, and every later request sees the seal and is answered 503. The export
//! taken then holds every acknowledged write.

use super::Supervisor;
use crate::handoff::unix_ms;
use crate::handoff::wire::{Begun, Done, HandoffInfo, HandoffStep, Phase, Refused};
use crate::snapshot::{HandedOff, Ledger, PendingHandoff, Snapshot};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A supervisor's handoff records: its own state's phase, and what it absorbed.
pub(crate) struct Handoffs {
    /// Drawn at start (see [`HandoffInfo::boot_id`]).
    pub(super) boot_id: String,
    /// `true` once sealed: traffic is answered 503. Requests hold it shared (module docs).
    seal: RwLock<bool>,
    phase: Mutex<Own>,
    pub(super) ledger: Mutex<Absorbed>,
    /// Held while a snapshot is written ([`Supervisor::snapshot`]) and while a commit writes
    /// its record, taken before `phase`: a snapshot that read the phase as sealed (and records
    /// the handoff as pending) never lands after the record.
    pub(super) writing: Mutex<()>,
}

/// The phase of this supervisor's own state.
#[derive(Default)]
enum Own {
    #[default]
    Serving,
    Unready {
        id: String,
        to: String,
    },
    Sealed {
        id: String,
        to: String,
        app: String,
        version: String,
        schema: u32,
        state: Bytes,
        /// Past this, with no commit or abort, the supervisor settles it itself (`lease`).
        lease_until: Instant,
    },
    HandedOff {
        id: String,
        to: String,
        /// The snapshot that records it; `Err` holds the record still to be written.
        record: Result<PathBuf, Box<Snapshot>>,
    },
}

/// The handoffs this supervisor absorbed (the newest [`Ledger::KEEP`]) and the ids it fenced.
#[derive(Default)]
pub(super) struct Absorbed {
    pub(super) ids: VecDeque<String>,
    pub(super) fenced: BTreeSet<String>,
}

impl Default for Handoffs {
    fn default() -> Self {
        Handoffs {
            boot_id: crate::handoff::new_id().replacen("h-", "boot-", 1),
            seal: RwLock::default(),
            phase: Mutex::default(),
            ledger: Mutex::default(),
            writing: Mutex::default(),
        }
    }
}

impl Handoffs {
    /// Whether readiness may be true as far as handoffs go.
    pub(super) fn ready(&self) -> bool {
        matches!(*self.phase.lock(), Own::Serving)
    }

    /// Held by a request for its duration: `true` means sealed, answer 503.
    pub(super) fn traffic(&self) -> RwLockReadGuard<'_, bool> {
        self.seal.read()
    }

    /// The sealed handoff whose lease ran out, as (id, receiver); its lease is extended by
    /// `retry` so that a settling that fails is tried again later, not at once.
    pub(super) fn expired_lease(&self, retry: Duration) -> Option<(String, String)> {
        let mut phase = self.phase.lock();
        match &mut *phase {
            Own::Sealed {
                id, to, lease_until, ..
            } if *lease_until <= Instant::now() => {
                *lease_until = Instant::now() + retry;
                Some((id.clone(), to.clone()))
            }
            _ => None,
        }
    }

    /// [`Handoffs::traffic`] without waiting: `None` while a seal is being taken.
    pub(super) fn try_traffic(&self) -> Option<RwLockReadGuard<'_, bool>> {
        self.seal.try_read()
    }

    /// Why traffic is sealed, for the 503's body.
    pub(super) fn sealed_reason(&self) -> String {
        match &*self.phase.lock() {
            Own::HandedOff { id, to, .. } => {
                format!("this supervisor's state was handed to {to} (handoff {id}); it serves nothing until restarted\n")
            }
            Own::Sealed { id, to, .. } => format!("handing this supervisor's state to {to} (handoff {id})\n"),
            _ => "sealed\n".to_owned(),
        }
    }

    /// The ledger a snapshot of this supervisor's state records; `None` once the state was
    /// handed off (no snapshot may then record it as this supervisor's own). While sealed it
    /// records the handoff as pending: a start on that snapshot asks the receiver first.
    pub(super) fn ledger(&self) -> Option<Ledger> {
        let pending = match &*self.phase.lock() {
            Own::HandedOff { .. } => return None,
            Own::Sealed { id, to, .. } => Some(PendingHandoff {
                id: id.clone(),
                to: to.clone(),
            }),
            Own::Serving | Own::Unready { .. } => None,
        };
        Some(Ledger {
            handed_off: None,
            absorbed: self.ledger.lock().ids.iter().cloned().collect(),
            pending,
        })
    }

    /// The sealed handoff, as (id, receiver), whatever its lease.
    pub(super) fn sealed(&self) -> Option<(String, String)> {
        match &*self.phase.lock() {
            Own::Sealed { id, to, .. } => Some((id.clone(), to.clone())),
            _ => None,
        }
    }

    fn phase(&self) -> Phase {
        match &*self.phase.lock() {
            Own::Serving => Phase::Serving,
            Own::Unready { id, to } => Phase::Unready {
                id: id.clone(),
                to: to.clone(),
            },
            Own::Sealed { id, to, .. } => Phase::Sealed {
                id: id.clone(),
                to: to.clone(),
            },
            Own::HandedOff { id, to, .. } => Phase::HandedOff {
                id: id.clone(),
                to: to.clone(),
            },
        }
    }
}

impl Supervisor {
    /// `GET /handoff`.
    pub fn handoff_info(&self) -> HandoffInfo {
        let plugin = self.engine.get().map(|e| e.active());
        let info = plugin.as_ref().map(|p| p.info());
        HandoffInfo {
            boot_id: self.handoffs.boot_id.clone(),
            app: self.config.app.clone(),
            version: info.map(|i| i.version.clone()),
            state_schema: info.map(|i| i.state_schema),
            exports: info.map(|i| i.exports.clone()).unwrap_or_default(),
            merges: info.map(|i| i.merges.clone()).unwrap_or_default(),
            phase: self.handoffs.phase(),
            last_snapshot_bytes: self.record.lock().last_snapshot.as_ref().map(|s| s.bytes),
            absorbed: self.handoffs.ledger.lock().ids.len(),
        }
    }

    /// `POST /handoff/begin`: readiness false, wait `unready`, seal under the `drain`
    /// deadline, export in `schema` (default: the running one) and keep it for
    /// [`Supervisor::handoff_state`]. On a failure the supervisor is ready and serving again.
    /// Sealed for longer than `lease` without a commit or an abort (the coordinator died), the
    /// supervisor asks the receiver itself and commits or aborts (`lease`).
    pub fn handoff_begin(
        &self,
        id: &str,
        to: &str,
        schema: Option<u32>,
        unready: Duration,
        drain: Duration,
        lease: Duration,
    ) -> Result<Begun, Refused> {
        let still = |what: &str| format!("{what}; {}", self.still_serving());
        let Some(engine) = self.engine.get() else {
            return Err(Refused::new(
                HandoffStep::Check,
                "nothing is serving: no state to hand off",
            ));
        };
        {
            let mut phase = self.handoffs.phase.lock();
            match &*phase {
                Own::Serving => {}
                Own::HandedOff { id: other, to, .. } => {
                    return Err(Refused::new(
                        HandoffStep::Check,
                        format!("the state was already handed to {to} (handoff {other}); nothing is serving"),
                    ))
                }
                Own::Unready { id: other, .. } | Own::Sealed { id: other, .. } => {
                    return Err(Refused::new(
                        HandoffStep::Check,
                        format!("handoff {other} is under way; {}", self.still_serving()),
                    ))
                }
            }
            *phase = Own::Unready {
                id: id.to_owned(),
                to: to.to_owned(),
            };
        }
        tracing::info!(handoff = id, to, "handoff: readiness false");
        // Before the seal is held, only the phase goes back; after, the seal is lifted too.
        let back_to_serving = |step, why: String| {
            *self.handoffs.phase.lock() = Own::Serving;
            tracing::warn!(handoff = id, %step, error = %why, "handoff aborted: ready and serving again");
            Refused::new(step, why)
        };
        let started = Instant::now();
        std::thread::sleep(unready);
        let unready_us = started.elapsed().as_micros() as u64;

        // One version change or handoff at a time: no swap while the state is exported.
        let _one_at_a_time = self.changing.lock();
        let drain_started = Instant::now();
        match self.handoffs.seal.try_write_for(drain) {
            Some(mut sealed) => *sealed = true,
            None => {
                let why = format!("in-flight requests did not finish within {drain:?}");
                return Err(back_to_serving(HandoffStep::Drain, still(&why)));
            }
        }
        let drain_us = drain_started.elapsed().as_micros() as u64;
        let export_started = Instant::now();
        let plugin = engine.active();
        let schema = schema.unwrap_or(plugin.info().state_schema);
        let state = match engine.export_in(schema) {
            Ok(state) => state,
            Err(e) => {
                *self.handoffs.seal.write() = false;
                return Err(back_to_serving(HandoffStep::Export, e.to_string()));
            }
        };
        let export_us = export_started.elapsed().as_micros() as u64;
        let (app, version) = (self.config.app.clone(), plugin.info().version.clone());
        *self.handoffs.phase.lock() = Own::Sealed {
            id: id.to_owned(),
            to: to.to_owned(),
            app,
            version,
            schema,
            state: Bytes::from_owner(state),
            lease_until: Instant::now() + lease,
        };
        // Written ahead, before the state leaves: a snapshot that records the handoff as
        // pending, so that a restart after any crash from here on asks the receiver before it
        // serves the state (the periodic snapshot before the seal holds it plainly).
        let record_started = Instant::now();
        if let Err(e) = self.snapshot() {
            *self.handoffs.seal.write() = false;
            let why = format!("the snapshot recording the handoff as pending failed: {e}");
            return Err(back_to_serving(HandoffStep::Export, still(&why)));
        }
        let record_us = record_started.elapsed().as_micros() as u64;
        let state_bytes = match &*self.handoffs.phase.lock() {
            Own::Sealed { state, .. } => state.len() as u64,
            _ => 0,
        };
        let begun = Begun {
            id: id.to_owned(),
            app: self.config.app.clone(),
            version: plugin.info().version.clone(),
            schema,
            state_bytes,
            unready_us,
            drain_us,
            export_us,
            record_us,
        };
        tracing::info!(
            handoff = id,
            to,
            schema,
            state_bytes = begun.state_bytes,
            drain_us,
            export_us,
            record_us,
            "handoff: sealed (traffic answered 503) and exported"
        );
        Ok(begun)
    }

    /// `GET /handoff/state`: the state exported by [`Supervisor::handoff_begin`]: (app,
    /// schema, bytes).
    pub fn handoff_state(&self, id: &str) -> Result<(String, u32, Bytes), Refused> {
        match &*self.handoffs.phase.lock() {
            Own::Sealed {
                id: sealed,
                app,
                schema,
                state,
                ..
            } if sealed == id => Ok((app.clone(), *schema, state.clone())),
            _ => Err(Refused::new(
                HandoffStep::Transfer,
                format!("no state is held for handoff {id} (it was never begun here, or ended)"),
            )),
        }
    }

    /// `POST /handoff/commit`: the receiver has the state. Writes the snapshot that records
    /// the handoff (the state, marked handed off), and stays sealed: it serves nothing until
    /// restarted, and a restart starts empty. Committing twice answers the same.
    pub fn handoff_commit(&self, id: &str) -> Result<Done, Refused> {
        let _one_writer = self.handoffs.writing.lock();
        let mut phase = self.handoffs.phase.lock();
        let (to, version, schema, state) = match &*phase {
            Own::Sealed {
                id: sealed,
                to,
                version,
                schema,
                state,
                ..
            } if sealed == id => (to.clone(), version.clone(), *schema, state.clone()),
            Own::HandedOff { id: done, to, .. } if done == id => {
                return Ok(Done {
                    id: id.to_owned(),
                    message: format!("handoff {id} to {to} was committed already"),
                })
            }
            _ => {
                return Err(Refused::new(
                    HandoffStep::Commit,
                    format!("handoff {id} is not sealed here: nothing to commit"),
                ))
            }
        };
        let mut snap = Snapshot::new(&self.config.app, version, schema, state.to_vec());
        snap.ledger = Ledger {
            handed_off: Some(HandedOff {
                id: id.to_owned(),
                to: to.clone(),
                at_ms: unix_ms(),
            }),
            absorbed: self.handoffs.ledger.lock().ids.iter().cloned().collect(),
            pending: None,
        };
        // From here on the state is the receiver's: whatever the disk says, this supervisor
        // never serves it again in this process, and a failed record is retried by every
        // later snapshot, the one at shutdown included.
        let written = self.snapshots.write(&snap);
        *phase = Own::HandedOff {
            id: id.to_owned(),
            to: to.clone(),
            record: match &written {
                Ok(path) => Ok(path.clone()),
                Err(_) => Err(Box::new(snap)),
            },
        };
        drop(phase);
        match written {
            Ok(path) => {
                tracing::info!(handoff = id, %to, snapshot = %path.display(), "handoff committed: the state is the receiver's");
                Ok(Done {
                    id: id.to_owned(),
                    message: format!(
                        "state handed to {to}; recorded in {}; this supervisor serves nothing until restarted, and starts empty",
                        path.display()
                    ),
                })
            }
            Err(e) => {
                tracing::error!(handoff = id, %to, error = %e, "handoff committed, but its snapshot failed: retried at shutdown");
                Err(Refused::new(
                    HandoffStep::Commit,
                    format!(
                        "the receiver {to} holds the state, but the snapshot recording the handoff failed: {e}; \
                         this supervisor stays sealed and retries the record at shutdown"
                    ),
                ))
            }
        }
    }

    /// `POST /handoff/abort`: unseal and be ready again, the state untouched. Refused once
    /// committed (the receiver holds the state). Aborting what is not under way is a no-op.
    pub fn handoff_abort(&self, id: &str) -> Result<Done, Refused> {
        let mut phase = self.handoffs.phase.lock();
        match &*phase {
            Own::Unready { id: ours, .. } | Own::Sealed { id: ours, .. } if ours == id => {
                *phase = Own::Serving;
                drop(phase);
                *self.handoffs.seal.write() = false;
                tracing::warn!(
                    handoff = id,
                    "handoff aborted: ready and serving again, state untouched"
                );
                Ok(Done {
                    id: id.to_owned(),
                    message: format!("handoff {id} aborted; {}", self.still_serving()),
                })
            }
            Own::HandedOff { id: done, to, .. } if done == id => Err(Refused::new(
                HandoffStep::Commit,
                format!("handoff {id} was committed: {to} holds the state; it cannot be aborted"),
            )),
            _ => Ok(Done {
                id: id.to_owned(),
                message: format!("handoff {id} is not under way here; {}", self.still_serving()),
            }),
        }
    }

    /// The snapshot that records this supervisor's handoff, written now if an earlier attempt
    /// failed. What [`Supervisor::snapshot`] answers once the state was handed off.
    pub(super) fn handoff_record(&self) -> Result<Option<PathBuf>, super::DaemonError> {
        let mut phase = self.handoffs.phase.lock();
        let Own::HandedOff { id, record, .. } = &mut *phase else {
            return Ok(None);
        };
        let snap = match record {
            Ok(path) => return Ok(Some(path.clone())),
            Err(snap) => snap,
        };
        match self.snapshots.write(snap) {
            Ok(path) => {
                tracing::info!(handoff = %id, snapshot = %path.display(), "the handoff is recorded");
                *record = Ok(path.clone());
                Ok(Some(path))
            }
            Err(e) => Err(super::DaemonError::State(format!(
                "the snapshot recording handoff {id} failed again: {e}; the state belongs to the receiver, \
                 but this state directory's newest snapshot still holds it: do not restart on it \
                 before removing that snapshot"
            ))),
        }
    }

    /// "<release> still serving", or "nothing is serving".
    pub(super) fn still_serving(&self) -> String {
        match self.running_id() {
            Some(id) => format!("{id} still serving"),
            None => "nothing is serving".to_owned(),
        }
    }
}
