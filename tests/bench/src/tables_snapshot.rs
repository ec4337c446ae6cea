//! How long requests wait while a snapshot of the tables is written: an in-process engine on
//! kv v3 holding the state, caller threads doing GETs and PUTs through `Engine::handle` and
//! timing every call, first for a while with no snapshot (the baseline), then while the
//! supervisor's snapshot code writes the state and its tables to a snapshot directory (the
//! tables shard by shard from the live store).

use crate::pause::{filled, Size, VALUE_BYTES};
use anyhow::Context;
use molt_abi::Request;
use molt_supervisor::engine::Engine;
use molt_supervisor::loader::Expect;
use molt_supervisor::snapshot::{Snapshot, SnapshotStore};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest waits.
#[derive(Debug, Clone, Serialize)]
pub struct StallResult {
    /// The label of the state size.
    pub label: String,
    /// Record bytes in the tables.
    pub state_bytes: u64,
    /// Bytes of the snapshot file.
    pub file_bytes: u64,
    /// How long writing the snapshot took, ms.
    pub snapshot_ms: f64,
    /// The longest call while the snapshot was written, ms.
    pub tables: f64,
    /// When that call started, ms after the snapshot began (to tell the pass over the tables
    /// from the file's fsync and rename at the end).
    pub longest_at_ms: f64,
    /// Calls over 10 ms while the snapshot was written.
    pub calls_over_10ms: u64,
    /// When the first 100 of those started, ms after the snapshot began.
    pub calls_over_10ms_at: Vec<f64>,
    /// Calls over 10 ms in the window with no snapshot.
    pub baseline_calls_over_10ms: u64,
    /// The longest call in as long a window with no snapshot, ms.
    pub baseline_ms: f64,
    /// Calls timed while the snapshot was written.
    pub calls: u64,
    /// kv v1 (bytes state) over HTTP: the longest request wait while snapshots ran under
    /// load, ms (the serving measurement, `crate::stall`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<f64>,
}

/// The longest call of a window: how long, when it started, and how many took over 10 ms.
#[derive(Debug, Clone, Copy, Default)]
struct Longest {
    ms: f64,
    at: Option<Instant>,
    over_10ms: u64,
    calls: u64,
}

/// When calls over 10 ms started, the first 100.
type Slow = Mutex<Vec<Instant>>;

/// Calls until `stop`, keeping the longest call.
fn callers(engine: &Engine, threads: usize, stop: &AtomicBool, keys: u64, slow: &Slow) -> Longest {
    let longest = Mutex::new(Longest::default());
    std::thread::scope(|s| {
        for t in 0..threads {
            let longest = &longest;
            s.spawn(move || {
                let mut mine = Longest::default();
                let value = [b'v'; 100];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("/kv/k{}", (n * 7919 + t as u64) % keys);
                    let req = if n % 4 == 3 {
                        Request::new("PUT", &key, "", &[], &value)
                    } else {
                        Request::new("GET", &key, "", &[], b"")
                    };
                    let started = Instant::now();
                    engine.handle(&req);
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    if ms > mine.ms {
                        (mine.ms, mine.at) = (ms, Some(started));
                    }
                    if ms > 10.0 {
                        mine.over_10ms += 1;
                        let mut slow = slow.lock().unwrap_or_else(|e| e.into_inner());
                        if slow.len() < 100 {
                            slow.push(started);
                        }
                    }
                    n += 1;
                }
                mine.calls = n;
                let mut l = longest.lock().unwrap_or_else(|e| e.into_inner());
                if mine.ms > l.ms {
                    (l.ms, l.at) = (mine.ms, mine.at);
                }
                l.over_10ms += mine.over_10ms;
                l.calls += mine.calls;
            });
        }
    });
    longest.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Measures at `size`.
pub fn run(kv_v3: &Path, work: &Path, size: &Size, mut tick: impl FnMut()) -> anyhow::Result<StallResult> {
    let v3 =
        molt_tests::drive::load_file(kv_v3, &work.join("run"), &Expect::any()).context("loading kv v3")?;
    let engine = filled(&v3, size)?;
    let keys = (size.bytes / VALUE_BYTES).max(1);
    let store = SnapshotStore::new(work.join("state"));
    let threads = 2;

    let snapshot = || -> anyhow::Result<(f64, u64)> {
        let started = Instant::now();
        let exported = engine.export_state().context("export")?;
        let (version, state) = (exported.version, exported.state);
        let snap =
            Snapshot::new("kv", version, state.schema, state.bytes).with_tables(Arc::clone(engine.tables()));
        let path = store.write(&snap).context("writing the snapshot")?;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok((started.elapsed().as_secs_f64() * 1e3, len))
    };
    // Snapshot once unmeasured (creates the directory, warms the page cache).
    snapshot()?;
    tick();

    let stop = AtomicBool::new(false);
    let slow = Slow::default();
    let (written, began, during) = std::thread::scope(|s| {
        let load = s.spawn(|| callers(&engine, threads, &stop, keys, &slow));
        std::thread::sleep(Duration::from_millis(200));
        let began = Instant::now();
        let written = snapshot();
        stop.store(true, Ordering::SeqCst);
        (written, began, load.join().unwrap_or_default())
    });
    let (snapshot_ms, file_bytes) = written?;
    tick();

    let stop = AtomicBool::new(false);
    let baseline = std::thread::scope(|s| {
        let load = s.spawn(|| callers(&engine, threads, &stop, keys, &Slow::default()));
        std::thread::sleep(Duration::from_secs_f64(snapshot_ms / 1e3 + 0.2));
        stop.store(true, Ordering::SeqCst);
        load.join().unwrap_or_default()
    });
    tick();
    Ok(StallResult {
        label: size.label.to_owned(),
        state_bytes: engine.tables().bytes(),
        file_bytes,
        snapshot_ms,
        tables: during.ms,
        longest_at_ms: during.at.map_or(f64::NAN, |at| {
            (at.saturating_duration_since(began)).as_secs_f64() * 1e3
        }),
        calls_over_10ms: during.over_10ms,
        calls_over_10ms_at: {
            let mut at: Vec<f64> = slow
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|t| t.saturating_duration_since(began).as_secs_f64() * 1e3)
                .collect();
            at.sort_by(f64::total_cmp);
            at
        },
        baseline_calls_over_10ms: baseline.over_10ms,
        baseline_ms: baseline.ms,
        calls: during.calls,
        bytes: None,
    })
}
