//! [`HookWatch`]: which record hook call a pass over the tables is in, and since when, so that
//! the thread waiting for the pass can hold each call to the hook deadline.
//!
//! A pass (validation, background conversion) runs the record hook once per record; it may
//! take minutes in all, so the deadline is per call, not per pass. The pass runs on a worker
//! thread through a [`Conversion::watched`] copy of the conversion; the waiting thread checks
//! [`HookWatch::overdue`] and, on a call past the deadline, abandons the pass (the thread
//! cannot be killed): [`HookWatch::abandon`] makes every later call of the watched hook fail
//! at once, so when the overrunning call returns, the pass ends at its next record.

use super::convert::{key_text, Conversion, RecordHook};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The record hook call a pass is in.
#[derive(Debug, Default)]
pub struct HookWatch {
    call: Mutex<Call>,
    abandoned: AtomicBool,
}

/// One call: buffers reused from record to record (a pass calls the hook per record).
#[derive(Debug, Default)]
struct Call {
    started: Option<Instant>,
    table: String,
    key: Vec<u8>,
}

/// A record hook call that ran past the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    /// The table.
    pub table: String,
    /// The key, as [`key_text`] names it.
    pub key: String,
    /// How long the call has run.
    pub running: Duration,
}

impl HookWatch {
    /// A watch for one pass.
    pub fn new() -> Arc<HookWatch> {
        Arc::new(HookWatch::default())
    }

    /// The call in progress, if it has run for longer than `timeout`.
    pub fn overdue(&self, timeout: Duration) -> Option<Overdue> {
        let call = self.call.lock();
        let running = call.started?.elapsed();
        (running > timeout).then(|| Overdue {
            table: call.table.clone(),
            key: key_text(&call.key),
            running,
        })
    }

    /// Gives the pass up: every later call of the watched hook fails without running.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
    }

    /// Whether the pass was given up.
    pub fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }
}

/// A record hook whose calls a [`HookWatch`] follows.
struct Watched {
    hook: Arc<dyn RecordHook>,
    watch: Arc<HookWatch>,
}

impl RecordHook for Watched {
    fn convert(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Vec<u8>, String> {
        if self.watch.abandoned() {
            return Err("not run: an earlier call of this pass overran the hook deadline".to_owned());
        }
        {
            let mut call = self.watch.call.lock();
            call.table.clear();
            call.table.push_str(table);
            call.key.clear();
            call.key.extend_from_slice(key);
            call.started = Some(Instant::now());
        }
        let converted = self.hook.convert(table, key, value);
        self.watch.call.lock().started = None;
        converted
    }
}

impl Conversion {
    /// This conversion, with every call of its hook followed by `watch`.
    pub fn watched(&self, watch: &Arc<HookWatch>) -> Conversion {
        Conversion {
            hook: Arc::new(Watched {
                hook: Arc::clone(&self.hook),
                watch: Arc::clone(watch),
            }),
            ..self.clone()
        }
    }
}
