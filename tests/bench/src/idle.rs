//! An idle molt uses no CPU: a release `molt run` serving counter v1, swapped 10 times
//! (v1 ↔ v2 through `POST /activate`) and asked `GET /status` 10 times (what used to start
//! the watcher waking itself), then left alone; its CPU time over the idle window, from
//! `/proc`, as a percentage of one core.

use crate::artifacts::{Built, V1, V2};
use crate::molt::{push, Molt, Setup};
use crate::procstat::usage;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// The idle figures.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    /// CPU time over the idle window / the window, in % of one core.
    pub idle_cpu_percent: f64,
    /// CPU time over the window, µs (clock-tick resolution).
    pub cpu_us: u64,
    /// Context switches of all its threads over the window.
    pub context_switches: u64,
    /// The window, s.
    pub window_s: f64,
    /// Swaps and `GET /status` before the window.
    pub swaps_before: u64,
    /// `GET /status` calls before the window.
    pub status_calls_before: u64,
}

/// Swaps, asks for the status, then measures `window` of idleness.
pub fn run(built: &Built, work: &Path, window: Duration) -> anyhow::Result<IdleResult> {
    let volume = work.join("volume");
    push(&built.molt, &built.counter_v1, &volume, true)?;
    push(&built.molt, &built.counter_v2, &volume, false)?;
    let molt = Molt::start(&Setup::new(&built.molt, &volume, "counter", &work.join("molt")))?;
    const SWAPS: u64 = 10;
    for i in 0..SWAPS {
        molt.activate(if i % 2 == 0 { V2 } else { V1 })?;
    }
    for _ in 0..SWAPS {
        molt.status()?;
    }
    // Let what the swaps started settle (the engine's hook threads, the reconcile).
    std::thread::sleep(Duration::from_millis(500));
    let before = usage(molt.pid())?;
    let started = Instant::now();
    std::thread::sleep(window);
    let spent = usage(molt.pid())?.since(before);
    let window_s = started.elapsed().as_secs_f64();
    molt.terminate()?;
    Ok(IdleResult {
        idle_cpu_percent: spent.cpu_us as f64 / 1e6 / window_s * 100.0,
        cpu_us: spent.cpu_us,
        context_switches: spent.switches,
        window_s,
        swaps_before: SWAPS,
        status_calls_before: SWAPS,
    })
}
