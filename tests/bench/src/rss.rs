//! Memory over many swaps: a release `molt run` flipped v1 ↔ v2 through `POST /activate`. Each
//! swap loads a fresh private copy of the library (`dlopen`); the engine keeps a few replaced
//! versions for rollback and must unload the older ones, so the resident set and the number
//! of mapped libraries stay flat however many swaps there were. Measured after a warm-up (the
//! allocator's arenas, the kept generations filling up): `VmRSS` from `/proc/PID/status` and
//! the counter libraries mapped in `/proc/PID/maps`, sampled along the way.

use crate::artifacts::{Built, V1, V2};
use crate::molt::{push, Molt, Setup};
use serde::Serialize;
use std::path::Path;

/// Resident memory across swaps.
#[derive(Debug, Clone, Serialize)]
pub struct RssResult {
    /// Swaps measured (after the warm-up).
    pub swaps: u64,
    /// Unmeasured swaps before.
    pub warmup_swaps: u64,
    /// `VmRSS` after the warm-up, KiB.
    pub before_kb: u64,
    /// `VmRSS` after the last swap, KiB.
    pub after_kb: u64,
    /// `after_kb - before_kb` (negative: it shrank).
    pub growth_kb: i64,
    /// `growth_kb` per measured swap.
    pub kb_per_swap: f64,
    /// Growth over the second half of the swaps alone, KiB: a leak keeps growing there too.
    pub second_half_growth_kb: i64,
    /// `second_half_growth_kb` per swap of that half.
    pub second_half_kb_per_swap: f64,
    /// Threads after the warm-up (tokio's blocking pool grows to the most tasks it ever ran at
    /// once, and each thread's stack and malloc arena is resident memory).
    pub threads_before: u64,
    /// Threads at the end.
    pub threads_after: u64,
    /// Distinct counter libraries mapped after the warm-up.
    pub mapped_libraries_before: usize,
    /// Distinct counter libraries mapped at the end.
    pub mapped_libraries_after: usize,
    /// `(swaps so far, VmRSS KiB, threads)` along the way.
    pub samples: Vec<(u64, u64, u64)>,
}

/// Warm-up swaps.
const WARMUP: u64 = 200;
/// RSS samples along the way.
const SAMPLES: u64 = 20;

/// Runs `swaps` swaps (after the warm-up), calling `tick` after each.
pub fn run(built: &Built, work: &Path, swaps: u64, mut tick: impl FnMut()) -> anyhow::Result<RssResult> {
    let volume = work.join("volume");
    push(&built.molt, &built.counter_v1, &volume, true)?;
    push(&built.molt, &built.counter_v2, &volume, false)?;
    let molt = Molt::start(&Setup::new(&built.molt, &volume, "counter", &work.join("molt")))?;
    let mut flip = 0u64;
    let mut swap = || {
        flip += 1;
        molt.activate(if flip % 2 == 1 { V2 } else { V1 }).map(drop)
    };
    for _ in 0..WARMUP {
        swap()?;
    }
    let libraries = "libcounter_v";
    let before_kb = molt.rss_kb()?;
    let mapped_libraries_before = molt.mapped_files(libraries)?;
    let threads_before = molt.threads()?;
    let mut samples = vec![(0, before_kb, threads_before)];
    let mut half_kb = before_kb;
    for i in 1..=swaps {
        swap()?;
        if i % (swaps / SAMPLES).max(1) == 0 {
            samples.push((i, molt.rss_kb()?, molt.threads()?));
        }
        if i == swaps / 2 {
            half_kb = molt.rss_kb()?;
        }
        tick();
    }
    let after_kb = molt.rss_kb()?;
    Ok(RssResult {
        swaps,
        warmup_swaps: WARMUP,
        before_kb,
        after_kb,
        growth_kb: after_kb as i64 - before_kb as i64,
        kb_per_swap: (after_kb as f64 - before_kb as f64) / swaps.max(1) as f64,
        second_half_growth_kb: after_kb as i64 - half_kb as i64,
        second_half_kb_per_swap: (after_kb as f64 - half_kb as f64) / (swaps - swaps / 2).max(1) as f64,
        threads_before,
        threads_after: molt.threads()?,
        mapped_libraries_before,
        mapped_libraries_after: molt.mapped_files(libraries)?,
        samples,
    })
}
