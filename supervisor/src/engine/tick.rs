//! The `tick` hook: the app's periodic work, run like a call, never during a pause.
//!
//! A tick holds the gate shared for its duration, as a request does, so it never overlaps a
//! swap's pause: while a swap waits for the gate or holds it, `try_read` fails (the lock is
//! writer-preferring, see the module docs) and the tick is skipped rather than queued, so
//! ticks do not pile up behind a pause. A tick in flight delays a swap's drain the way an
//! in-flight request does, under the same drain deadline.

use super::Engine;
use crate::loader::HookError;
use std::sync::Arc;

/// What one [`Engine::tick`] did.
#[derive(Debug)]
pub enum Ticked {
    /// The active version declares no `tick` hook.
    NoHook,
    /// A swap was pausing traffic: skipped.
    Skipped,
    /// The hook ran and succeeded.
    Done,
    /// The hook returned an error or panicked (caught in the plugin); the app serves on.
    Failed(HookError),
}

impl Engine {
    /// The active version's tick interval in milliseconds (0: it has no `tick` hook).
    pub fn tick_interval_ms(&self) -> u32 {
        self.active().info().tick_interval_ms
    }

    /// Runs the active version's `tick` hook once, unless a swap is pausing traffic. Returns
    /// what happened and the release (`app version (file)`) it ran on.
    pub fn tick(&self) -> (Ticked, String) {
        let Some(active) = self.gate.try_read() else {
            return (Ticked::Skipped, self.active().id().to_owned());
        };
        let instance = Arc::clone(&active.instance);
        let release = instance.plugin().id().to_owned();
        if instance.plugin().info().tick_interval_ms == 0 {
            return (Ticked::NoHook, release);
        }
        // The guard stays held for the call: no swap pauses while the hook runs.
        let outcome = match instance.tick() {
            Ok(()) => Ticked::Done,
            Err(e) => Ticked::Failed(e),
        };
        drop(active);
        (outcome, release)
    }
}
