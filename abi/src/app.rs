//! The safe trait an app author implements, and the rule that picks a migration schema.

use crate::request::{Request, Response};
use crate::state::{StateBuf, StateWriter};
use crate::tables::Tables;
use std::fmt;

/// An error an app returns from a hook. Its message reaches the operator verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError(pub String);

impl AppError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        AppError(message.into())
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AppError {}

impl From<String> for AppError {
    fn from(s: String) -> Self {
        AppError(s)
    }
}

impl From<&str> for AppError {
    fn from(s: &str) -> Self {
        AppError(s.to_owned())
    }
}

/// An application that molt can load, serve and hot-swap.
///
/// The value of `Self` *is* the in-memory state. `handle` is called from many threads at once
/// (`&self`, `Send + Sync`): guard mutable state with a lock or atomics. On an upgrade the
/// supervisor calls the old version's [`App::export_state`] and the new version's
/// [`App::import_state`]; on a rollback the newer version exports in the older schema.
/// Export everything: what is not in the bytes is lost when the old version is dropped.
pub trait App: Send + Sync + Sized + 'static {
    /// The app's name, identical across all its versions (e.g. `"counter"`).
    const NAME: &'static str;
    /// The state schema this version keeps. Bump it whenever the exported bytes change shape.
    const SCHEMA: u32;
    /// Schemas [`App::import_state`] accepts; must include [`App::SCHEMA`] (snapshots are
    /// restored through it).
    const IMPORTS: &'static [u32] = &[Self::SCHEMA];
    /// Schemas [`App::export_state`] can write; must include [`App::SCHEMA`]. Listing an older
    /// schema is what makes a rollback to the older version possible.
    const EXPORTS: &'static [u32] = &[Self::SCHEMA];

    /// A fresh instance with empty state (first start, no snapshot).
    fn create() -> Result<Self, AppError>;

    /// Serves one request. A panic here answers that request with a 500 and nothing else.
    fn handle(&self, req: &Request<'_>) -> Response;

    /// Serialises the whole state in `schema` (one of [`App::EXPORTS`]).
    ///
    /// **It may run concurrently with [`App::handle`].** During a swap it runs with traffic
    /// paused (no `handle` call is in flight), but for a periodic snapshot the supervisor
    /// calls it while requests keep being served on other threads: traffic is not paused for
    /// snapshots. So read the state under the same
    /// locks or atomics `handle` uses, and return bytes that are consistent by themselves (for
    /// a sharded map: each shard read under its own lock is enough; the snapshot is then a
    /// state the app could have had while it served). Keep locks short (copy a shard, release
    /// it, encode outside the lock): a request waiting on a lock the export holds waits as
    /// long as the export holds it. A snapshot never overlaps a swap.
    fn export_state(&self, schema: u32) -> Result<Vec<u8>, AppError>;

    /// Builds an instance from state serialised in `schema` (one of [`App::IMPORTS`]).
    fn import_state(schema: u32, state: &[u8]) -> Result<Self, AppError>;

    /// Whether this instance is healthy; checked during probation after a swap.
    fn health(&self) -> Result<(), AppError> {
        Ok(())
    }

    /// How often the supervisor calls [`App::tick`], in milliseconds; 0 (the default): never.
    /// The supervisor calls it from a thread of its own, never during a swap's pause, at most
    /// every 10 ms whatever is declared here.
    const TICK_INTERVAL_MS: u32 = 0;

    /// Periodic work (expiring sessions, flushing counters…) without a thread of the app's
    /// own, which could outlive `destroy`. Runs like a request: concurrently with `handle`, on
    /// the running version only, and a panic or an error is logged and counted, not fatal. A
    /// tick that is due while a swap pauses traffic is skipped.
    fn tick(&self) -> Result<(), AppError> {
        Ok(())
    }

    /// Writes the whole state in `schema` (one of [`App::EXPORTS`]) into `out`: what a swap
    /// and a snapshot call, with `out` a buffer of the supervisor's, sized and pre-faulted
    /// from the last export. The default calls [`App::export_state`] and copies its bytes in;
    /// an app whose state is large writes its encoding straight into `out` instead (one pass,
    /// no buffer of its own). Same contract as [`App::export_state`] (it may run concurrently
    /// with [`App::handle`]), and it must write the same bytes.
    fn export_into(&self, schema: u32, out: &mut StateWriter<'_>) -> Result<(), AppError> {
        let bytes = self.export_state(schema)?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    /// Builds an instance from state serialised in `schema` (one of [`App::IMPORTS`]) that
    /// this instance may keep: what a swap and a snapshot restore call. `state` is the very
    /// buffer the old version exported into (no copy between export and import); an app may
    /// keep it (in an `Arc`) and point its values into it instead of copying each one, and the
    /// memory goes back to the supervisor when the last reference is dropped. The default
    /// calls [`App::import_in`] with the bytes and drops them.
    fn import_shared(tables: Tables, schema: u32, state: StateBuf) -> Result<Self, AppError> {
        Self::import_in(tables, schema, &state)
    }

    // ABI version 2: state in tables the host owns (see the crate docs, "Tables").

    /// The schema of the records this version keeps in tables; 0 (the default) keeps none.
    /// Bump it whenever the encoding of a record changes, and convert in
    /// [`App::upgrade_record`] (and [`App::downgrade_record`] for rollback).
    const TABLE_SCHEMA: u32 = 0;
    /// Older table schemas [`App::upgrade_record`] converts from.
    const TABLE_UPGRADES: &'static [u32] = &[];
    /// Older table schemas [`App::downgrade_record`] converts to: what makes a rollback to an
    /// older version possible after a record schema change.
    const TABLE_DOWNGRADES: &'static [u32] = &[];

    /// A fresh instance that keeps its state in the host's `tables` (first start, no
    /// snapshot, and every code-only swap: the tables hold the state already). The default
    /// ignores the tables and calls [`App::create`].
    fn create_in(tables: Tables) -> Result<Self, AppError> {
        let _ = tables;
        Self::create()
    }

    /// An instance built from state serialised in `schema` (the bytes part of the state), with
    /// the host's `tables`. The default ignores the tables and calls [`App::import_state`].
    fn import_in(tables: Tables, schema: u32, state: &[u8]) -> Result<Self, AppError> {
        let _ = tables;
        Self::import_state(schema, state)
    }

    /// Converts one record of `table` from the older table schema `from` (one of
    /// [`App::TABLE_UPGRADES`]) to [`App::TABLE_SCHEMA`]. It must be a pure function of its
    /// arguments: the host may call it more than once for one record (to validate before the
    /// swap, to convert after). An error refuses the swap and names the key.
    fn upgrade_record(table: &str, from: u32, key: &[u8], value: &[u8]) -> Result<Vec<u8>, AppError> {
        let _ = (key, value);
        Err(AppError(format!(
            "{} cannot upgrade records of table {table} from schema {from}",
            Self::NAME
        )))
    }

    /// Converts one record of `table` from [`App::TABLE_SCHEMA`] to the older schema `to`
    /// (one of [`App::TABLE_DOWNGRADES`]), for a rollback. Pure, like [`App::upgrade_record`].
    fn downgrade_record(table: &str, to: u32, key: &[u8], value: &[u8]) -> Result<Vec<u8>, AppError> {
        let _ = (key, value);
        Err(AppError(format!(
            "{} cannot downgrade records of table {table} to schema {to}",
            Self::NAME
        )))
    }

    // Appended after version 2's tables: the merge hook (docs/DESIGN.md, "Handoff").

    /// Schemas [`App::merge_state`] accepts. Empty (the default): the app has no merge hook,
    /// and a handoff of a peer's state to it is refused before anything stops.
    const MERGES: &'static [u32] = &[];

    /// Absorbs the state of another instance of this app (exported in `schema`, one of
    /// [`App::MERGES`]) into this one: what a scale-down hands from a departing pod to a live
    /// one. The app chooses the rule (a counter adds; a key-value store takes the union and
    /// settles conflicting keys its own way).
    ///
    /// The supervisor calls it on a fresh copy of the running state (its export imported
    /// again) that no request reaches, then switches to the copy. An error or a panic drops
    /// the copy: the running state is untouched, so a merge need not undo anything.
    fn merge_state(&mut self, schema: u32, state: &[u8]) -> Result<(), AppError> {
        let _ = state;
        Err(AppError(format!(
            "{} has no merge hook (cannot absorb state schema {schema})",
            Self::NAME
        )))
    }
}

/// Picks the schema in which state moves from a running version to a target version:
/// one the running version can export and the target can import, preferring the running
/// version's own schema (an upgrade: the new code migrates), then the target's own schema
/// (a downgrade: the newer code writes the older shape), then the highest both share.
///
/// The supervisor and [`crate::testing::migrate`] both use this rule, so a hook test
/// exercises the same path a real swap takes.
pub fn choose_schema(
    running_schema: u32,
    running_exports: &[u32],
    target_schema: u32,
    target_imports: &[u32],
) -> Option<u32> {
    let shared = |s: &u32| running_exports.contains(s) && target_imports.contains(s);
    [running_schema, target_schema]
        .into_iter()
        .find(shared)
        .or_else(|| running_exports.iter().copied().filter(shared).max())
}

#[cfg(test)]
mod tests {
    use super::choose_schema;

    #[test]
    fn schema_choice_prefers_upgrade_then_downgrade() {
        // v1 (exports 1) → v2 (imports 1, 2): migrate in 1.
        assert_eq!(choose_schema(1, &[1], 2, &[1, 2]), Some(1));
        // v2 (exports 2, 1) → v1 (imports 1): downgrade in 1.
        assert_eq!(choose_schema(2, &[2, 1], 1, &[1]), Some(1));
        // same schema both sides.
        assert_eq!(choose_schema(2, &[2], 2, &[2]), Some(2));
        // nothing shared.
        assert_eq!(choose_schema(1, &[1], 3, &[2, 3]), None);
        // v3 (exports 3, 2, 1) → some v (schema 4) importing 1, 2: the highest shared, 2.
        assert_eq!(choose_schema(3, &[3, 2, 1], 4, &[1, 2]), Some(2));
    }
}
