//! The receiving side of a handoff (docs/DESIGN.md, "Handoff"): merge a peer's state once per
//! handoff id, record the id in a snapshot with the merged state, and answer whether an id was
//! absorbed (fencing it when it was not, so a merge whose answer was lost settles one way).

use super::Supervisor;
use crate::handoff::wire::{AbsorbQuery, Absorbed, HandoffStep, Refused};
use crate::snapshot::Ledger;

impl Supervisor {
    /// `POST /absorb`: merges `state` (app `app`, schema `schema`, from the supervisor at
    /// `from`) through the running version's merge hook, unless handoff `id` was absorbed
    /// before (then nothing is applied and the answer says `already`). Then writes a snapshot
    /// that holds the merged state and the id. Refused, the state is untouched.
    pub fn absorb(
        &self,
        id: &str,
        from: &str,
        app: &str,
        schema: u32,
        state: Vec<u8>,
    ) -> Result<Absorbed, Refused> {
        // The engine's refusals say what still serves themselves; the others get it added.
        let refused = |why: String| {
            let why = crate::untrusted::note(&why);
            tracing::warn!(handoff = id, from, error = %why, "absorb refused");
            Refused::new(HandoffStep::Merge, why)
        };
        let refuse = |why: String| refused(format!("{why}; {}", self.still_serving()));
        if app != self.config.app {
            return Err(refuse(format!(
                "the state is of app {app:?}, this supervisor runs {:?}",
                self.config.app
            )));
        }
        // One version change, merge or absorb query at a time.
        let _one_at_a_time = self.changing.lock();
        let Some(engine) = self.engine.get() else {
            return Err(refuse("nothing is serving here to merge into".to_owned()));
        };
        if !self.handoffs.ready() {
            return Err(refuse(
                "this supervisor is handing off its own state: it absorbs nothing".to_owned(),
            ));
        }
        let version = engine.active().info().version.clone();
        {
            let ledger = self.handoffs.ledger.lock();
            if ledger.ids.iter().any(|known| known == id) {
                tracing::info!(
                    handoff = id,
                    from,
                    "absorb: handoff already absorbed, nothing applied"
                );
                return Ok(Absorbed {
                    id: id.to_owned(),
                    already: true,
                    version,
                    schema,
                    peer_bytes: state.len() as u64,
                    pause_us: 0,
                    merge_us: 0,
                    snapshot: None,
                    snapshot_error: None,
                });
            }
            if ledger.fenced.contains(id) {
                return Err(refuse(format!(
                    "handoff {id} was fenced (its outcome was asked for before it arrived): it is never applied"
                )));
            }
        }
        let peer_bytes = state.len() as u64;
        let report = engine.merge(schema, state).map_err(|e| refused(e.to_string()))?;
        {
            let mut ledger = self.handoffs.ledger.lock();
            ledger.ids.push_back(id.to_owned());
            while ledger.ids.len() > Ledger::KEEP {
                ledger.ids.pop_front();
            }
        }
        // The merged state and the id, on disk together (see the design's argument).
        let (snapshot, snapshot_error) = match self.snapshot() {
            Ok(path) => (path.map(|p| p.display().to_string()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        tracing::info!(
            handoff = id,
            from,
            schema,
            peer_bytes,
            pause_us = report.steps.pause.as_micros() as u64,
            snapshot = snapshot.as_deref().unwrap_or("-"),
            "absorbed a peer's state"
        );
        Ok(Absorbed {
            id: id.to_owned(),
            already: false,
            version: report.version,
            schema,
            peer_bytes,
            pause_us: report.steps.pause.as_micros() as u64,
            merge_us: report.steps.merge.as_micros() as u64,
            snapshot,
            snapshot_error,
        })
    }

    /// `POST /absorb/query`: whether handoff `id` was absorbed here. With `fence`, an id not
    /// absorbed is fenced: a merge of it arriving later is refused, so the answer stays true.
    /// Waits for an absorb under way (it holds the same lock).
    pub fn absorb_query(&self, id: &str, fence: bool) -> AbsorbQuery {
        let _one_at_a_time = self.changing.lock();
        let mut ledger = self.handoffs.ledger.lock();
        let absorbed = ledger.ids.iter().any(|known| known == id);
        if fence && !absorbed {
            ledger.fenced.insert(id.to_owned());
            tracing::info!(handoff = id, "handoff fenced: it will not be absorbed here");
        }
        AbsorbQuery {
            id: id.to_owned(),
            absorbed,
            fenced: ledger.fenced.contains(id),
        }
    }

    /// Takes the absorbed ids a restored snapshot remembers.
    pub(super) fn restore_ledger(&self, ledger: &Ledger) {
        let mut mine = self.handoffs.ledger.lock();
        mine.ids = ledger.absorbed.iter().cloned().collect();
    }
}
