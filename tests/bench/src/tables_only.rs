//! `--only tables…`: the stages about host-owned tables alone, at the sizes of the plan (the
//! full run's 1 GB unless `--quick`), so a quiet measurement of them takes minutes rather than
//! the whole run's hour. The JSON holds the same fields the full run writes for them.

use crate::artifacts::Built;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::report::{self, Goal};
use crate::{pause, stages, tables_change, tables_ratio, tables_snapshot};
use molt_tests::dir::TestDir;
use serde::Serialize;

/// Which tables stages to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// All four below.
    Tables,
    /// The pause of code-only swaps per state size.
    TablesPause,
    /// The record schema change under writes.
    TablesChange,
    /// Steady-state throughput against the in-plugin map.
    TablesRatio,
    /// The longest request wait while a snapshot of the tables is written.
    TablesSnapshot,
}

impl Only {
    fn runs(self, stage: Only) -> bool {
        self == Only::Tables || self == stage
    }
}

/// The figures of the stages that ran.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    /// As in the full run's report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swap_pause_us: Vec<pause::SizeResult>,
    /// As in the full run's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables_schema_change: Option<tables_change::ChangeResult>,
    /// As in the full run's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables_vs_bytes_ratio: Option<f64>,
    /// As in the full run's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables_vs_bytes: Option<tables_ratio::RatioResult>,
    /// As in the full run's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_stall_ms: Option<tables_snapshot::StallResult>,
    /// The goals these stages measure, judged.
    pub goals: Vec<Goal>,
}

/// Runs the stages `only` selects.
pub fn run(
    built: &Built,
    work: &TestDir,
    plan: &Plan,
    progress: &Progress,
    only: Only,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    if only.runs(Only::TablesPause) {
        figures.swap_pause_us = stages::table_pauses(built, work, plan, progress)?;
        figures.goals.extend(report::pause_goals(&figures.swap_pause_us));
    }
    if only.runs(Only::TablesChange) {
        let change = stages::schema_change(built, work, plan, progress)?;
        figures.goals.extend(report::change_goals(&change));
        figures.tables_schema_change = Some(change);
    }
    if only.runs(Only::TablesRatio) {
        let ratio = stages::ratio(built, work, plan, progress)?;
        figures.goals.push(report::ratio_goal(ratio.ratio));
        figures.tables_vs_bytes_ratio = Some(ratio.ratio);
        figures.tables_vs_bytes = Some(ratio);
    }
    if only.runs(Only::TablesSnapshot) {
        let stall = stages::table_snapshot(built, work, plan, progress)?;
        figures.goals.push(report::stall_goal(&stall));
        figures.snapshot_stall_ms = Some(stall);
    }
    Ok(figures)
}

impl Figures {
    /// The figures as the table printed at the end of the run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for p in &self.swap_pause_us {
            out.push_str(&format!(
                "| pause, {} in tables ({} swaps) | p50 {:.1} µs · p99 {:.1} µs · max {:.1} µs (export p50 {:.1}, import p50 {:.1}) |\n",
                p.label, p.swaps, p.pause_us.p50, p.pause_us.p99, p.pause_us.max, p.export_us.p50, p.import_us.p50
            ));
        }
        if let Some(r) = &self.tables_vs_bytes {
            out.push_str(&format!(
                "| tables / in-plugin map ({} rounds) | {:.0} / {:.0} calls/s · ratio {:.3} |\n",
                r.rounds, r.tables_calls_per_s.p50, r.bytes_calls_per_s.p50, r.ratio
            ));
        }
        if let Some(s) = &self.snapshot_stall_ms {
            out.push_str(&format!(
                "| snapshot of {} of tables | written in {:.0} ms · longest call {:.2} ms at {:.0} ms, {} calls over 10 ms (baseline {:.2} ms) |\n",
                s.label, s.snapshot_ms, s.tables, s.longest_at_ms, s.calls_over_10ms, s.baseline_ms
            ));
        }
        for g in &self.goals {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                g.goal,
                g.figure,
                if g.met { "met" } else { "**missed**" }
            ));
        }
        out
    }
}
