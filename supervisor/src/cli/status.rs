//! `molt status`: what a supervisor runs.

use crate::control::ControlClient;
use clap::Args;

/// `molt status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The supervisor's control API.
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    control: String,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the status.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let status = ControlClient::new(&args.control, None).status()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let version = status.version.as_deref().unwrap_or("(none)");
    println!(
        "{} {version} (schema {:?}) pid {} up {}s",
        status.app, status.state_schema, status.pid, status.uptime_s
    );
    println!("  desired      {}", status.desired.as_deref().unwrap_or("(none)"));
    println!("  swaps        {}", status.swaps);
    if let Some(s) = &status.last_swap {
        let result = if s.ok {
            "ok".to_owned()
        } else {
            format!("refused: {}", s.error.as_deref().unwrap_or(""))
        };
        println!(
            "  last swap    {} → {}: {result}, pause {} µs, {} bytes",
            s.from.as_deref().unwrap_or("-"),
            s.to,
            s.pause_us,
            s.state_bytes
        );
    }
    if let Some(r) = &status.last_refusal {
        println!("  last refusal {} at {}: {}", r.release, r.step, r.error);
    }
    if let Some(p) = &status.probation {
        println!(
            "  probation    {} {}{}",
            p.version,
            p.state,
            p.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        );
    }
    println!("  generations  {:?}", status.generations);
    Ok(())
}
