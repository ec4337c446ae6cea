//! Why a swap (or a start, or a state export) was refused, and what still runs.

use crate::loader::{Hook, HookError};
use std::fmt;
use std::time::Duration;

/// What the engine was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// [`super::Engine::start`].
    Start,
    /// [`super::Engine::swap`].
    Swap,
    /// [`super::Engine::rollback`].
    Rollback,
    /// [`super::Engine::export_state`].
    Snapshot,
    /// [`super::Engine::merge`]: absorbing a peer's state.
    Merge,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Start => "start of",
            Action::Swap => "swap to",
            Action::Rollback => "rollback to",
            Action::Snapshot => "state export of",
            Action::Merge => "merge of a peer's state into",
        })
    }
}

/// The step of the swap protocol that failed (docs/DESIGN.md, "The swap protocol").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Checks before anything pauses: app name, a shared state schema.
    Stage,
    /// Waiting for in-flight calls to finish, with a deadline.
    Drain,
    /// The running version's `export_state`.
    Export,
    /// The new version's `import_state`.
    Import,
    /// Checking that every table record converts to the new version's record schema.
    Tables,
    /// A fresh instance's `create` (only when an engine starts without state).
    Create,
    /// The running version's `merge_state`, on a copy of its state.
    Merge,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Stage => "stage",
            Step::Drain => "drain",
            Step::Export => "export",
            Step::Import => "import",
            Step::Tables => "tables",
            Step::Create => "create",
            Step::Merge => "merge",
        })
    }
}

/// What went wrong in a step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// The new library is another app.
    #[error("it is app {target:?}, the running app is {running:?}")]
    NameMismatch {
        /// The running app's name.
        running: String,
        /// The new library's app name.
        target: String,
    },
    /// No schema the running version exports is one the target imports.
    #[error(
        "no shared state schema: the running version exports {exports:?}, the target imports {imports:?} \
         (state is never dropped: add the missing schema to one side's hooks)"
    )]
    NoSharedSchema {
        /// Schemas the running version can export.
        exports: Vec<u32>,
        /// Schemas the target can import.
        imports: Vec<u32>,
    },
    /// The state offered at start is in a schema the plugin cannot import.
    #[error("the state is in schema {schema}, the plugin imports {imports:?}")]
    CannotImport {
        /// The state's schema.
        schema: u32,
        /// Schemas the plugin can import.
        imports: Vec<u32>,
    },
    /// The target keeps no tables, and records are in them.
    #[error(
        "it keeps no tables, and the tables hold {records} records (state is never dropped: \
         a version that keeps tables must take over)"
    )]
    TablesDropped {
        /// Records in the tables.
        records: u64,
    },
    /// The table records are in a schema the target cannot read, and no hook converts them.
    #[error(
        "the table records are in schema {from}, the target keeps schema {to}; it upgrades \
         records from {upgrades:?} and the running version downgrades them to {downgrades:?}"
    )]
    NoTableConversion {
        /// The records' schema.
        from: u32,
        /// The target's record schema.
        to: u32,
        /// Schemas the target's `upgrade_record` converts from.
        upgrades: Vec<u32>,
        /// Schemas the running version's `downgrade_record` converts to.
        downgrades: Vec<u32>,
    },
    /// A record hook refused a record (the key is named); the tables are untouched.
    #[error(transparent)]
    Record(Box<crate::tables::RecordFailure>),
    /// A peer's state was offered to a version without a merge hook.
    #[error(
        "the running version has no merge hook: it cannot absorb a peer's state (its state is kept as it is)"
    )]
    NoMergeHook,
    /// A peer's state was offered to a version that keeps state in tables.
    #[error(
        "the running version keeps its state in tables, which a merge does not cover yet (its state is kept as it is)"
    )]
    MergeOfTables,
    /// A peer's state is in a schema the merge hook does not take.
    #[error("the peer's state is in schema {schema}, the merge hook takes {merges:?}")]
    CannotMerge {
        /// The peer state's schema.
        schema: u32,
        /// Schemas the merge hook takes.
        merges: Vec<u32>,
    },
    /// A rollback was asked for, but no earlier version is kept.
    #[error("no earlier version is kept to roll back to")]
    NoPrevious,
    /// In-flight calls did not finish in time.
    #[error("in-flight calls did not finish within {timeout:?}")]
    DrainTimeout {
        /// The drain deadline.
        timeout: Duration,
    },
    /// A hook returned an error or panicked.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// A hook did not return in time. Its thread is abandoned, still holding its library.
    #[error("{hook} did not return within {timeout:?} (abandoned)")]
    Deadline {
        /// The hook.
        hook: Hook,
        /// The hook deadline.
        timeout: Duration,
    },
    /// A record hook call ran past the hook deadline during a pass over the tables. The pass
    /// is abandoned (its thread runs the call to its end); nothing was converted.
    #[error(transparent)]
    RecordDeadline(Box<RecordOverrun>),
    /// A record hook call abandoned on its deadline by an earlier pass has not returned yet: a
    /// new pass over the tables waits for it to end.
    #[error("record {key} of table {table}: a record hook call abandoned earlier is still running")]
    RecordHookRunning {
        /// The table.
        table: String,
        /// The key.
        key: String,
    },
    /// No thread could be started to run a hook under its deadline.
    #[error("cannot start a thread for {hook}: {source}")]
    Thread {
        /// The hook.
        hook: Hook,
        /// The OS error.
        source: std::io::Error,
    },
    /// The thread running a hook ended without an answer.
    #[error("the thread running {hook} ended without an answer")]
    Lost {
        /// The hook.
        hook: Hook,
    },
}

/// A record hook call past the hook deadline (see [`Cause::RecordDeadline`]).
#[derive(Debug, thiserror::Error)]
#[error("record {key} of table {table}: {by} did not return within {timeout:?} (abandoned)")]
pub struct RecordOverrun {
    /// The table.
    pub table: String,
    /// The key.
    pub key: String,
    /// The hook (version and name).
    pub by: String,
    /// The hook deadline.
    pub timeout: Duration,
}

impl From<crate::tables::RecordFailure> for Cause {
    fn from(failure: crate::tables::RecordFailure) -> Self {
        Cause::Record(Box::new(failure))
    }
}

/// A refused start, swap, rollback or state export.
///
/// The message is complete on its own (it names the release, the step, the cause and what is
/// still serving), so one log line tells the whole story; the cause is also in
/// [`SwapError::cause`] for programs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("{action} {release} refused at {step}: {cause}; {}", serving_text(.serving))]
pub struct SwapError {
    /// What was asked.
    pub action: Action,
    /// The release it was asked for ([`crate::loader::Plugin::id`]).
    pub release: String,
    /// The step that failed.
    pub step: Step,
    /// Why.
    pub cause: Cause,
    /// The release still serving, unchanged, with its state (`None`: nothing runs yet).
    pub serving: Option<String>,
    /// How many microseconds traffic was paused before the refusal (zero when it was refused
    /// before the pause, at stage).
    pub pause_us: u64,
}

fn serving_text(serving: &Option<String>) -> String {
    match serving {
        Some(id) => format!("{id} still serving"),
        None => "nothing is serving".to_owned(),
    }
}
