//! Calling the app on runtime workers, safely: a bound on how many workers may be inside the
//! app at once, and a watchdog for calls that block.
//!
//! Why both (see docs/DESIGN.md, "The serving path"): a tokio worker blocked in a foreign call
//! cannot be given back, only not lent out again, so [`Inline::enter`] admits at most
//! `workers - 1` callers and the rest go to the blocking pool. That alone is not enough: tokio
//! polls sockets from whichever idle worker holds its I/O driver, and a worker that parked while
//! another held the driver sleeps until someone wakes it. If the worker that held the driver
//! then picks up a request and blocks in the app, no thread polls the sockets and every
//! connection stalls until the call returns. The [`Watchdog`] thread notices an inline call
//! that has run for two of its ticks (10–20 ms) and spawns an empty task on the runtime, which
//! wakes a parked worker; that worker runs it, finds the driver free and polls the sockets from
//! then on. So a blocked handler costs other connections at most a tick or two, once.
//!
//! The watchdog costs nothing when idle: it parks after a second without inline calls and the
//! next call unparks it. Under load it wakes every [`TICK`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::Duration;

/// The watchdog's period.
pub const TICK: Duration = Duration::from_millis(10);

/// Ticks without any inline call before the watchdog parks.
const IDLE_TICKS: u32 = 100;

/// The inline bound and the watchdog's view of the calls in progress.
#[derive(Debug)]
pub struct Inline {
    /// One entry per caller allowed at once: 0 when free, else the watchdog tick at entry + 1.
    entries: Box<[AtomicU64]>,
    /// The watchdog's clock.
    tick: AtomicU64,
    /// Calls entered so far (the watchdog tells idleness from it).
    entered: AtomicU64,
    /// Calls the watchdog found blocked.
    stalls: AtomicU64,
    parked: AtomicBool,
    stop: AtomicBool,
    watchdog: std::sync::OnceLock<Thread>,
    /// Callers inside now.
    busy: AtomicUsize,
}

/// One caller inside the app; dropping it leaves.
#[derive(Debug)]
pub struct Entered<'a> {
    inline: &'a Inline,
    entry: usize,
}

impl Inline {
    /// At most `max` callers at once (zero: never inline).
    pub fn new(max: usize) -> Inline {
        Inline {
            entries: (0..max).map(|_| AtomicU64::new(0)).collect(),
            tick: AtomicU64::new(0),
            entered: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            watchdog: std::sync::OnceLock::new(),
            busy: AtomicUsize::new(0),
        }
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.entries.len()
    }

    /// Calls the watchdog found running for more than a tick.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// A place inside, unless all are taken.
    pub fn enter(&self) -> Option<Entered<'_>> {
        let stamp = self.tick.load(Ordering::Relaxed) + 1;
        let entry = self.entries.iter().position(|e| {
            e.compare_exchange(0, stamp, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })?;
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.entered.fetch_add(1, Ordering::Relaxed);
        if self.parked.load(Ordering::SeqCst) {
            if let Some(watchdog) = self.watchdog.get() {
                watchdog.unpark();
            }
        }
        Some(Entered { inline: self, entry })
    }

    /// Starts the watchdog thread for calls made on `runtime`'s workers. It stops when the
    /// returned guard is dropped.
    pub fn watch(self: &Arc<Self>, runtime: tokio::runtime::Handle) -> std::io::Result<WatchdogGuard> {
        let inline = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("molt-inline-watchdog".into())
            .spawn(move || Watchdog { inline, runtime }.run())?;
        let _ = self.watchdog.set(thread.thread().clone());
        Ok(WatchdogGuard {
            inline: Arc::clone(self),
        })
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.inline.busy.fetch_sub(1, Ordering::SeqCst);
        self.inline.entries[self.entry].store(0, Ordering::Release);
    }
}

/// Stops the watchdog when dropped.
#[derive(Debug)]
pub struct WatchdogGuard {
    inline: Arc<Inline>,
}

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        self.inline.stop.store(true, Ordering::SeqCst);
        if let Some(watchdog) = self.inline.watchdog.get() {
            watchdog.unpark();
        }
    }
}

/// The thread that notices blocked inline calls (module docs).
struct Watchdog {
    inline: Arc<Inline>,
    runtime: tokio::runtime::Handle,
}

impl Watchdog {
    fn run(self) {
        let inline = &*self.inline;
        let mut idle = 0;
        let mut last_entered = inline.entered.load(Ordering::Relaxed);
        while !inline.stop.load(Ordering::SeqCst) {
            let entered = inline.entered.load(Ordering::Relaxed);
            if entered == last_entered && inline.busy.load(Ordering::SeqCst) == 0 {
                idle += 1;
            } else {
                idle = 0;
            }
            last_entered = entered;
            if idle >= IDLE_TICKS {
                inline.parked.store(true, Ordering::SeqCst);
                // A caller that entered before `parked` was set is seen here; one after it
                // unparks us (an unpark before `park` makes it return at once).
                if inline.busy.load(Ordering::SeqCst) == 0 && !inline.stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                inline.parked.store(false, Ordering::SeqCst);
                idle = 0;
                last_entered = inline.entered.load(Ordering::Relaxed);
                continue;
            }
            std::thread::sleep(TICK);
            let now = inline.tick.fetch_add(1, Ordering::Relaxed) + 1;
            // An entry made two ticks ago or earlier (stamp = tick at entry + 1) has run for at
            // least one whole tick.
            let blocked = inline.entries.iter().any(|e| {
                let stamp = e.load(Ordering::Acquire);
                stamp != 0 && stamp < now
            });
            if blocked {
                let n = inline.stalls.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        blocked_ticks = n,
                        tick = ?TICK,
                        "an app call has been running on a runtime worker for over a tick; waking another worker to serve the sockets (requests past the inline bound go to the blocking pool)"
                    );
                }
                // Wakes a parked worker, which then takes the I/O driver if it is free.
                drop(self.runtime.spawn(async {}));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_bound_is_inside() {
        let inline = Inline::new(2);
        let a = inline.enter().expect("first");
        let b = inline.enter().expect("second");
        assert!(inline.enter().is_none(), "a third is over the bound");
        drop(a);
        let _c = inline.enter().expect("a freed place is taken again");
        drop(b);
        assert!(Inline::new(0).enter().is_none());
    }

    #[test]
    fn the_watchdog_sees_a_call_that_blocks_and_lets_go_when_idle() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let inline = Arc::new(Inline::new(1));
        let guard = inline.watch(runtime.handle().clone()).unwrap();
        {
            let _inside = inline.enter().unwrap();
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while inline.stalls() == 0 {
                assert!(
                    std::time::Instant::now() < until,
                    "the watchdog never saw the call"
                );
                std::thread::sleep(TICK);
            }
        }
        let stalls = inline.stalls();
        // Short calls are not stalls.
        for _ in 0..100 {
            drop(inline.enter().unwrap());
        }
        drop(guard);
        assert!(
            inline.stalls() <= stalls + 1,
            "{} after {stalls}",
            inline.stalls()
        );
    }
}
