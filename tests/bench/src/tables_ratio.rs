//! Steady-state throughput of host-owned tables against the in-plugin map: the same kv
//! GET/PUT workload (4 GETs to 1 PUT of 100-byte values, over 10,000 keys) driven through
//! `Engine::handle` on kv v1 (a sharded `HashMap` inside the plugin) and on kv v3 (the table,
//! through the host functions), in short alternating rounds (this VM's throughput drifts over
//! seconds). In-process, with no HTTP around the calls: the table's own cost is not diluted.

use crate::stats::Summary;
use anyhow::{ensure, Context};
use molt_abi::Request;
use molt_supervisor::engine::{Engine, EngineConfig};
use molt_supervisor::loader::Expect;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const KEYS: u64 = 10_000;

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RatioResult {
    /// Rounds per side.
    pub rounds: usize,
    /// Seconds per round.
    pub round_s: f64,
    /// Threads calling.
    pub threads: usize,
    /// Calls per second on kv v1's in-plugin map, per round.
    pub bytes_calls_per_s: Summary,
    /// Calls per second on kv v3's table, per round.
    pub tables_calls_per_s: Summary,
    /// Median tables / median in-plugin map.
    pub ratio: f64,
}

fn engine(library: &Path, run_dir: &Path) -> anyhow::Result<Engine> {
    let plugin = molt_tests::drive::load_file(library, run_dir, &Expect::any()).context("loading")?;
    let engine = Engine::start(plugin, None, EngineConfig::default()).context("starting")?;
    let served = engine.handle(&Request::new(
        "POST",
        "/preload",
        &format!("keys={KEYS}&size=100"),
        &[],
        b"",
    ));
    ensure!(
        served.response.status == 200,
        "preload: {}",
        served.response.text()
    );
    Ok(engine)
}

/// Calls per second of the workload on `engine` for `round`, with `threads` threads.
fn round(engine: &Engine, threads: usize, round: Duration) -> f64 {
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, calls) = (&stop, &calls);
            s.spawn(move || {
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1);
                let value = [b'v'; 100];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let path = format!("/kv/k{}", x % KEYS);
                    let req = if n % 5 == 4 {
                        Request::new("PUT", &path, "", &[], &value)
                    } else {
                        Request::new("GET", &path, "", &[], b"")
                    };
                    let served = engine.handle(&req);
                    debug_assert!(served.response.status < 300);
                    n += 1;
                }
                calls.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(round);
        stop.store(true, Ordering::Relaxed);
    });
    calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Runs `rounds` alternating rounds per side.
pub fn run(
    kv_v1: &Path,
    kv_v3: &Path,
    run_dir: &Path,
    rounds: usize,
    round_s: f64,
    mut tick: impl FnMut(),
) -> anyhow::Result<RatioResult> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
    let (bytes, tables) = (engine(kv_v1, run_dir)?, engine(kv_v3, run_dir)?);
    let duration = Duration::from_secs_f64(round_s);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        // Alternate which side goes first, so drift favours neither.
        if i % 2 == 0 {
            a.push(round(&bytes, threads, duration));
            b.push(round(&tables, threads, duration));
        } else {
            b.push(round(&tables, threads, duration));
            a.push(round(&bytes, threads, duration));
        }
        tick();
    }
    let (a, b) = (Summary::of(&a), Summary::of(&b));
    Ok(RatioResult {
        rounds,
        round_s,
        threads,
        bytes_calls_per_s: a,
        tables_calls_per_s: b,
        ratio: b.p50 / a.p50.max(1.0),
    })
}
