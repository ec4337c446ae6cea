//! Prometheus metrics of one supervisor, served on the control API's `/metrics` in the
//! Prometheus text exposition format (version 0.0.4), which `promtool check metrics` accepts
//! and every Prometheus scrapes.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `molt_http_requests_total` | counter | `status` |
//! | `molt_swaps_total` | counter | `result`: `ok`, `refused`, `rolled_back` |
//! | `molt_swap_pause_seconds` | histogram | |
//! | `molt_swap_state_bytes` | gauge | |
//! | `molt_snapshots_total` | counter | `result`: `ok`, `failed` |
//! | `molt_snapshot_failing` | gauge | 1 while the last snapshot write failed |
//! | `molt_http_dispatch_total` | counter | `path`: `inline` (on a runtime worker), `pool` (blocking pool) |
//! | `molt_state_lock_wait_seconds_total` | counter | `waiter`: `swap` (behind a snapshot's export), `snapshot` (behind a swap) |
//! | `molt_watch_wakeups_total` | counter | `source`: `change` (inotify saw `current` change), `poll` |
//! | `molt_ticks_total` | counter | `result`: `ok`, `failed` (error or panic, contained), `skipped` (a swap paused traffic) |
//! | `molt_libraries_left_mapped` | gauge: libraries still mapped after they were closed (threads or TLS destructors of theirs keep them loaded) | |
//! | `molt_active_release_info` | gauge (1 for the serving version) | `app`, `version` |
//! | `molt_start_time_seconds` | gauge | |
//!
//! Written by hand rather than with `prometheus-client`: that crate writes OpenMetrics, whose
//! `# TYPE` line names a counter without its `_total` suffix, which `promtool check metrics`
//! (the classic text format's linter) rejects. The whole format is a few lines of `write!`.

use parking_lot::Mutex;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the pause histogram's buckets: 10 µs doubling to about 5 s.
const PAUSE_BUCKETS: [f64; 20] = {
    let mut b = [0.0; 20];
    let mut i = 0;
    let mut v = 0.000_01;
    while i < 20 {
        b[i] = v;
        v *= 2.0;
        i += 1;
    }
    b
};

/// How a swap ended, as counted in `molt_swaps_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapResult {
    /// The new version serves.
    Ok,
    /// The release was refused; the running version kept serving.
    Refused,
    /// The new version failed probation and the previous one serves again.
    RolledBack,
}

impl SwapResult {
    const ALL: [SwapResult; 3] = [SwapResult::Ok, SwapResult::Refused, SwapResult::RolledBack];

    fn label(self) -> &'static str {
        match self {
            SwapResult::Ok => "ok",
            SwapResult::Refused => "refused",
            SwapResult::RolledBack => "rolled_back",
        }
    }
}

/// Where the front ran a request, as counted in `molt_http_dispatch_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// On the runtime worker that read it (the common case).
    Inline,
    /// On the blocking pool: a swap held the gate, or the inline bound was reached.
    Pool,
}

/// Who waited for the engine's one-at-a-time lock, as counted in
/// `molt_state_lock_wait_seconds_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiter {
    /// A swap or rollback, behind a snapshot's export.
    Swap,
    /// A snapshot's export, behind a swap.
    Snapshot,
}

/// What woke the volume watcher, as counted in `molt_watch_wakeups_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeSource {
    /// inotify reported a change of `current` (never a read of it).
    Change,
    /// The `--poll-interval` timer.
    Poll,
}

impl WakeSource {
    const ALL: [WakeSource; 2] = [WakeSource::Change, WakeSource::Poll];

    fn label(self) -> &'static str {
        match self {
            WakeSource::Change => "change",
            WakeSource::Poll => "poll",
        }
    }
}

/// How a call of the `tick` hook went, as counted in `molt_ticks_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickResult {
    /// It ran and succeeded.
    Ok,
    /// It returned an error or panicked; the app serves on.
    Failed,
    /// A swap was pausing traffic: not run.
    Skipped,
}

impl TickResult {
    const ALL: [TickResult; 3] = [TickResult::Ok, TickResult::Failed, TickResult::Skipped];

    fn label(self) -> &'static str {
        match self {
            TickResult::Ok => "ok",
            TickResult::Failed => "failed",
            TickResult::Skipped => "skipped",
        }
    }
}

#[derive(Default)]
struct PauseHistogram {
    buckets: [u64; PAUSE_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The supervisor's metrics. Recording is lock-free on the request path.
pub struct Metrics {
    /// Requests by status code 100..=599, indexed by `status - 100`.
    requests: Vec<AtomicU64>,
    swaps: [AtomicU64; 3],
    pause: Mutex<PauseHistogram>,
    state_bytes: AtomicU64,
    snapshots_ok: AtomicU64,
    snapshots_failed: AtomicU64,
    snapshot_failing: AtomicU64,
    wakeups: [AtomicU64; 2],
    dispatch: [AtomicU64; 2],
    /// Nanoseconds waited, by [`Waiter`].
    lock_waits: [AtomicU64; 2],
    ticks: [AtomicU64; 3],
    left_mapped: AtomicU64,
    active: Mutex<Option<(String, String)>>,
    started: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, with the start time set to now.
    pub fn new() -> Self {
        Metrics {
            requests: (100..600).map(|_| AtomicU64::new(0)).collect(),
            swaps: Default::default(),
            pause: Mutex::new(PauseHistogram::default()),
            state_bytes: AtomicU64::new(0),
            snapshots_ok: AtomicU64::new(0),
            snapshots_failed: AtomicU64::new(0),
            snapshot_failing: AtomicU64::new(0),
            wakeups: Default::default(),
            dispatch: Default::default(),
            lock_waits: Default::default(),
            ticks: Default::default(),
            left_mapped: AtomicU64::new(0),
            active: Mutex::new(None),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
        }
    }

    /// Counts one app request by its status (statuses outside 100..=599 count as 500).
    pub fn record_request(&self, status: u16) {
        let index = if (100..600).contains(&status) {
            status - 100
        } else {
            400
        };
        self.requests[usize::from(index)].fetch_add(1, Ordering::Relaxed);
    }

    /// All app requests counted so far, and how many of them were 5xx.
    pub fn request_counts(&self) -> (u64, u64) {
        let count = |range: std::ops::Range<usize>| {
            self.requests[range]
                .iter()
                .map(|n| n.load(Ordering::Relaxed))
                .sum::<u64>()
        };
        (count(0..500), count(400..500))
    }

    /// Counts a swap; a completed one also records its pause and state size.
    pub fn record_swap(&self, result: SwapResult, pause: Option<Duration>, state_bytes: Option<usize>) {
        self.swaps[result as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(pause) = pause {
            let seconds = pause.as_secs_f64();
            let mut h = self.pause.lock();
            h.count += 1;
            h.sum += seconds;
            for (bound, count) in PAUSE_BUCKETS.iter().zip(h.buckets.iter_mut()) {
                if seconds <= *bound {
                    *count += 1;
                }
            }
        }
        if let Some(bytes) = state_bytes {
            self.state_bytes.store(bytes as u64, Ordering::Relaxed);
        }
    }

    /// App requests answered since start, all statuses.
    pub fn requests_total(&self) -> u64 {
        self.requests.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Whether the last snapshot write failed (`molt_snapshot_failing`).
    pub fn set_snapshot_failing(&self, failing: bool) {
        self.snapshot_failing.store(u64::from(failing), Ordering::Relaxed);
    }

    /// Counts a snapshot write.
    pub fn record_snapshot(&self, ok: bool) {
        let counter = if ok {
            &self.snapshots_ok
        } else {
            &self.snapshots_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `waited` to the time `waiter` spent behind the other (a snapshot behind a swap, or
    /// the reverse).
    pub fn record_state_lock_wait(&self, waiter: Waiter, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.lock_waits[waiter as usize].fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts where one request ran.
    pub fn record_dispatch(&self, dispatch: Dispatch) {
        self.dispatch[dispatch as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests run inline and on the blocking pool so far.
    pub fn dispatches(&self) -> (u64, u64) {
        (
            self.dispatch[Dispatch::Inline as usize].load(Ordering::Relaxed),
            self.dispatch[Dispatch::Pool as usize].load(Ordering::Relaxed),
        )
    }

    /// Counts one wake-up of the volume watcher.
    pub fn record_wakeup(&self, source: WakeSource) {
        self.wakeups[source as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Sets how many closed libraries are still mapped (see `loader::left_mapped`).
    pub fn set_libraries_left_mapped(&self, n: usize) {
        self.left_mapped.store(n as u64, Ordering::Relaxed);
    }

    /// Counts one call (or skip) of the `tick` hook.
    pub fn record_tick(&self, result: TickResult) {
        self.ticks[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The watcher's wake-ups from `source` so far.
    pub fn wakeups(&self, source: WakeSource) -> u64 {
        self.wakeups[source as usize].load(Ordering::Relaxed)
    }

    /// Marks `app` `version` as the serving release.
    pub fn set_active(&self, app: &str, version: &str) {
        *self.active.lock() = Some((app.to_owned(), version.to_owned()));
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail, hence the ignored results below.
        let _ = writeln!(
            out,
            "# HELP molt_http_requests_total App requests served, by HTTP status.\n\
             # TYPE molt_http_requests_total counter"
        );
        for (i, n) in self.requests.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "molt_http_requests_total{{status=\"{}\"}} {n}", i + 100);
            }
        }
        let _ = writeln!(
            out,
            "# HELP molt_swaps_total Code swaps, by result.\n# TYPE molt_swaps_total counter"
        );
        for result in SwapResult::ALL {
            let n = self.swaps[result as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "molt_swaps_total{{result=\"{}\"}} {n}", result.label());
        }
        let _ = writeln!(
            out,
            "# HELP molt_swap_pause_seconds Time traffic was paused by a swap (drain, export, import, switch).\n\
             # TYPE molt_swap_pause_seconds histogram"
        );
        {
            let h = self.pause.lock();
            for (bound, count) in PAUSE_BUCKETS.iter().zip(h.buckets.iter()) {
                let _ = writeln!(out, "molt_swap_pause_seconds_bucket{{le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "molt_swap_pause_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "molt_swap_pause_seconds_sum {}", h.sum);
            let _ = writeln!(out, "molt_swap_pause_seconds_count {}", h.count);
        }
        let _ = writeln!(
            out,
            "# HELP molt_swap_state_bytes Bytes of state migrated by the last swap.\n\
             # TYPE molt_swap_state_bytes gauge\nmolt_swap_state_bytes {}",
            self.state_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP molt_snapshots_total State snapshots written, by result.\n\
             # TYPE molt_snapshots_total counter\n\
             molt_snapshots_total{{result=\"ok\"}} {}\nmolt_snapshots_total{{result=\"failed\"}} {}",
            self.snapshots_ok.load(Ordering::Relaxed),
            self.snapshots_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP molt_snapshot_failing 1 while the last state snapshot write failed (the state since the last good one is only in memory), else 0.\n\
             # TYPE molt_snapshot_failing gauge\nmolt_snapshot_failing {}",
            self.snapshot_failing.load(Ordering::Relaxed)
        );
        let waited = |w: Waiter| self.lock_waits[w as usize].load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "# HELP molt_state_lock_wait_seconds_total Time swaps waited for snapshot exports, and snapshots for swaps (they never overlap).\n\
             # TYPE molt_state_lock_wait_seconds_total counter\n\
             molt_state_lock_wait_seconds_total{{waiter=\"swap\"}} {}\n\
             molt_state_lock_wait_seconds_total{{waiter=\"snapshot\"}} {}",
            waited(Waiter::Swap),
            waited(Waiter::Snapshot)
        );
        let (inline, pool) = self.dispatches();
        let _ = writeln!(
            out,
            "# HELP molt_http_dispatch_total App requests by where they ran: inline on a runtime worker, or on the blocking pool.\n\
             # TYPE molt_http_dispatch_total counter\n\
             molt_http_dispatch_total{{path=\"inline\"}} {inline}\nmolt_http_dispatch_total{{path=\"pool\"}} {pool}"
        );
        let _ = writeln!(
            out,
            "# HELP molt_watch_wakeups_total Wake-ups of the volume watcher, by source.\n\
             # TYPE molt_watch_wakeups_total counter"
        );
        for source in WakeSource::ALL {
            let _ = writeln!(
                out,
                "molt_watch_wakeups_total{{source=\"{}\"}} {}",
                source.label(),
                self.wakeups(source)
            );
        }
        let _ = writeln!(
            out,
            "# HELP molt_ticks_total Calls of the app's tick hook, by result.\n\
             # TYPE molt_ticks_total counter"
        );
        for result in TickResult::ALL {
            let n = self.ticks[result as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "molt_ticks_total{{result=\"{}\"}} {n}", result.label());
        }
        let _ = writeln!(
            out,
            "# HELP molt_libraries_left_mapped Libraries still mapped after they were closed.\n\
             # TYPE molt_libraries_left_mapped gauge\nmolt_libraries_left_mapped {}",
            self.left_mapped.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP molt_active_release_info The release that serves (value 1).\n\
             # TYPE molt_active_release_info gauge"
        );
        if let Some((app, version)) = self.active.lock().as_ref() {
            let _ = writeln!(
                out,
                "molt_active_release_info{{app=\"{}\",version=\"{}\"}} 1",
                escape(app),
                escape(version)
            );
        }
        let _ = writeln!(
            out,
            "# HELP molt_start_time_seconds When this supervisor started (unix seconds).\n\
             # TYPE molt_start_time_seconds gauge\nmolt_start_time_seconds {}",
            self.started
        );
        out
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text() {
        let m = Metrics::new();
        m.record_request(200);
        m.record_request(200);
        m.record_request(500);
        m.record_request(999);
        m.record_swap(SwapResult::Ok, Some(Duration::from_micros(300)), Some(8));
        m.set_active("counter", "1.0.0");
        m.set_active("counter", "2.0.0");
        let text = m.encode();
        assert!(
            text.contains("molt_http_requests_total{status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("molt_http_requests_total{status=\"500\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("molt_swaps_total{result=\"ok\"} 1\n"), "{text}");
        assert!(
            text.contains("molt_swaps_total{result=\"refused\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("molt_swap_pause_seconds_bucket{le=\"0.00016\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("molt_swap_pause_seconds_bucket{le=\"0.00032\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("molt_swap_pause_seconds_count 1\n"), "{text}");
        assert!(
            text.contains("molt_active_release_info{app=\"counter\",version=\"2.0.0\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("version=\"1.0.0\""),
            "the old version is no longer active: {text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
