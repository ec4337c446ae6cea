//! Absorbing a peer's state through the merge hook (docs/DESIGN.md, "Handoff").
//!
//! A merge is a swap to the running version itself with one step more: in the pause, the
//! running state is exported and imported into a fresh instance of the same plugin, the
//! peer's state is merged into that copy, and the copy becomes the active instance. Until the
//! switch nothing a request can reach has changed, so a merge that errs, panics or misses its
//! deadline drops the copy and the running instance serves on with its state, exactly as a
//! refused swap does. An app that keeps state in host tables is refused before anything
//! pauses: its copy would share the tables with the running instance. The price is a pause that covers export, import and merge (the same
//! order of cost as a schema-changing swap of the combined state).

use super::deadline::Worker;
use super::error::{Action, Cause, Step, SwapError};
use super::{Active, Engine};
use crate::loader::{Hook, StateBytes};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a merge did, and how long each step took.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MergeReport {
    /// The version that merged (and serves on).
    pub version: String,
    /// The schema the peer's state was in.
    pub schema: u32,
    /// Size of the peer's state.
    pub peer_bytes: usize,
    /// Size of the running state before the merge.
    pub own_bytes: usize,
    /// How long each step took.
    #[serde(flatten)]
    pub steps: MergeSteps,
}

/// The steps of a merge; `pause` is what callers felt (`drain + export + import + merge +
/// switch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct MergeSteps {
    /// From the first queued call to the moment traffic resumed.
    #[serde(serialize_with = "micros")]
    pub pause: Duration,
    /// Waiting for in-flight calls.
    #[serde(serialize_with = "micros")]
    pub drain: Duration,
    /// Exporting the running state.
    #[serde(serialize_with = "micros")]
    pub export: Duration,
    /// Importing it into the copy.
    #[serde(serialize_with = "micros")]
    pub import: Duration,
    /// The merge hook.
    #[serde(serialize_with = "micros")]
    pub merge: Duration,
    /// Installing the copy and opening the gate.
    #[serde(serialize_with = "micros")]
    pub switch: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

impl Engine {
    /// Absorbs `peer`, a state another instance of this app exported in `schema`, through the
    /// running version's merge hook (module docs). Refused before anything pauses when the
    /// running version has no merge hook or does not merge `schema`. On any failure nothing
    /// changed: the running instance serves on with its state, and the error names the step.
    pub fn merge(&self, schema: u32, peer: Vec<u8>) -> Result<MergeReport, SwapError> {
        let _one_at_a_time = self.swapping.lock();
        let plugin = self.active();
        let started = Instant::now();
        let fail = |step, cause| {
            let pause_us = started.elapsed().as_micros() as u64;
            let err = SwapError {
                action: Action::Merge,
                release: plugin.id().to_owned(),
                step,
                cause,
                serving: Some(plugin.id().to_owned()),
                pause_us,
            };
            tracing::warn!(error = %err, pause_us, "merge refused");
            err
        };
        let info = plugin.info();
        if info.merges.is_empty() {
            return Err(fail(Step::Stage, Cause::NoMergeHook));
        }
        if plugin.keeps_tables() {
            return Err(fail(Step::Stage, Cause::MergeOfTables));
        }
        if !info.merges.contains(&schema) {
            let merges = info.merges.clone();
            return Err(fail(Step::Stage, Cause::CannotMerge { schema, merges }));
        }
        let own_schema = info.state_schema;
        let timeout = self.config.hook_timeout;
        let worker = Worker::spawn("merge", Hook::Merge)
            .and_then(|worker| worker.run(Hook::Merge, timeout, || ()).map(|()| worker))
            .map_err(|cause| fail(Step::Stage, cause))?;

        // Pause and drain.
        let paused = Instant::now();
        let Some(mut gate) = self.gate.try_write_for(self.config.drain_timeout) else {
            let timeout = self.config.drain_timeout;
            return Err(fail(Step::Drain, Cause::DrainTimeout { timeout }));
        };
        let drained = Instant::now();
        // Export the running state; the instance stays intact.
        let running = Arc::clone(&gate.instance);
        let own = worker
            .run(Hook::Export, timeout, move || running.export(own_schema))
            .and_then(|r| r.map_err(Cause::Hook))
            .map_err(|cause| fail(Step::Export, cause))?;
        let own_bytes = own.len();
        let exported = Instant::now();
        // A copy of it, which no request reaches (built as a swap builds an instance; the app
        // keeps no tables, checked above, so the copy shares nothing with the running one).
        let importer = Arc::clone(&plugin);
        let tables = Arc::clone(&self.tables);
        let copy = worker
            .run(Hook::Import, timeout, move || {
                importer.import_owned(&tables, own_schema, own)
            })
            .and_then(|r| r.map_err(Cause::Hook))
            .map_err(|cause| fail(Step::Import, cause))?;
        let imported = Instant::now();
        // The peer's state merged into the copy. A merge past its deadline is abandoned with
        // the copy; its thread keeps the plugin mapped while it runs.
        let peer_bytes = peer.len();
        let merged = worker
            .run(Hook::Merge, timeout, move || {
                let mut copy = copy;
                copy.merge(schema, &peer).map(|()| copy)
            })
            .and_then(|r| r.map_err(Cause::Hook))
            .map_err(|cause| fail(Step::Merge, cause))?;
        let merged_at = Instant::now();
        // Switch and resume.
        let replaced = std::mem::replace(&mut *gate, Active::new(merged));
        let resumed = Instant::now();
        drop(gate);
        drop(replaced);

        let steps = MergeSteps {
            pause: resumed - paused,
            drain: drained - paused,
            export: exported - drained,
            import: imported - exported,
            merge: merged_at - imported,
            switch: resumed - merged_at,
        };
        let report = MergeReport {
            version: info.version.clone(),
            schema,
            peer_bytes,
            own_bytes,
            steps,
        };
        tracing::info!(
            release = %plugin.id(),
            schema,
            peer_bytes,
            own_bytes,
            pause_us = steps.pause.as_micros() as u64,
            merge_us = steps.merge.as_micros() as u64,
            "merged a peer's state"
        );
        Ok(report)
    }
}

impl Engine {
    /// Exports the running state in `schema` (one the running version exports), holding the
    /// gate shared: what a departing supervisor hands to a peer.
    pub fn export_in(&self, schema: u32) -> Result<StateBytes, SwapError> {
        let active = self.gate.read();
        let instance = Arc::clone(&active.instance);
        let plugin = Arc::clone(instance.plugin());
        let fail = |step, cause| SwapError {
            action: Action::Snapshot,
            release: plugin.id().to_owned(),
            step,
            cause,
            serving: Some(plugin.id().to_owned()),
            pause_us: 0,
        };
        if !plugin.info().exports.contains(&schema) {
            let cause = Cause::NoSharedSchema {
                exports: plugin.info().exports.clone(),
                imports: vec![schema],
            };
            return Err(fail(Step::Stage, cause));
        }
        let exported = super::deadline::run(Hook::Export, self.config.hook_timeout, move || {
            instance.export(schema)
        })
        .and_then(|r| r.map_err(Cause::Hook));
        drop(active);
        exported.map_err(|cause| fail(Step::Export, cause))
    }
}
