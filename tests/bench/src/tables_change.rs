//! A record schema change of host-owned tables under a write load: an in-process engine on
//! kv v3 filled with 1 KiB records, writer threads `PUT`ting new keys through the engine at a
//! steady total rate (paced: unpaced in-process writers would add gigabytes of keys while a
//! validation pass runs), and the engine swapping kv v3 → v4 (a record gains a write counter) and
//! rolling back v4 → v3, round after round. Every swap's pause is kept; at the end every
//! acknowledged write must be in the table (lost = acknowledged keys missing). The memory is
//! the peak RSS from just before a swap until its background conversion is done.

use crate::pause::{filled, VALUE_BYTES};
use crate::plan::Plan;
use crate::stats::Summary;
use anyhow::Context;
use molt_abi::Request;
use molt_supervisor::loader::Expect;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the schema change runs measured.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeResult {
    /// The label of the state size.
    pub label: String,
    /// Record bytes in the table before the first swap.
    pub state_bytes: u64,
    /// Upgrades (v3 → v4) measured; as many rollbacks.
    pub rounds: usize,
    /// Writer threads.
    pub writers: usize,
    /// The total write rate the writers were paced at, writes/s.
    pub target_writes_per_s: f64,
    /// Acknowledged writes per second over the whole run.
    pub writes_per_s: f64,
    /// The upgrades' pauses, µs.
    pub upgrade_pause_us: Summary,
    /// The rollbacks' pauses, µs.
    pub rollback_pause_us: Summary,
    /// Staging (the validation pass while traffic flows), ms, over all swaps.
    pub stage_ms: Summary,
    /// Records validated in the pause (written during the last validation round), most.
    pub validated_in_pause_max: usize,
    /// Requests answered anything but `201 Created`.
    pub failed_requests: u64,
    /// Acknowledged writes missing at the end.
    pub lost_writes: u64,
    /// The most memory a swap (and its background conversion) added, as a multiple of the
    /// state: `(state + peak extra) / state`.
    pub memory_ratio_max: f64,
    /// That peak extra, KiB.
    pub extra_rss_kb_max: f64,
}

/// Runs the plan's upgrades and rollbacks at its size under its writers.
pub fn run(
    kv_v3: &Path,
    kv_v4: &Path,
    run_dir: &Path,
    plan: &Plan,
    mut tick: impl FnMut(),
) -> anyhow::Result<ChangeResult> {
    let (size, rounds) = (&plan.change_size, plan.change_rounds);
    let (writers, rate) = (plan.change_writers, plan.change_write_rate);
    let v3 = molt_tests::drive::load_file(kv_v3, run_dir, &Expect::any()).context("loading kv v3")?;
    let v4 = molt_tests::drive::load_file(kv_v4, run_dir, &Expect::any()).context("loading kv v4")?;
    let engine = filled(&v3, size)?;
    let preloaded = (size.bytes / VALUE_BYTES).max(1);
    let state_bytes = engine.tables().bytes();
    let stop = AtomicBool::new(false);
    let (acked, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    let (mut up, mut down, mut stage) = (Vec::new(), Vec::new(), Vec::new());
    let (mut in_pause, mut extra_kb) = (0usize, 0f64);
    let outcome = std::thread::scope(|s| -> anyhow::Result<()> {
        for writer in 0..writers {
            let (engine, stop, acked, failed) = (&engine, &stop, &acked, &failed);
            s.spawn(move || {
                let mut i = 0u64;
                let value = [b'w'; 100];
                let each = rate / writers as f64;
                let begun = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    // Write `i` is due at `i / each` seconds; ahead of that, wait.
                    let due = Duration::from_secs_f64(i as f64 / each);
                    if let Some(ahead) = due.checked_sub(begun.elapsed()) {
                        std::thread::sleep(ahead);
                    }
                    let path = format!("/kv/w{writer}-{i}");
                    let served = engine.handle(&Request::new("PUT", &path, "", &[], &value));
                    if served.response.status == 201 {
                        acked.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            });
        }
        let result = (|| {
            std::thread::sleep(Duration::from_millis(300));
            for round in 0..rounds {
                for (target, pauses) in [(Some(&v4), &mut up), (None, &mut down)] {
                    let before = crate::memory::reset_peak();
                    let report = match target {
                        Some(v4) => engine.swap(Arc::clone(v4)),
                        None => engine.rollback(),
                    }
                    .with_context(|| format!("round {round}"))?;
                    // The background conversion: done when nothing is pending.
                    while engine.tables().pending().is_some() {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    if let Some(before) = before {
                        extra_kb = extra_kb.max(crate::memory::peak_kb().saturating_sub(before) as f64);
                    }
                    pauses.push(report.steps.pause.as_secs_f64() * 1e6);
                    stage.push(report.steps.stage.as_secs_f64() * 1e3);
                    in_pause = in_pause.max(report.tables.map_or(0, |t| t.validated_in_pause));
                    tick();
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::SeqCst);
        result
    });
    outcome?;
    let elapsed = started.elapsed().as_secs_f64();
    let acked = acked.load(Ordering::SeqCst);
    let records = engine.tables().records();
    let expected = preloaded + acked;
    let state_kb = state_bytes as f64 / 1024.0;
    Ok(ChangeResult {
        label: size.label.to_owned(),
        state_bytes,
        rounds,
        writers,
        target_writes_per_s: rate,
        writes_per_s: acked as f64 / elapsed,
        upgrade_pause_us: Summary::of(&up),
        rollback_pause_us: Summary::of(&down),
        stage_ms: Summary::of(&stage),
        validated_in_pause_max: in_pause,
        failed_requests: failed.load(Ordering::SeqCst),
        lost_writes: expected.saturating_sub(records),
        memory_ratio_max: (state_kb + extra_kb) / state_kb.max(1.0),
        extra_rss_kb_max: extra_kb,
    })
}
