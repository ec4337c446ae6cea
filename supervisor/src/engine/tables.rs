//! What a swap does with the tables (see docs/DESIGN.md, "Tables"): nothing when the record
//! schema stays (a code-only release: the new version is handed the same tables), a
//! conversion when it changes, validated while traffic flows.

use super::deadline::Worker;
use super::error::Cause;
use crate::loader::{Direction, Hook, Plugin};
use crate::tables::{Conversion, HookWatch, Overdue, RecordFailure, RecordHook, TableStore};
use std::sync::Arc;
use std::time::Duration;

/// While more keys than this were written during the last validation round, another round
/// runs before the pause; what is left is validated in the pause.
const PAUSE_BUDGET_KEYS: usize = 64;
/// Validation rounds over written keys before the pause, at most.
const ROUNDS: usize = 16;

/// What a swap does with the tables.
#[derive(Debug)]
pub(crate) enum TablePlan {
    /// The records stay as they are: the target keeps them in the same schema, or there are
    /// none. The store's schema becomes `schema`.
    Keep { schema: u32 },
    /// The records are converted.
    Convert(Arc<Conversion>),
}

/// One plugin's record hook, as the store calls it.
struct PluginHook {
    plugin: Arc<Plugin>,
    direction: Direction,
    /// The older schema: the one converted from (up) or to (down).
    older: u32,
}

impl RecordHook for PluginHook {
    fn convert(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Vec<u8>, String> {
        self.plugin
            .convert_record(self.direction, table, self.older, key, value)
            .map_err(|e| e.to_string())
    }
}

/// The table schema a plugin keeps records in (0: none).
pub(crate) fn schema_of(plugin: &Plugin) -> u32 {
    if plugin.keeps_tables() {
        plugin.info().table_schema
    } else {
        0
    }
}

/// The conversion of records from `from` to `target`'s schema, if `target` or `running` has
/// the hook: the target upgrades from an older schema, or the running version downgrades to
/// the target's (a rollback).
pub(crate) fn conversion(
    from: u32,
    running: Option<&Arc<Plugin>>,
    target: &Arc<Plugin>,
) -> Option<Conversion> {
    let to = schema_of(target);
    let hook = |plugin: &Arc<Plugin>, direction, older, name| Conversion {
        from,
        to,
        hook: Arc::new(PluginHook {
            plugin: Arc::clone(plugin),
            direction,
            older,
        }),
        by: format!("{} {name}", plugin.id()),
    };
    if target.info().table_upgrades.contains(&from) {
        return Some(hook(target, Direction::Up, from, "upgrade_record"));
    }
    let running = running.filter(|r| schema_of(r) == from)?;
    running
        .info()
        .table_downgrades
        .contains(&to)
        .then(|| hook(running, Direction::Down, to, "downgrade_record"))
}

/// Decides what a swap from `running` to `target` does with `store`; refuses a target that
/// would drop records or cannot read them.
pub(crate) fn plan(
    store: &TableStore,
    running: &Arc<Plugin>,
    target: &Arc<Plugin>,
) -> Result<TablePlan, Cause> {
    let (from, to) = (store.schema(), schema_of(target));
    let records = store.records();
    if records == 0 || from == to {
        return Ok(TablePlan::Keep { schema: to });
    }
    if to == 0 {
        return Err(Cause::TablesDropped { records });
    }
    match conversion(from, Some(running), target) {
        Some(c) => Ok(TablePlan::Convert(Arc::new(c))),
        None => Err(Cause::NoTableConversion {
            from,
            to,
            upgrades: target.info().table_upgrades.clone(),
            downgrades: running.info().table_downgrades.clone(),
        }),
    }
}

/// Runs `pass` (over the tables, calling the hook of `by`, followed by `watch`) on `worker`,
/// each hook call under `timeout`. A call past it abandons the pass: tracking stops, and the
/// store remembers the pass until its call returns.
fn watched<T: Send + 'static>(
    store: &TableStore,
    worker: &Worker,
    by: &str,
    timeout: Duration,
    watch: Arc<HookWatch>,
    pass: impl FnOnce() -> Result<T, RecordFailure> + Send + 'static,
) -> Result<T, Cause> {
    let result = worker
        .run_watched(Hook::UpgradeRecord, by, timeout, &watch, pass)
        .and_then(|r| r.map_err(Cause::from));
    if let Err(Cause::RecordDeadline(overrun)) = &result {
        store.stop_tracking();
        let overdue = Overdue {
            table: overrun.table.clone(),
            key: overrun.key.clone(),
            running: timeout,
        };
        tracing::error!(table = %overrun.table, key = %overrun.key, by, ?timeout, "record hook abandoned on its deadline");
        store.abandoned(watch, overdue);
    }
    result
}

/// Refuses while a pass given up earlier is still in its hook call.
fn no_abandoned_pass(store: &TableStore) -> Result<(), Cause> {
    match store.abandoned_running() {
        Some(running) => Err(Cause::RecordHookRunning {
            table: running.table,
            key: running.key,
        }),
        None => Ok(()),
    }
}

/// Finishes the conversion an earlier schema change left pending, on `worker`, each record
/// hook call under `timeout`. Returns how many records it converted.
pub(crate) fn finish_pending(
    store: &Arc<TableStore>,
    worker: &Worker,
    timeout: Duration,
) -> Result<u64, Cause> {
    let Some(pending) = store.pending() else {
        return Ok(0);
    };
    no_abandoned_pass(store)?;
    let watch = HookWatch::new();
    let (s, w) = (Arc::clone(store), Arc::clone(&watch));
    watched(store, worker, &pending.by, timeout, watch, move || {
        s.finish_pending(Some(&w))
    })
}

/// Staging of a conversion, traffic flowing, on `worker`: finishes an earlier pending
/// conversion, validates every record, then the keys written meanwhile until few are left;
/// each record hook call under `timeout`. Returns how many records were validated. On
/// failure tracking has stopped and nothing changed.
pub(crate) fn validate(
    store: &Arc<TableStore>,
    conversion: &Conversion,
    worker: &Worker,
    timeout: Duration,
) -> Result<u64, Cause> {
    finish_pending(store, worker, timeout)?;
    no_abandoned_pass(store)?;
    let watch = HookWatch::new();
    let (s, c) = (Arc::clone(store), conversion.watched(&watch));
    watched(store, worker, &conversion.by, timeout, watch, move || {
        let mut validated = s.validate(&c)?;
        let mut last = usize::MAX;
        for _ in 0..ROUNDS {
            let written = s.validate_written(&c)?;
            validated += written as u64;
            // Writers faster than validation make every round longer than the one before:
            // more rounds would only grow what is left, so the rest waits for the pause.
            if written <= PAUSE_BUDGET_KEYS || written >= last {
                break;
            }
            last = written;
        }
        Ok(validated)
    })
}

/// In the pause, on `worker`: validates the keys written since the last round, each record
/// hook call under `timeout`. Returns how many there were.
pub(crate) fn validate_written(
    store: &Arc<TableStore>,
    conversion: &Conversion,
    worker: &Worker,
    timeout: Duration,
) -> Result<usize, Cause> {
    let watch = HookWatch::new();
    let (s, c) = (Arc::clone(store), conversion.watched(&watch));
    watched(store, worker, &conversion.by, timeout, watch, move || {
        s.validate_written(&c)
    })
}

/// Converts what the new version did not read yet, on a thread of its own; each record hook
/// call under `timeout` (a call past it leaves the rest to reads and the next change).
pub(crate) fn finish_in_background(store: Arc<TableStore>, timeout: Duration) {
    let spawned = std::thread::Builder::new()
        .name("molt-convert".to_owned())
        .spawn(move || {
            let started = std::time::Instant::now();
            let converted = Worker::spawn("convert-pass", Hook::UpgradeRecord)
                .and_then(|w| finish_pending(&store, &w, timeout));
            match converted {
                Ok(converted) => tracing::info!(
                    converted,
                    ms = started.elapsed().as_millis() as u64,
                    "table records converted"
                ),
                Err(e) => tracing::error!(error = %e, "table records left unconverted"),
            }
        });
    if let Err(e) = spawned {
        // Records are still converted as they are read, and by the next schema change.
        tracing::warn!(error = %e, "cannot start the background conversion thread");
    }
}
