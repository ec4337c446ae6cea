//! The swap engine: serves calls through the active instance and swaps in new versions in
//! place, migrating the state, with the measured pause of docs/DESIGN.md's swap protocol.
//!
//! # The gate
//! The active instance sits behind a `parking_lot::RwLock`, the gate. Every call holds a read
//! guard for its duration, so calls run in parallel. A swap takes the write guard with a
//! deadline (`try_write_for`). parking_lot's lock is writer-preferring: once a writer waits,
//! new readers queue behind it instead of starving it. So from the moment a swap asks for the
//! gate, new calls wait (they are not refused), in-flight calls drain, and the queued calls
//! resume on the new version. If the drain deadline passes, the swap is refused and nothing
//! changed (the `writer_preference` test pins this behaviour of the lock).
//!
//! # A swap ([`Engine::swap`])
//! 1. **stage**, traffic flowing: same app, a state schema the running version exports and the
//!    target imports ([`molt_abi::choose_schema`]); otherwise refused before anything pauses;
//! 2. **pause and drain**: take the gate;
//! 3. **export** from the running instance, which stays intact;
//! 4. **import** into the target, on its own thread under a deadline;
//! 5. **switch and resume**: install the new instance, open the gate.
//!
//! Any failure in 3 or 4 drops what was built and reopens the gate on the old instance, state
//! untouched. The pause (2 to 5) is measured by a timeline of the steps' boundaries and reported
//! in [`SwapReport`].
//!
//! # Generations
//! The replaced versions stay loaded (up to [`EngineConfig::generations`]) for
//! [`Engine::rollback`], which walks back like OTP's release handler: to the previously active
//! version, forgetting the one rolled away from.

#[cfg(test)]
mod bytes_tests;
mod deadline;
mod error;
mod generations;
mod merge;
mod pause;
mod snapshot;
mod swap;
mod tables;
#[cfg(test)]
mod test_apps;
#[cfg(test)]
mod tests;
mod tick;

pub use error::{Action, Cause, RecordOverrun, Step, SwapError};
pub use merge::{MergeReport, MergeSteps};
pub use pause::Steps;
pub use snapshot::Exported;
pub use swap::{SwapReport, TablesReport};
pub use tick::Ticked;

use crate::loader::{Hook, HookError, Instance, Plugin, Region, StateBytes};
use crate::tables::TableStore;
use generations::Generations;
use molt_abi::{Request, Response};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use std::time::Duration;

/// How an [`Engine`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long a swap waits for in-flight calls before it gives up (default 5 s). New calls
    /// queue meanwhile, so this bounds the worst pause too.
    pub drain_timeout: Duration,
    /// How long `create`, `export_state` and `import_state` may take (default 5 s).
    pub hook_timeout: Duration,
    /// How many replaced versions stay loaded for rollback (default 4).
    pub generations: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            drain_timeout: Duration::from_secs(5),
            hook_timeout: Duration::from_secs(5),
            generations: 4,
        }
    }
}

/// Serialised app state, as it crosses between versions or goes to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The schema the bytes are in.
    pub schema: u32,
    /// The bytes, in the app's own encoding, wherever the export left them (read in place).
    pub bytes: StateBytes,
}

/// A call's answer, and the version that gave it.
#[derive(Debug, Clone)]
pub struct Served {
    /// The app's response.
    pub response: Response,
    /// The version that served the call (e.g. for an `x-molt-version` header).
    pub version: Arc<str>,
}

/// The instance that serves calls.
struct Active {
    /// Shared so a hook thread under a deadline can hold it (see `deadline`).
    instance: Arc<Instance>,
    version: Arc<str>,
}

impl Active {
    fn new(instance: Instance) -> Active {
        let version = Arc::from(instance.plugin().info().version.as_str());
        Active {
            instance: Arc::new(instance),
            version,
        }
    }
}

/// Serves an app and swaps its versions in place. Shared between threads (`&self` API).
pub struct Engine {
    /// The gate: calls hold it shared, a swap holds it exclusively (module docs).
    gate: RwLock<Active>,
    /// The active plugin, readable without touching the gate (status must not wait for a
    /// swap). Written only under the gate's write guard.
    current: Mutex<Arc<Plugin>>,
    /// One swap, rollback or snapshot export at a time: a swap from stage to resume, a
    /// snapshot for its export (see `snapshot`).
    swapping: Mutex<()>,
    /// Set while a snapshot's export holds `swapping`, so a swap can tell what it waited for.
    snapshotting: std::sync::atomic::AtomicBool,
    /// Swaps and snapshots waiting for `swapping` now.
    waiting: std::sync::atomic::AtomicUsize,
    /// Replaced versions kept for rollback.
    history: Mutex<Generations>,
    /// The app's tables (ABI version 2): every version is handed the same store.
    tables: Arc<TableStore>,
    /// The size of the last export (a swap's, a snapshot's, or the state it started from):
    /// the next export's buffer is sized and pre-faulted from it before the pause.
    last_export: std::sync::atomic::AtomicUsize,
    config: EngineConfig,
}

impl Engine {
    /// Starts serving `plugin`: a fresh instance (`create`), or one built from `initial` (e.g.
    /// a snapshot), which the plugin must be able to import. Its tables start empty.
    pub fn start(
        plugin: Arc<Plugin>,
        initial: Option<State>,
        config: EngineConfig,
    ) -> Result<Engine, SwapError> {
        Self::start_with_tables(plugin, initial, Arc::new(TableStore::new()), config)
    }

    /// [`Engine::start`] with the tables of `tables` (e.g. restored from a snapshot). Records
    /// in another schema than the plugin's are converted before it serves (its upgrade hook);
    /// a record that fails refuses the start, naming the key.
    pub fn start_with_tables(
        plugin: Arc<Plugin>,
        initial: Option<State>,
        tables: Arc<TableStore>,
        config: EngineConfig,
    ) -> Result<Engine, SwapError> {
        let fail = |step, cause| SwapError {
            action: Action::Start,
            release: plugin.id().to_owned(),
            step,
            cause,
            serving: None,
            pause_us: 0,
        };
        let timeout = config.hook_timeout;
        let step = if initial.is_some() {
            Step::Import
        } else {
            Step::Create
        };
        Self::adopt_tables(&tables, &plugin, timeout).map_err(|cause| fail(Step::Tables, cause))?;
        let p = Arc::clone(&plugin);
        let store = Arc::clone(&tables);
        let started_from = initial.as_ref().map_or(0, |state| state.bytes.len());
        let built = match initial {
            None => deadline::run(Hook::Create, timeout, move || p.create_in(&store)),
            Some(state) if !plugin.info().imports.contains(&state.schema) => {
                let imports = plugin.info().imports.clone();
                let cause = Cause::CannotImport {
                    schema: state.schema,
                    imports,
                };
                return Err(fail(Step::Stage, cause));
            }
            Some(state) => deadline::run(Hook::Import, timeout, move || {
                p.import_owned(&store, state.schema, state.bytes)
            }),
        };
        let instance = built
            .and_then(|r| r.map_err(Cause::Hook))
            .map_err(|cause| fail(step, cause))?;
        tracing::info!(plugin = %plugin.id(), "serving");
        Ok(Engine {
            gate: RwLock::new(Active::new(instance)),
            current: Mutex::new(plugin),
            swapping: Mutex::new(()),
            snapshotting: std::sync::atomic::AtomicBool::new(false),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            history: Mutex::new(Generations::new(config.generations)),
            tables,
            last_export: std::sync::atomic::AtomicUsize::new(started_from),
            config,
        })
    }

    /// A buffer for the next export, sized from the last one with room to grow (an eighth
    /// more, and 64 KiB) and pre-faulted now: called while traffic flows, so the export in the
    /// pause writes into memory that is already there. Empty when the active plugin exports
    /// through its own buffer (no `export_into`) or nothing was exported yet.
    fn export_buffer(&self, plugin: &Plugin) -> Region {
        let last = self.last_export.load(std::sync::atomic::Ordering::Relaxed);
        if !plugin.exports_into() || last == 0 {
            return Region::empty();
        }
        Region::prefaulted(last + last / 8 + (64 << 10))
    }

    /// Remembers the size of an export, for [`Engine::export_buffer`].
    fn exported(&self, bytes: usize) {
        self.last_export
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes `tables` readable by `plugin` before it serves: every record converted to its
    /// record schema (through its upgrade hook), which becomes the store's.
    fn adopt_tables(tables: &Arc<TableStore>, plugin: &Arc<Plugin>, timeout: Duration) -> Result<(), Cause> {
        let to = tables::schema_of(plugin);
        let mut stale = std::collections::BTreeSet::new();
        for table in tables.tables() {
            table.batches(|batch| {
                stale.extend(batch.iter().map(|(_, r)| r.schema).filter(|&s| s != to));
                false
            });
        }
        if !stale.is_empty() && to == 0 {
            return Err(Cause::TablesDropped {
                records: tables.records(),
            });
        }
        for from in stale {
            let conversion =
                tables::conversion(from, None, plugin).ok_or_else(|| Cause::NoTableConversion {
                    from,
                    to,
                    upgrades: plugin.info().table_upgrades.clone(),
                    downgrades: Vec::new(),
                })?;
            tables.flip(Arc::new(conversion));
            let worker = deadline::Worker::spawn("adopt", Hook::UpgradeRecord)?;
            self::tables::finish_pending(tables, &worker, timeout)?;
        }
        tables.set_schema(to);
        Ok(())
    }

    /// The app's tables.
    pub fn tables(&self) -> &Arc<TableStore> {
        &self.tables
    }

    /// Serves one call on the active version. Callable from many threads at once; during a
    /// swap's pause the call waits, then runs on the new version.
    pub fn handle(&self, req: &Request<'_>) -> Served {
        let active = self.gate.read();
        let response = active.instance.handle(req);
        Served {
            response,
            version: Arc::clone(&active.version),
        }
    }

    /// Serves one call on the active version unless a swap holds or waits for the gate: then
    /// `None` at once (the caller serves it with [`Engine::handle`] where waiting is allowed).
    pub fn try_handle(&self, req: &Request<'_>) -> Option<Served> {
        // parking_lot's writer marks the lock before it waits for readers to drain, so
        // `try_read` fails from the moment a swap asks for the gate: no call overtakes it.
        let active = self.gate.try_read()?;
        let response = active.instance.handle(req);
        Some(Served {
            response,
            version: Arc::clone(&active.version),
        })
    }

    /// Asks the active instance whether it is healthy (outside the gate: a slow health hook
    /// delays no swap and no call).
    pub fn health(&self) -> Result<(), HookError> {
        let instance = Arc::clone(&self.gate.read().instance);
        instance.health()
    }

    /// The active plugin. Does not wait for a swap in progress.
    pub fn active(&self) -> Arc<Plugin> {
        Arc::clone(&self.current.lock())
    }

    /// The versions kept for rollback, newest (the one a rollback returns to) first.
    pub fn generations(&self) -> Vec<Arc<Plugin>> {
        self.history.lock().list()
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("active", &self.active().id())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
