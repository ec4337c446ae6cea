//! `molt handoff --from URL --to URL`: hand a departing supervisor's state to a live peer
//! (docs/DESIGN.md, "Handoff"), printing each step's time against its deadline and the whole
//! against the grace period. Exit 1 names the failed step; the state then stayed where it was.

use crate::control::ControlClient;
use crate::handoff::{Departing, HandoffFailure, HandoffOptions, HandoffReport, StepTiming};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// `molt handoff` arguments.
#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// The departing supervisor's control API (its state leaves; it then serves nothing).
    #[arg(long)]
    from: String,
    /// The receiving supervisor's control API (it merges the state while it serves).
    #[arg(long)]
    to: String,
    /// Bearer token for both control APIs.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The termination grace period the handoff must fit in: the time taken is printed against
    /// it, and a handoff the last snapshot's size makes impossible is refused up front.
    #[arg(long, value_parser = humantime::parse_duration)]
    grace: Option<Duration>,
    /// How long the departing supervisor stays unready (still serving) before it seals, so a
    /// Service stops routing to it first.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    unready_wait: Duration,
    /// How long in-flight requests get to finish once sealing starts.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// The deadline of every other step.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Throughput assumed for export (with its pending record), transfer and merge when
    /// checking --grace, in MB/s.
    #[arg(long, default_value_t = 200)]
    assume_mb_per_s: u64,
    /// Use this handoff id instead of a fresh one.
    #[arg(long, conflicts_with = "resolve")]
    id: Option<String>,
    /// Settle a handoff left uncertain (its output said so): ask the receiver, then commit
    /// or abort on the departing supervisor.
    #[arg(long, value_name = "ID")]
    resolve: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the handoff.
pub fn run(args: HandoffArgs) -> anyhow::Result<()> {
    let token = args.token_file.as_deref().map(super::read_token).transpose()?;
    let from = ControlClient::new(&args.from, token.clone());
    let to = ControlClient::new(&args.to, token);
    let opts = HandoffOptions {
        unready_wait: args.unready_wait,
        drain_timeout: args.drain_timeout,
        step_timeout: args.timeout,
        grace: args.grace,
        assumed_rate: args.assume_mb_per_s.max(1) * 1_000_000,
    };
    let pair = Departing { from: &from, to: &to };
    if let Some(id) = &args.resolve {
        let said = pair.resolve(id, &opts).map_err(|f| failed(&f))?;
        println!("{said}");
        return Ok(());
    }
    let id = args.id.clone().unwrap_or_else(crate::handoff::new_id);
    anyhow::ensure!(
        crate::handoff::valid_id(&id),
        "--id {id:?}: 1 to 100 characters of A-Z a-z 0-9 . _ -"
    );
    match pair.run(&id, &opts) {
        Ok(report) if args.json => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Ok(report) => {
            print_report(&report);
            Ok(())
        }
        Err(failure) => Err(failed(&failure)),
    }
}

/// Prints the steps that ran and turns the failure into the error `molt` exits 1 with.
fn failed(failure: &HandoffFailure) -> anyhow::Error {
    println!(
        "handoff {} from {} to {}: FAILED at {}",
        failure.id, failure.from, failure.to, failure.step
    );
    print_steps(&failure.steps);
    anyhow::anyhow!("{failure}")
}

fn print_report(r: &HandoffReport) {
    println!(
        "handoff {}: {} {} state ({} bytes, schema {}) from {} to {}",
        r.id, r.begun.app, r.begun.version, r.begun.state_bytes, r.begun.schema, r.from, r.to
    );
    print_steps(&r.steps);
    match r.grace {
        Some(grace) => println!(
            "took {} of the {} grace period ({:.1} %)",
            human(r.total),
            human(grace),
            100.0 * r.total.as_secs_f64() / grace.as_secs_f64().max(f64::EPSILON)
        ),
        None => println!("took {}", human(r.total)),
    }
}

fn print_steps(steps: &[StepTiming]) {
    for s in steps {
        println!(
            "  {:<9} {:>10}  (deadline {:>6})  {}",
            s.step.to_string(),
            human(s.took),
            human(s.deadline),
            s.note
        );
    }
}

/// `1.23 s`, `4.5 ms`, `120 µs`.
fn human(d: Duration) -> String {
    let us = d.as_micros();
    if us >= 1_000_000 {
        format!("{:.2} s", d.as_secs_f64())
    } else if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}
