//! The serving figures (issue 9) gathered: molt against a plain axum server ([`crate::peer`]),
//! an idle molt's CPU ([`crate::idle`]), snapshots under load ([`crate::stall`]); their goals
//! and table rows.

use crate::artifacts::Built;
use crate::idle::IdleResult;
use crate::peer::PeerResult;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::report::Goal;
use crate::stall::StallResult;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// The serving figures.
#[derive(Debug, Clone, Serialize)]
pub struct Serving {
    /// molt / axum requests per second.
    pub peer_ratio: f64,
    /// The comparison in detail.
    pub peer: PeerResult,
    /// An idle molt's CPU, % of a core.
    pub idle_cpu_percent: f64,
    /// The idle measurement in detail.
    pub idle: IdleResult,
    /// The bytes-state stall measurement in detail; its longest wait is the report's
    /// `snapshot_stall_ms.bytes`.
    pub snapshot_stall: StallResult,
}

/// Runs the three measurements.
pub fn run(
    built: &Built,
    work: &Path,
    plan: &Plan,
    cores: usize,
    progress: &Progress,
) -> anyhow::Result<Serving> {
    let peer_plan = crate::peer::Plan {
        rounds: plan.peer_rounds,
        round: Duration::from_secs_f64(plan.peer_round_s),
        connections: plan.connections,
        pin: cores >= 2,
    };
    let stage = progress.stage("molt against a plain axum server", 2 * plan.peer_rounds as u64);
    let peer = crate::peer::run(built, &work.join("peer"), peer_plan, || stage.tick())?;
    stage.finish();
    let stage = progress.stage("an idle molt's CPU", 1);
    let idle = crate::idle::run(built, &work.join("idle"), Duration::from_secs_f64(plan.idle_s))?;
    stage.finish();
    let stage = progress.stage("snapshots under load", 1);
    let stall = crate::stall::run(
        built,
        &work.join("stall"),
        plan.stall_state_mb,
        Duration::from_secs_f64(plan.stall_window_s),
        plan.connections,
    )?;
    stage.finish();
    Ok(Serving {
        peer_ratio: peer.peer_ratio,
        idle_cpu_percent: idle.idle_cpu_percent,
        peer,
        idle,
        snapshot_stall: stall,
    })
}

impl Serving {
    /// The serving goals, judged.
    pub fn goals(&self) -> Vec<Goal> {
        let goal = |goal: &str, figure: String, met: bool| Goal {
            goal: goal.to_owned(),
            figure,
            met,
        };
        vec![
            goal(
                "peer_ratio >= 0.9 (molt / plain axum)",
                format!("{:.3}", self.peer_ratio),
                self.peer_ratio >= 0.9,
            ),
            goal(
                "idle_cpu_percent < 1",
                format!("{:.2} %", self.idle_cpu_percent),
                self.idle_cpu_percent < 1.0,
            ),
            goal(
                "snapshot_stall_ms.bytes <= 10 (kv v1, 100 MB)",
                format!(
                    "{:.1} ms at {} MB",
                    self.snapshot_stall.max_ms,
                    self.snapshot_stall.state_bytes >> 20
                ),
                self.snapshot_stall.max_ms <= 10.0,
            ),
        ]
    }

    /// The table rows.
    pub fn write_rows(&self, out: &mut String) -> std::fmt::Result {
        let p = &self.peer;
        writeln!(
            out,
            "| molt / plain axum, counter over HTTP ({} rounds) | {:.0} / {:.0} req/s · ratio {:.3} (paired {:.3}) |",
            p.rounds, p.molt_median_rps, p.axum_median_rps, p.peer_ratio, p.paired_ratio
        )?;
        writeln!(
            out,
            "| per request, molt / axum | {:.2} / {:.2} context switches · {:.1} / {:.1} µs CPU |",
            p.context_switches_per_request.molt,
            p.context_switches_per_request.axum,
            p.cpu_us_per_request.molt,
            p.cpu_us_per_request.axum
        )?;
        let i = &self.idle;
        writeln!(
            out,
            "| idle molt after {} swaps and {} `GET /status` ({:.0} s) | {:.2} % CPU · {} context switches |",
            i.swaps_before, i.status_calls_before, i.window_s, i.idle_cpu_percent, i.context_switches
        )?;
        let s = &self.snapshot_stall;
        writeln!(
            out,
            "| writes under snapshots, kv v1 {} MB ({} snapshots in {:.0} s) | longest wait {:.1} ms · p99.9 {:.1} ms (no snapshots: {:.1} / {:.1} ms) · {} failed |",
            s.state_bytes >> 20,
            s.snapshots,
            s.window_s,
            s.max_ms,
            s.p999_ms,
            s.baseline_max_ms,
            s.baseline_p999_ms,
            s.failed
        )
    }
}
