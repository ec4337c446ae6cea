//! The swap protocol: stage, pause and drain, export, import, switch and resume.

use super::deadline::Worker;
use super::error::{Action, Cause, Step, SwapError};
use super::pause::{Mark, Steps, Timeline};
use super::tables::{self, TablePlan};
use super::{Active, Engine};
use crate::loader::{Hook, Plugin};
use std::sync::Arc;

/// What a successful swap or rollback did, and how long each step took.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SwapReport {
    /// Version that served before.
    pub from: String,
    /// Version that serves now.
    pub to: String,
    /// The schema the state moved in.
    pub schema: u32,
    /// Size of the exported state.
    pub state_bytes: usize,
    /// The tables, when there are records in them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<TablesReport>,
    /// How long each step took; `steps.pause` is what callers felt.
    #[serde(flatten)]
    pub steps: Steps,
    /// How long the swap waited, before staging and with traffic flowing, for a snapshot's
    /// export to finish (a snapshot and a swap never overlap).
    pub waited_for_snapshot: std::time::Duration,
}

/// What a swap did with the tables.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TablesReport {
    /// Records in the tables.
    pub records: u64,
    /// Their key and value bytes.
    pub bytes: u64,
    /// The record schema before and after (equal: nothing moved).
    pub schema: (u32, u32),
    /// Records checked by the record hook while traffic flowed (a schema change).
    pub validated: u64,
    /// Records written meanwhile and checked in the pause.
    pub validated_in_pause: usize,
}

impl Engine {
    /// Swaps to `plugin`, moving the state across (docs/DESIGN.md, The swap protocol, steps 1 to 5). On success the
    /// replaced version is kept for [`Engine::rollback`]. On failure nothing changed: the
    /// running version serves on with its state, and the error says which step failed, why,
    /// and what is still serving.
    pub fn swap(&self, plugin: Arc<Plugin>) -> Result<SwapReport, SwapError> {
        self.swap_with_stage_hook(plugin, || {})
    }

    /// [`Engine::swap`], running `stage_hook` at the end of staging (tests use it to make
    /// staging slow and to call the engine while it stages).
    pub(crate) fn swap_with_stage_hook(
        &self,
        plugin: Arc<Plugin>,
        stage_hook: impl FnOnce(),
    ) -> Result<SwapReport, SwapError> {
        let (_one_at_a_time, waited) = self.lock_swapping();
        let (mut report, replaced) = self.transition(Action::Swap, plugin, stage_hook)?;
        report.waited_for_snapshot = waited;
        self.history.lock().push(replaced);
        Ok(report)
    }

    /// Swaps back to the previously active version, through the same protocol: the current
    /// version exports in a schema the previous one imports (its downgrade path, OTP's
    /// `{down, Vsn}`). Refused before anything pauses when there is no such schema (state is
    /// never dropped) or no earlier version is kept. On success the version rolled away from
    /// is forgotten, and the next rollback goes one version further back: v1 → v2 → v3,
    /// rollback, rollback runs v2, then v1, and never bounces back to v3.
    pub fn rollback(&self) -> Result<SwapReport, SwapError> {
        let (_one_at_a_time, waited) = self.lock_swapping();
        let Some(previous) = self.history.lock().previous() else {
            let err = SwapError {
                action: Action::Rollback,
                release: "the previous version".to_owned(),
                step: Step::Stage,
                cause: Cause::NoPrevious,
                serving: Some(self.active().id().to_owned()),
                pause_us: 0,
            };
            tracing::warn!(action = ?Action::Rollback, error = %err, "refused");
            return Err(err);
        };
        let (mut report, _rolled_away_from) = self.transition(Action::Rollback, previous, || {})?;
        report.waited_for_snapshot = waited;
        self.history.lock().pop();
        Ok(report)
    }

    /// Runs one swap to `target`; returns the report and the plugin it replaced. The caller
    /// holds `swapping`.
    fn transition(
        &self,
        action: Action,
        target: Arc<Plugin>,
        stage_hook: impl FnOnce(),
    ) -> Result<(SwapReport, Arc<Plugin>), SwapError> {
        let timeline = Timeline::start();
        let running = self.active();
        let fail = |step, cause| {
            let pause_us = timeline.pause().as_micros() as u64;
            let err = SwapError {
                action,
                release: target.id().to_owned(),
                step,
                cause,
                serving: Some(running.id().to_owned()),
                pause_us,
            };
            tracing::warn!(action = ?action, pause_us, error = %err, "refused");
            err
        };
        let timeout = self.config.hook_timeout;

        // 1. Stage: traffic flows.
        let (from, to) = (running.info(), target.info());
        if from.name != to.name {
            let cause = Cause::NameMismatch {
                running: from.name.clone(),
                target: to.name.clone(),
            };
            return Err(fail(Step::Stage, cause));
        }
        let Some(schema) =
            molt_abi::choose_schema(from.state_schema, &from.exports, to.state_schema, &to.imports)
        else {
            let cause = Cause::NoSharedSchema {
                exports: from.exports.clone(),
                imports: to.imports.clone(),
            };
            return Err(fail(Step::Stage, cause));
        };
        let store = Arc::clone(&self.tables);
        let schema_before = store.schema();
        let plan = tables::plan(&store, &running, &target).map_err(|cause| fail(Step::Stage, cause))?;
        // The thread that will run the record passes, export and import, started now rather
        // than in the pause.
        let worker = Worker::spawn("swap", Hook::Export).map_err(|cause| fail(Step::Stage, cause))?;
        let validated = match &plan {
            TablePlan::Convert(conversion) => tables::validate(&store, conversion, &worker, timeout)
                .map_err(|cause| fail(Step::Tables, cause))?,
            TablePlan::Keep { .. } => 0,
        };
        // The buffer the export writes into, mapped and faulted in now, not in the pause.
        let region = self.export_buffer(&running);
        // A first, empty job: the worker is up and polling its queue when the pause begins.
        worker.run(Hook::Export, timeout, || ()).map_err(|cause| {
            store.stop_tracking();
            fail(Step::Stage, cause)
        })?;
        stage_hook();

        // 2. Pause and drain: from here on new calls queue behind us.
        timeline.mark(Mark::Paused);
        let Some(mut gate) = self.gate.try_write_for(self.config.drain_timeout) else {
            store.stop_tracking();
            let timeout = self.config.drain_timeout;
            return Err(fail(Step::Drain, Cause::DrainTimeout { timeout }));
        };
        timeline.mark(Mark::Drained);
        // The last keys written while the change was validated; no call runs now. From here
        // on, any failure stops tracking and leaves the tables as they are.
        let unflipped = |cause| {
            store.stop_tracking();
            cause
        };
        let validated_in_pause = match &plan {
            TablePlan::Convert(conversion) => tables::validate_written(&store, conversion, &worker, timeout)
                .map_err(|cause| fail(Step::Tables, unflipped(cause)))?,
            TablePlan::Keep { .. } => 0,
        };
        timeline.mark(Mark::Validated);

        // 3. Export; the running instance stays intact. On any error below, returning drops
        // the write guard: the gate reopens on the old instance.
        let old = Arc::clone(&gate.instance);
        let bytes = worker
            .run(Hook::Export, timeout, move || old.export_with(schema, region))
            .and_then(|r| r.map_err(Cause::Hook))
            .map_err(|cause| fail(Step::Export, unflipped(cause)))?;
        let state_bytes = bytes.len();
        self.exported(state_bytes);
        timeline.mark(Mark::Exported);

        // 4. Import, on the worker, handing it the export's buffer itself: the new version
        // reads it in place and may keep it (`import_shared`). An import that hangs past the
        // deadline is abandoned: its thread keeps `importer`, an `Arc<Plugin>`, so the library
        // it runs in stays mapped for as long as it runs.
        let importer = Arc::clone(&target);
        let tables_for_import = Arc::clone(&store);
        let instance = worker
            .run(Hook::Import, timeout, move || {
                importer.import_owned(&tables_for_import, schema, bytes)
            })
            .and_then(|r| r.map_err(Cause::Hook))
            .map_err(|cause| fail(Step::Import, unflipped(cause)))?;
        timeline.mark(Mark::Imported);

        // 5. Switch and resume. The tables change schema with the code: from now on the new
        // version reads records through the conversion.
        match &plan {
            TablePlan::Convert(conversion) => store.flip(Arc::clone(conversion)),
            TablePlan::Keep { schema } => store.set_schema(*schema),
        }
        let replaced = std::mem::replace(&mut *gate, Active::new(instance));
        *self.current.lock() = Arc::clone(&target);
        // The pause ends as the gate opens. Marked just before the unlock: right after it, the
        // woken callers may preempt this thread, and that time is theirs, not the pause.
        timeline.mark(Mark::Resumed);
        drop(gate);
        // The old instance is destroyed here, after traffic resumed; its library stays loaded
        // through `running`, which goes to the kept generations. What it freed goes back to
        // the kernel (the allocator would keep it otherwise), still off the pause.
        drop(replaced);
        crate::loader::release_free_memory();
        if let TablePlan::Convert(_) = &plan {
            tables::finish_in_background(Arc::clone(&store), timeout);
        }
        let records = store.records();
        let tables = (records > 0).then(|| TablesReport {
            records,
            bytes: store.bytes(),
            schema: (schema_before, store.schema()),
            validated,
            validated_in_pause,
        });

        let steps = timeline.steps();
        let report = SwapReport {
            from: from.version.clone(),
            to: to.version.clone(),
            schema,
            state_bytes,
            tables,
            steps,
            waited_for_snapshot: std::time::Duration::ZERO,
        };
        tracing::info!(
            action = ?action,
            from = %running.id(),
            to = %target.id(),
            schema,
            state_bytes,
            pause_us = report.steps.pause.as_micros() as u64,
            drain_us = report.steps.drain.as_micros() as u64,
            export_us = report.steps.export.as_micros() as u64,
            import_us = report.steps.import.as_micros() as u64,
            "swapped"
        );
        Ok((report, running))
    }
}
