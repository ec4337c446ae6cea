//! Zero downtime over many swaps: a release `molt run` serving counter increments to the load
//! generator while `POST /activate` (the control API) flips v1 ↔ v2, again and again. Between
//! two swaps the clients get some increments acknowledged, so every swap meets live traffic.
//! Counted: failed requests (any non-2xx or connection error) and lost writes (acknowledged
//! increments missing from the final count).

use crate::artifacts::{Built, V1, V2};
use crate::load::{Running, Spec};
use crate::molt::{push, Molt, Setup};
use crate::stats::Summary;
use anyhow::ensure;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What the clients saw across the swaps.
#[derive(Debug, Clone, Serialize)]
pub struct DowntimeResult {
    /// Swaps done (and reported by `/status`).
    pub swaps: u64,
    /// Requests sent.
    pub requests: u64,
    /// Acknowledged increments.
    pub acknowledged: u64,
    /// Requests that failed.
    pub failed_requests: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Acknowledged increments missing from `GET /count` at the end.
    pub lost_writes: u64,
    /// Increments counted but never acknowledged (a request that failed after it was applied).
    pub unacknowledged_writes: u64,
    /// Acknowledged increments by the version that served them.
    pub by_version: BTreeMap<String, u64>,
    /// Keep-alive connections.
    pub connections: usize,
    /// The pause of each swap as the supervisor measured it (under this load), µs.
    pub pause_us: Summary,
    /// Longest time without a successful response, ms.
    pub longest_gap_ms: f64,
    /// Seconds the load ran.
    pub seconds: f64,
}

/// Increments acknowledged between two swaps.
const BETWEEN_SWAPS: u64 = 50;

/// Runs `swaps` swaps under load, calling `tick` after each.
pub fn run(
    built: &Built,
    work: &Path,
    swaps: u64,
    connections: usize,
    mut tick: impl FnMut(),
) -> anyhow::Result<DowntimeResult> {
    let volume = work.join("volume");
    push(&built.molt, &built.counter_v1, &volume, true)?;
    push(&built.molt, &built.counter_v2, &volume, false)?;
    let molt = Molt::start(&Setup::new(&built.molt, &volume, "counter", &work.join("molt")))?;

    let load = Running::start(Spec::incr(molt.listen(), connections).recording())?;
    let timeout = Duration::from_secs(30);
    let mut pauses = Vec::new();
    let flipped = (|| {
        load.wait_for(BETWEEN_SWAPS, timeout)?;
        for swap in 0..swaps {
            let pause = molt.activate(if swap % 2 == 0 { V2 } else { V1 })?;
            pauses.extend(pause.map(|us| us as f64));
            load.wait_for(BETWEEN_SWAPS, timeout)?;
            tick();
        }
        anyhow::Ok(())
    })();
    let outcome = load.stop()?;
    flipped?;

    let count = molt.count()?;
    let status = molt.status()?;
    ensure!(
        status.swaps == swaps,
        "{swaps} swaps asked, /status says {}",
        status.swaps
    );
    Ok(DowntimeResult {
        swaps: status.swaps,
        requests: outcome.acknowledged + outcome.failed,
        acknowledged: outcome.acknowledged,
        failed_requests: outcome.failed,
        errors: outcome.errors.clone(),
        lost_writes: outcome.acknowledged.saturating_sub(count),
        unacknowledged_writes: count.saturating_sub(outcome.acknowledged),
        by_version: outcome.by_version.clone(),
        connections,
        pause_us: Summary::of(&pauses),
        longest_gap_ms: outcome.longest_gap_us() as f64 / 1e3,
        seconds: outcome.elapsed.as_secs_f64(),
    })
}
