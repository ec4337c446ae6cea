//! The alternative users have today, beside molt, under the same load: upgrading v1 → v2 of a
//! stateful service by restarting it with a state snapshot (what a Kubernetes rolling restart
//! of a one-replica StatefulSet with a snapshot does): SIGTERM the process (it drains and
//! writes its snapshot), point the volume at v2, start a new process on the same port that
//! restores the snapshot. Against it, molt's way: point the volume at v2 and let the running
//! process swap in place.
//!
//! Both run the same scenario: a release `molt run` on a fixed port, the load generator
//! incrementing the counter on keep-alive connections, the upgrade after a steady period, a
//! steady period after it. Counted: failed requests, unavailable time (the longest interval
//! without a single successful response), lost writes; and a latency timeline around the
//! upgrade for the figure.

use crate::artifacts::{Built, V2};
use crate::load::{Outcome, Running, Spec};
use crate::molt::{free_port, push, Molt, Setup};
use crate::stats::median;
use anyhow::{ensure, Context};
use molt_supervisor::volume::Volume;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How the upgrade is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// molt: the running process swaps in place.
    Swap,
    /// The baseline: stop, snapshot, start a new process that restores it.
    Restart,
}

/// One upgrade under load.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed (a refused connect counts once per 10 ms back-off per connection).
    pub failed_requests: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// The longest interval without a successful response from the start of the upgrade on,
    /// ms.
    pub unavailable_ms: f64,
    /// When that interval began, ms from the start of the upgrade.
    pub unavailable_from_ms: f64,
    /// The same over the steady load before the upgrade alone, ms: the machine's own noise.
    pub steady_gap_ms: f64,
    /// From the start of the upgrade to v2 serving (as the driver saw it), ms.
    pub upgrade_ms: f64,
    /// Acknowledged increments missing from the final count.
    pub lost_writes: u64,
    /// Increments counted but never acknowledged.
    pub unacknowledged_writes: u64,
}

/// Several runs of one way of upgrading.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The runs.
    pub runs: Vec<Run>,
    /// Median over the runs.
    pub failed_requests: f64,
    /// Median over the runs, ms.
    pub unavailable_ms: f64,
    /// Median over the runs of the longest gap before the upgrade, ms.
    pub steady_gap_ms: f64,
    /// Sum over the runs.
    pub lost_writes: u64,
}

/// One bin of a latency timeline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bin {
    /// Start of the bin, ms from the start of the upgrade.
    pub t_ms: f64,
    /// Requests acknowledged in the bin.
    pub ok: u64,
    /// Requests failed in the bin.
    pub failed: u64,
    /// Highest latency of the requests sent in the bin, ms (0 when none succeeded).
    pub max_ms: f64,
    /// Median latency of the successful requests sent in the bin, ms.
    pub p50_ms: f64,
}

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RestartResult {
    /// The baseline: restart with a snapshot.
    pub restart: Summary,
    /// molt: swap in place.
    pub molt_swap: Summary,
    /// Latency around the upgrade, first run, 10 ms bins.
    pub restart_timeline: Vec<Bin>,
    /// The same for molt.
    pub molt_timeline: Vec<Bin>,
    /// Keep-alive connections.
    pub connections: usize,
    /// Steady load before and after the upgrade, s.
    pub steady_s: f64,
}

/// Timeline bin width, ms.
const BIN_MS: f64 = 10.0;

/// Runs `runs` upgrades each way, alternating, calling `tick` after each.
pub fn run(
    built: &Built,
    work: &Path,
    runs: usize,
    connections: usize,
    steady: Duration,
    mut tick: impl FnMut(),
) -> anyhow::Result<RestartResult> {
    let (mut restarts, mut swaps) = (Vec::new(), Vec::new());
    let (mut restart_timeline, mut molt_timeline) = (Vec::new(), Vec::new());
    for i in 0..runs {
        for upgrade in [Upgrade::Restart, Upgrade::Swap] {
            let dir = work.join(format!("{upgrade:?}-{i}").to_lowercase());
            let (run, timeline) = one(built, &dir, upgrade, connections, steady)?;
            if i == 0 {
                match upgrade {
                    Upgrade::Restart => restart_timeline = timeline,
                    Upgrade::Swap => molt_timeline = timeline,
                }
            }
            match upgrade {
                Upgrade::Restart => restarts.push(run),
                Upgrade::Swap => swaps.push(run),
            }
            tick();
        }
    }
    Ok(RestartResult {
        restart: summarize(restarts),
        molt_swap: summarize(swaps),
        restart_timeline,
        molt_timeline,
        connections,
        steady_s: steady.as_secs_f64(),
    })
}

fn summarize(runs: Vec<Run>) -> Summary {
    let failed: Vec<f64> = runs.iter().map(|r| r.failed_requests as f64).collect();
    let unavailable: Vec<f64> = runs.iter().map(|r| r.unavailable_ms).collect();
    let steady: Vec<f64> = runs.iter().map(|r| r.steady_gap_ms).collect();
    Summary {
        failed_requests: median(&failed),
        unavailable_ms: median(&unavailable),
        steady_gap_ms: median(&steady),
        lost_writes: runs.iter().map(|r| r.lost_writes).sum(),
        runs,
    }
}

/// One upgrade v1 → v2 under load.
fn one(
    built: &Built,
    work: &Path,
    upgrade: Upgrade,
    connections: usize,
    steady: Duration,
) -> anyhow::Result<(Run, Vec<Bin>)> {
    let volume = work.join("volume");
    push(&built.molt, &built.counter_v1, &volume, true)?;
    push(&built.molt, &built.counter_v2, &volume, false)?;
    let setup = Setup {
        listen: free_port()?,
        ..Setup::new(&built.molt, &volume, "counter", &work.join("molt"))
    };
    // `None` only between the old process's exit and the new one's start.
    let mut molt = Some(Molt::start(&setup)?);
    let releases = Volume::new(&volume);

    let load = Running::start(Spec::incr(setup.listen, connections).recording())?;
    let upgraded = (|| {
        load.wait_for(100, Duration::from_secs(30))?;
        std::thread::sleep(steady);
        let at = load.started().elapsed();
        match upgrade {
            Upgrade::Swap => {
                releases.activate("counter", V2)?;
                let serving = molt.as_ref().context("molt run is not running")?;
                serving.wait_status("v2 serving", |s| s.version.as_deref() == Some(V2))?;
            }
            Upgrade::Restart => {
                let old = molt.take().context("molt run is not running")?;
                let exit = old.terminate()?;
                ensure!(exit.success(), "molt run exited with {exit}");
                releases.activate("counter", V2)?;
                molt = Some(Molt::start(&setup)?);
            }
        }
        let upgrade_ms = (load.started().elapsed() - at).as_secs_f64() * 1e3;
        load.wait_for(100, Duration::from_secs(30))?;
        std::thread::sleep(steady);
        anyhow::Ok((at, upgrade_ms))
    })();
    let outcome = load.stop()?;
    let (at, upgrade_ms) = upgraded?;
    let molt = molt.context("molt run is not running")?;
    let count = molt.count().context("the final count")?;
    // The upgrade's unavailability: from its start on. Before it: the machine's own noise.
    let at_us = at.as_micros() as u64;
    let gap = outcome.gap_within(at_us, u64::MAX);
    let run = Run {
        requests: outcome.acknowledged + outcome.failed,
        failed_requests: outcome.failed,
        errors: outcome.errors.clone(),
        unavailable_ms: (gap.1 - gap.0) as f64 / 1e3,
        unavailable_from_ms: gap.0 as f64 / 1e3 - at.as_secs_f64() * 1e3,
        steady_gap_ms: outcome.longest_gap_within_us(0, at_us) as f64 / 1e3,
        upgrade_ms,
        lost_writes: outcome.acknowledged.saturating_sub(count),
        unacknowledged_writes: count.saturating_sub(outcome.acknowledged),
    };
    let exit = molt.terminate()?;
    ensure!(exit.success(), "molt run exited with {exit}");
    Ok((run, timeline(&outcome, at.as_secs_f64() * 1e3)))
}

/// Bins the samples from 500 ms before the upgrade to the end.
fn timeline(outcome: &Outcome, upgrade_ms: f64) -> Vec<Bin> {
    let mut bins: BTreeMap<i64, (u64, u64, Vec<f64>)> = BTreeMap::new();
    for s in &outcome.samples {
        let t = s.at_us as f64 / 1e3 - upgrade_ms;
        if t < -500.0 {
            continue;
        }
        let bin = bins.entry((t / BIN_MS).floor() as i64).or_default();
        if s.ok {
            bin.0 += 1;
            bin.2.push(f64::from(s.latency_us) / 1e3);
        } else {
            bin.1 += 1;
        }
    }
    bins.into_iter()
        .map(|(index, (ok, failed, latencies))| Bin {
            t_ms: index as f64 * BIN_MS,
            ok,
            failed,
            max_ms: latencies.iter().copied().fold(0.0, f64::max),
            p50_ms: median(&latencies),
        })
        .collect()
}
