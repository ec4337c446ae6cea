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
    /// The longest call in as long a window with no snapshot, ms.
    pub baseline_ms: f64,
    /// Calls timed while the snapshot was written.
    pub calls: u64,
    /// kv v1 (bytes state) over HTTP: the longest request wait while snapshots ran under
    /// load, ms (the serving measurement, `crate::stall`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<f64>,
}

/// Calls until `stop`, keeping the longest call.
fn callers(engine: &Engine, threads: usize, stop: &AtomicBool, keys: u64) -> (f64, u64) {
    let longest = Mutex::new((0f64, 0u64));
    std::thread::scope(|s| {
        for t in 0..threads {
            let longest = &longest;
            s.spawn(move || {
                let (mut worst, mut n) = (0f64, 0u64);
                let value = [b'v'; 100];
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("/kv/k{}", (n * 7919 + t as u64) % keys);
                    let req = if n % 4 == 3 {
                        Request::new("PUT", &key, "", &[], &value)
                    } else {
                        Request::new("GET", &key, "", &[], b"")
                    };
                    let started = Instant::now();
                    engine.handle(&req);
                    worst = worst.max(started.elapsed().as_secs_f64() * 1e3);
                    n += 1;
                }
                let mut l = longest.lock().unwrap_or_else(|e| e.into_inner());
                *l = (l.0.max(worst), l.1 + n);
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
    let (written, (during, calls)) = std::thread::scope(|s| {
        let load = s.spawn(|| callers(&engine, threads, &stop, keys));
        std::thread::sleep(Duration::from_millis(200));
        let written = snapshot();
        stop.store(true, Ordering::SeqCst);
        (written, load.join().unwrap_or((f64::NAN, 0)))
    });
    let (snapshot_ms, file_bytes) = written?;
    tick();

    let stop = AtomicBool::new(false);
    let (baseline, _) = std::thread::scope(|s| {
        let load = s.spawn(|| callers(&engine, threads, &stop, keys));
        std::thread::sleep(Duration::from_secs_f64(snapshot_ms / 1e3 + 0.2));
        stop.store(true, Ordering::SeqCst);
        load.join().unwrap_or((f64::NAN, 0))
    });
    tick();
    Ok(StallResult {
        label: size.label.to_owned(),
        state_bytes: engine.tables().bytes(),
        file_bytes,
        snapshot_ms,
        tables: during,
        baseline_ms: baseline,
        calls,
        bytes: None,
    })
}
