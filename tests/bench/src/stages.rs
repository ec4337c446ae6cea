//! One function per measuring stage, each with its progress bar: the full run, `--pause-only`
//! and `--only tables…` call the same ones.

use crate::artifacts::Built;
use crate::pause::{self, Size, SizeResult};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::{tables_change, tables_ratio, tables_snapshot};
use molt_tests::dir::TestDir;

/// The pause of bytes swaps (kv v1 ↔ v2) at each of `sizes`.
pub fn bytes_pauses(
    built: &Built,
    work: &TestDir,
    sizes: &[Size],
    progress: &Progress,
) -> anyhow::Result<Vec<SizeResult>> {
    let swaps: u64 = sizes.iter().map(|s| s.swaps as u64 + 2).sum();
    let stage = progress.stage("swap pause per state size", swaps);
    let pauses = pause::run(&built.kv_v1, &built.kv_v2, &work.mkdir("pause"), sizes, |label| {
        stage.tick_with(label)
    })?;
    stage.finish();
    Ok(pauses)
}

/// The pause of code-only swaps of kv v3, state in tables, at each of the plan's table sizes.
pub fn table_pauses(
    built: &Built,
    work: &TestDir,
    plan: &Plan,
    progress: &Progress,
) -> anyhow::Result<Vec<SizeResult>> {
    let swaps: u64 = plan.table_sizes.iter().map(|s| s.swaps as u64 + 2).sum();
    let stage = progress.stage("swap pause per size, state in tables", swaps);
    let pauses = pause::run_tables(
        &built.kv_v3,
        &work.mkdir("pause-tables"),
        &plan.table_sizes,
        |label| stage.tick_with(label),
    )?;
    stage.finish();
    Ok(pauses)
}

/// The record schema change kv v3 → v4 and back under writes.
pub fn schema_change(
    built: &Built,
    work: &TestDir,
    plan: &Plan,
    progress: &Progress,
) -> anyhow::Result<tables_change::ChangeResult> {
    let stage = progress.stage("record schema change under writes", 2 * plan.change_rounds as u64);
    let change = tables_change::run(&built.kv_v3, &built.kv_v4, &work.mkdir("change"), plan, || {
        stage.tick()
    })?;
    stage.finish();
    Ok(change)
}

/// kv GET/PUT through tables against the in-plugin map.
pub fn ratio(
    built: &Built,
    work: &TestDir,
    plan: &Plan,
    progress: &Progress,
) -> anyhow::Result<tables_ratio::RatioResult> {
    let stage = progress.stage("tables against the in-plugin map", plan.ratio_rounds as u64);
    let ratio = tables_ratio::run(
        &built.kv_v1,
        &built.kv_v3,
        &work.mkdir("ratio"),
        plan.ratio_rounds,
        plan.ratio_round_s,
        || stage.tick(),
    )?;
    stage.finish();
    Ok(ratio)
}

/// The longest request wait while a snapshot of the tables is written.
pub fn table_snapshot(
    built: &Built,
    work: &TestDir,
    plan: &Plan,
    progress: &Progress,
) -> anyhow::Result<tables_snapshot::StallResult> {
    let stage = progress.stage("snapshot of the tables under load", 3);
    let stall = tables_snapshot::run(&built.kv_v3, &work.mkdir("snapshot"), &plan.snapshot_size, || {
        stage.tick()
    })?;
    stage.finish();
    Ok(stall)
}
