//! Exporting the state for a snapshot, while traffic flows, never overlapping a swap.
//!
//! A snapshot does not take the gate for its export: it reads which instance is active (a
//! moment under the gate, shared) and calls that instance's `export_state` on a hook thread
//! while calls keep running on it, which molt-abi's contract allows (`export_state` may run
//! concurrently with `handle`). What it must not overlap is a swap: a swap that replaced the
//! instance under a running export would leave a snapshot of a version that no longer serves,
//! and the two would compete for the same memory and cores inside the pause. So a snapshot's
//! export holds the engine's `swapping` lock, like a swap from stage to resume; whichever comes
//! second waits, with traffic flowing, and the wait is reported by both: in
//! [`Exported::waited_for_swap`] and in [`super::SwapReport::waited_for_snapshot`].

use super::deadline;
use super::error::{Action, Cause, Step, SwapError};
use super::{Engine, State};
use crate::loader::Hook;
use parking_lot::MutexGuard;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A snapshot's export: the state and how long getting it took.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The state, in the running version's own schema.
    pub state: State,
    /// The version that exported it.
    pub version: String,
    /// How long the snapshot waited for a swap in progress before exporting.
    pub waited_for_swap: Duration,
    /// How long the app's `export_state` took (traffic flowed meanwhile).
    pub export: Duration,
}

impl Engine {
    /// Exports the state in the running version's own schema, for a snapshot (module docs):
    /// calls go on meanwhile; a swap waits for the export to finish, and this waits for a
    /// swap in progress. Blocks the calling thread: call it on a blocking thread.
    pub fn export_state(&self) -> Result<Exported, SwapError> {
        let asked = Instant::now();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _no_swap = self.swapping.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let waited_for_swap = asked.elapsed();
        self.snapshotting.store(true, Ordering::SeqCst);
        let instance = Arc::clone(&self.gate.read().instance);
        let plugin = Arc::clone(instance.plugin());
        let schema = plugin.info().state_schema;
        // Mapped and faulted in before the export starts, so the export (which holds the
        // app's locks piece by piece while requests are served) copies bytes, not page faults.
        let region = self.export_buffer(&plugin);
        let started = Instant::now();
        let exported = deadline::run(Hook::Export, self.config.hook_timeout, move || {
            instance.export_with(schema, region)
        })
        .and_then(|r| r.map_err(Cause::Hook));
        if let Ok(bytes) = &exported {
            self.exported(bytes.len());
        }
        let export = started.elapsed();
        self.snapshotting.store(false, Ordering::SeqCst);
        match exported {
            Ok(bytes) => Ok(Exported {
                state: State { schema, bytes },
                version: plugin.info().version.clone(),
                waited_for_swap,
                export,
            }),
            Err(cause) => Err(SwapError {
                action: Action::Snapshot,
                release: plugin.id().to_owned(),
                step: Step::Export,
                cause,
                serving: Some(plugin.id().to_owned()),
                pause_us: 0,
            }),
        }
    }

    /// Takes `swapping` for a swap or rollback; also returns how long it waited for a
    /// snapshot's export (zero when none was running when it asked).
    pub(super) fn lock_swapping(&self) -> (MutexGuard<'_, ()>, Duration) {
        let asked = Instant::now();
        if let Some(guard) = self.swapping.try_lock() {
            return (guard, Duration::ZERO);
        }
        let behind_snapshot = self.snapshotting.load(Ordering::SeqCst);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = self.swapping.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let waited = if behind_snapshot {
            asked.elapsed()
        } else {
            Duration::ZERO
        };
        (guard, waited)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_apps::{SlowExport, LATCHES, V1};
    use super::super::EngineConfig;
    use super::*;
    use crate::loader::Plugin;
    use molt_abi::Request;
    use std::thread;

    fn incr(engine: &Engine) -> String {
        let req = Request::new("POST", "/incr", "", &[], b"");
        // `try_handle` answers only when nothing holds or wants the gate.
        let served = engine.try_handle(&req).expect("the gate is free");
        served.response.text()
    }

    #[test]
    fn a_snapshot_exports_while_calls_flow_and_a_swap_waits_for_it() {
        let latch = &LATCHES[4];
        let engine = Engine::start(
            Plugin::from_app::<SlowExport>("1.0.0"),
            None,
            EngineConfig::default(),
        )
        .unwrap();
        incr(&engine);
        thread::scope(|s| {
            let snapshot = s.spawn(|| engine.export_state());
            latch.wait_entered();
            // The export is running: calls go on, without waiting for anything.
            assert_eq!(incr(&engine), "2");
            let swap = s.spawn(|| engine.swap(Plugin::from_app::<V1>("2.0.0")));
            while engine.waiting.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
            // The swap waits for the export, before staging: calls still go on.
            assert_eq!(incr(&engine), "3");
            assert!(!swap.is_finished(), "a swap never overlaps a snapshot's export");
            latch.release();
            let exported = snapshot.join().unwrap().unwrap();
            assert_eq!(exported.version, "1.0.0");
            assert_eq!(exported.state.bytes, 3u64.to_le_bytes().to_vec());
            let report = swap.join().unwrap().unwrap();
            assert!(
                report.waited_for_snapshot > Duration::ZERO,
                "the swap reports its wait: {report:?}"
            );
        });
        assert_eq!(incr(&engine), "4", "the state moved to 2.0.0");
        assert_eq!(&*engine.active().info().version, "2.0.0");
    }
}
