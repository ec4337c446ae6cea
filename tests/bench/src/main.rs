//! `molt-bench`: measures what the issue's goals are about, in one run, and writes the figures
//! as JSON (and a figure as SVG).
//!
//! ```text
//! cargo run --release -p molt-bench -- [--quick] --json FILE [--svg FILE]
//! ```
//!
//! It builds the sample plugins and the `molt` binary with cargo's release profile (the tests'
//! artifacts helper), then: the swap pause per state size ([`pause`]), failed requests and lost
//! writes over many swaps under load ([`downtime`]), HTTP through the ABI against a statically
//! linked app ([`boundary`]), one call's overhead ([`overhead`]), push to serving ([`push`]),
//! a restart-with-snapshot baseline ([`restart`]) and memory over many swaps ([`rss`]).
//! Then the serving figures ([`serving`]): molt against a plain axum server ([`peer`]), an idle
//! molt's CPU ([`idle`]) and writes under snapshots of bytes state ([`stall`]).
//! [`report`] judges the goals and prints the table; [`plot`] draws the figure.

mod affinity;
mod artifacts;
mod boundary;
mod downtime;
mod idle;
mod load;
mod machine;
mod memory;
mod molt;
mod overhead;
mod pause;
mod peer;
mod plan;
mod plot;
mod procstat;
mod progress;
mod push;
mod report;
mod restart;
mod rss;
mod serving;
mod stages;
mod stall;
mod stats;
mod tables_change;
mod tables_only;
mod tables_ratio;
mod tables_snapshot;

use anyhow::Context;
use clap::Parser;
use molt_tests::dir::TestDir;
use plan::Plan;
use progress::Progress;
use report::{Durations, Report};
use std::path::PathBuf;
use std::time::Instant;

/// Benchmarks molt: swap pause, migration throughput, zero downtime under load, ABI overhead,
/// push to serving, a restart baseline, memory over many swaps.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// A shorter run: 10 MB instead of 100 MB of state, fewer swaps and rounds (a few minutes).
    #[arg(long)]
    quick: bool,
    /// Write the figures here as JSON.
    #[arg(long, value_name = "FILE", required_unless_present = "peer_server")]
    json: Option<PathBuf>,
    /// Measure only the serving figures (molt against axum, idle CPU, snapshots under load)
    /// and write only those.
    #[arg(long)]
    serving_only: bool,
    /// Internal: run the plain axum server the serving comparison measures, writing its
    /// address to FILE.
    #[arg(long, value_name = "FILE", hide = true)]
    peer_server: Option<PathBuf>,
    /// Measure only the swap pause of bytes state (kv v1 and v2, every size of the plan) and
    /// write only those figures, with their goals: for before/after comparisons.
    #[arg(long)]
    pause_only: bool,
    /// With `--pause-only`: only the sizes whose label contains this text.
    #[arg(long, value_name = "TEXT", requires = "pause_only")]
    sizes: Option<String>,
    /// Draw the figure here as SVG.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measure only the stages about host-owned tables (`tables`: all of them), at the full
    /// run's sizes unless `--quick`, and write only those figures.
    #[arg(long, value_enum, conflicts_with = "serving_only")]
    only: Option<tables_only::Only>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(addr_file) = &args.peer_server {
        return peer::serve(addr_file);
    }
    let json_path = args.json.clone().context("--json is required")?;
    let started = Instant::now();
    let plan = Plan::new(args.quick, args.connections);
    let machine = machine::describe(&molt_tests::artifacts::workspace_root());
    let progress = Progress::new(match (args.serving_only, args.pause_only, args.only) {
        (true, _, _) => 4,
        (_, true, _) => 2,
        (_, _, Some(tables_only::Only::Tables)) => 5,
        (_, _, Some(_)) => 2,
        _ => 15,
    });
    if machine.loadavg_at_start > machine.nproc as f64 / 2.0 {
        progress.note(&format!(
            "note: load average {:.2} on {} cores: other work competes with the figures",
            machine.loadavg_at_start, machine.nproc
        ));
    }
    let mut durations = Durations::default();

    let stage = progress.stage("building the release artifacts", 1);
    let built = artifacts::build();
    durations.artifacts_build = built.took.as_secs_f64();
    stage.finish();
    progress.note(&format!(
        "release artifacts ready in {:.1} s; {} on {} cores",
        durations.artifacts_build, machine.cpu, machine.nproc
    ));
    let work = TestDir::new("bench");
    let mut timed = |name: &str, since: Instant| {
        durations
            .stages
            .push((name.to_owned(), since.elapsed().as_secs_f64()));
    };

    if args.serving_only {
        let serving = serving::run(&built, &work.mkdir("serving"), &plan, machine::cores(), &progress)?;
        progress.finish();
        let mut figures = serde_json::to_value(&serving).context("serialising the figures")?;
        figures["snapshot_stall_ms"] = serde_json::json!({ "bytes": serving.snapshot_stall.max_ms });
        let json = serde_json::to_vec_pretty(&figures).context("serialising the figures")?;
        std::fs::write(&json_path, json).with_context(|| format!("writing {}", json_path.display()))?;
        let mut table = String::new();
        let _ = serving.write_rows(&mut table);
        for g in serving.goals() {
            table.push_str(&format!(
                "| {} | {} | {} |\n",
                g.goal,
                g.figure,
                if g.met { "met" } else { "**missed**" }
            ));
        }
        println!("{table}");
        return Ok(());
    }

    if args.pause_only {
        let mut plan = plan;
        if let Some(only) = &args.sizes {
            plan.sizes.retain(|s| s.label.contains(only.as_str()));
        }
        let pauses = stages::bytes_pauses(&built, &work, &plan.sizes, &progress)?;
        progress.finish();
        let goals = report::bytes_pause_goals(&pauses);
        let figures = serde_json::json!({ "machine": machine, "swap_pause_us": pauses, "goals": goals });
        let json = serde_json::to_vec_pretty(&figures).context("serialising the figures")?;
        std::fs::write(&json_path, json).with_context(|| format!("writing {}", json_path.display()))?;
        for p in &pauses {
            println!(
                "{:<24} pause p50 {:>9.0} p99 {:>9.0} µs · export p50 {:>9.0} · import p50 {:>9.0} · {:.2} GB/s · peak {:.2}x · RSS {:.2}",
                p.label,
                p.pause_us.p50,
                p.pause_us.p99,
                p.export_us.p50,
                p.import_us.p50,
                p.throughput_bytes_per_s / 1e9,
                p.swap_peak_memory_factor,
                p.rss_return_ratio
            );
        }
        for g in goals {
            println!(
                "{} | {} | {}",
                g.goal,
                g.figure,
                if g.met { "met" } else { "MISSED" }
            );
        }
        return Ok(());
    }

    if let Some(only) = args.only {
        let figures = tables_only::run(&built, &work, &plan, &progress, only)?;
        progress.finish();
        let mut json = serde_json::to_value(&figures).context("serialising the figures")?;
        json["machine"] = serde_json::to_value(&machine).context("serialising the figures")?;
        json["plan"] = serde_json::to_value(&plan).context("serialising the figures")?;
        json["loadavg_at_end"] = serde_json::json!(machine::loadavg());
        let json = serde_json::to_vec_pretty(&json).context("serialising the figures")?;
        std::fs::write(&json_path, json).with_context(|| format!("writing {}", json_path.display()))?;
        println!("{}", figures.table());
        return Ok(());
    }

    let t = Instant::now();
    let mut pauses = stages::bytes_pauses(&built, &work, &plan.sizes, &progress)?;
    timed("swap pause", t);

    let t = Instant::now();
    pauses.extend(stages::table_pauses(&built, &work, &plan, &progress)?);
    timed("swap pause, tables", t);

    let t = Instant::now();
    let change = stages::schema_change(&built, &work, &plan, &progress)?;
    timed("record schema change", t);

    let t = Instant::now();
    let ratio = stages::ratio(&built, &work, &plan, &progress)?;
    timed("tables vs in-plugin map", t);

    let t = Instant::now();
    let stall = stages::table_snapshot(&built, &work, &plan, &progress)?;
    timed("snapshot stall", t);

    let t = Instant::now();
    let stage = progress.stage("swaps under load", plan.swaps_under_load);
    let under_load = downtime::run(
        &built,
        &work.mkdir("downtime"),
        plan.swaps_under_load,
        plan.connections,
        || stage.tick(),
    )?;
    stage.finish();
    timed("swaps under load", t);

    let t = Instant::now();
    let stage = progress.stage("ABI boundary over HTTP", 2 * plan.boundary_rounds as u64);
    let boundary_plan = boundary::Plan {
        rounds: plan.boundary_rounds,
        round: plan.boundary_round(),
        connections: plan.connections,
        pin: machine::cores() >= 2,
    };
    let boundary = boundary::run(&built.counter_v1, &work.mkdir("boundary"), boundary_plan, || {
        stage.tick()
    })?;
    stage.finish();
    timed("boundary", t);

    let t = Instant::now();
    let stage = progress.stage("call overhead", plan.overhead_rounds as u64);
    let overhead = overhead::run(
        &built.counter_v1,
        &work.mkdir("overhead"),
        plan.overhead_rounds,
        plan.overhead_calls,
        || stage.tick(),
    )?;
    stage.finish();
    timed("call overhead", t);

    let t = Instant::now();
    let stage = progress.stage("push to serving", plan.pushes as u64);
    let pushed = push::run(&built, &work.mkdir("push"), plan.pushes, || stage.tick())?;
    stage.finish();
    timed("push to serving", t);

    let t = Instant::now();
    let stage = progress.stage("restart baseline", 2 * plan.restart_runs as u64);
    let restarts = restart::run(
        &built,
        &work.mkdir("restart"),
        plan.restart_runs,
        plan.connections,
        plan.restart_steady(),
        || stage.tick(),
    )?;
    stage.finish();
    timed("restart baseline", t);

    let t = Instant::now();
    let stage = progress.stage("memory over many swaps", plan.rss_swaps);
    let memory = rss::run(&built, &work.mkdir("rss"), plan.rss_swaps, || stage.tick())?;
    stage.finish();
    timed("memory", t);

    let t = Instant::now();
    let serving = serving::run(&built, &work.mkdir("serving"), &plan, machine::cores(), &progress)?;
    timed("serving", t);
    progress.finish();

    let mut goals = report::goals(&pauses, &under_load, &boundary, &pushed, &memory);
    goals.extend(report::table_goals(&pauses, &change, ratio.ratio, &stall));
    goals.extend(serving.goals());
    let mut stall = stall;
    stall.bytes = Some(serving.snapshot_stall.max_ms);
    durations.total = started.elapsed().as_secs_f64();
    durations.loadavg_at_end = machine::loadavg();
    let report = Report {
        molt_commit: machine.molt_commit.clone(),
        machine,
        plan,
        durations_s: durations,
        swap_pause_us: pauses,
        tables_schema_change: change,
        tables_vs_bytes_ratio: ratio.ratio,
        tables_vs_bytes: ratio,
        snapshot_stall_ms: stall,
        failed_requests: under_load.failed_requests,
        lost_writes: under_load.lost_writes,
        under_load,
        boundary_ratio: boundary.ratio,
        boundary,
        call_overhead_ns: overhead,
        push_to_serving_ms: pushed,
        restart_baseline: restarts,
        rss_growth_kb: memory.growth_kb,
        rss: memory,
        serving,
        goals,
    };
    let json = serde_json::to_vec_pretty(&report).context("serialising the report")?;
    std::fs::write(&json_path, json).with_context(|| format!("writing {}", json_path.display()))?;
    if let Some(svg) = &args.svg {
        plot::draw(&report, svg)?;
    }
    println!("{}", report.table());
    Ok(())
}
