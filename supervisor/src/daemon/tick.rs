//! The tick thread: calls the serving version's `tick` hook at the interval it declares.
//!
//! One plain thread of the supervisor's own (the app starts none), not a runtime task: a tick
//! runs plugin code that may block. The interval is read again after every tick, so a swap to
//! a version with another interval, or none, takes effect at once. Ticks stop before the
//! final snapshot at shutdown, so the snapshot is the last word on the state.

use super::Supervisor;
use crate::engine::Ticked;
use crate::metrics::TickResult;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The shortest interval honoured, whatever an app declares.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// How often to look again while the serving version has no tick hook.
const IDLE: Duration = Duration::from_millis(100);

/// The running tick thread; dropping it stops and joins the thread.
pub(super) struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts the thread for `sup`.
    pub(super) fn spawn(sup: Arc<Supervisor>) -> std::io::Result<Ticker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("molt-tick".to_owned())
            .spawn(move || run(&sup, &stopped))?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(sup: &Supervisor, stopped: &mpsc::Receiver<()>) {
    loop {
        let wait = match sup.engine.get().map(|e| e.tick_interval_ms()) {
            Some(ms) if ms > 0 => Duration::from_millis(u64::from(ms)).max(MIN_INTERVAL),
            _ => IDLE,
        };
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(engine) = sup.engine.get() else {
            continue;
        };
        match engine.tick() {
            (Ticked::NoHook, _) => {}
            (Ticked::Done, _) => sup.metrics.record_tick(TickResult::Ok),
            (Ticked::Skipped, _) => sup.metrics.record_tick(TickResult::Skipped),
            (Ticked::Failed(error), release) => {
                tracing::warn!(%release, %error, "tick failed; the app serves on and ticks again at its interval");
                sup.metrics.record_tick(TickResult::Failed);
            }
        }
    }
}
