//! `molt status`: what a supervisor runs, in plain words (`--json` for the document itself).

use crate::control::{ControlClient, Status};
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
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

/// The status in plain words, one fact a line.
pub fn render(s: &Status) -> String {
    let head = match (&s.version, s.state_schema) {
        (Some(v), Some(schema)) => format!("{} {v} serving (state schema {schema})", s.app),
        (Some(v), None) => format!("{} {v} serving", s.app),
        (None, _) => format!("{}: nothing serving", s.app),
    };
    let mut out = format!(
        "{head}, pid {}, instance {}, up {}\n",
        s.pid,
        s.instance,
        humantime::format_duration(std::time::Duration::from_secs(s.uptime_s))
    );
    let mut line = |label: &str, text: String| out.push_str(&format!("  {label:<13}{text}\n"));
    line(
        "current",
        match (&s.desired, &s.version) {
            (Some(d), Some(v)) if d == v => format!("{d} (the volume names what runs)"),
            (Some(d), _) => format!("{d} (the volume names another version than what runs)"),
            (None, _) => "none on the volume".to_owned(),
        },
    );
    line("swaps", s.swaps.to_string());
    if let Some(w) = &s.last_swap {
        let from = w.from.as_deref().unwrap_or("nothing");
        let text = if w.ok {
            format!(
                "{from} → {}, paused {} µs, {} bytes of state{}",
                w.to,
                w.pause_us,
                w.state_bytes,
                w.schema.map(|x| format!(" in schema {x}")).unwrap_or_default()
            )
        } else {
            format!("{from} → {} refused after a pause of {} µs", w.to, w.pause_us)
        };
        line("last swap", text);
    }
    if let Some(r) = &s.last_refusal {
        line(
            "last refusal",
            format!("{} at {} ({}): {}", r.release, r.step, r.at, r.error),
        );
    }
    if let Some(p) = &s.probation {
        let state = match p.state.as_str() {
            "running" => "on probation".to_owned(),
            "passed" => "passed probation".to_owned(),
            "failed" => "failed probation, rolled back".to_owned(),
            "failed_stuck" => "failed probation, could not roll back".to_owned(),
            other => other.to_owned(),
        };
        let why = p.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        line("probation", format!("{} {state}{why}", p.version));
    }
    line(
        "rollback to",
        match s.generations.first() {
            Some(v) if s.generations.len() > 1 => {
                format!("{v} (then {})", s.generations[1..].join(", "))
            }
            Some(v) => v.clone(),
            None => "nothing (no earlier version served here)".to_owned(),
        },
    );
    if let Some(snap) = &s.last_snapshot {
        line("snapshot", format!("{} bytes at {}", snap.bytes, snap.at));
    }
    if let Some(f) = &s.snapshot_failure {
        line(
            "snapshots",
            format!(
                "FAILING since {} ({} in a row): {}; changes since the last snapshot are only in memory",
                f.since, f.consecutive, f.error
            ),
        );
    }
    if !s.libraries_left_mapped.is_empty() {
        line("left mapped", s.libraries_left_mapped.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::control::status::{Refusal, Status, SwapRecord};

    #[test]
    fn status_is_in_plain_words() {
        let mut status = Status {
            app: "counter".into(),
            version: None,
            state_schema: None,
            pid: 7,
            instance: "pod-0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            uptime_s: 65,
            ready: false,
            swaps: 0,
            last_swap: None,
            desired: None,
            last_refusal: None,
            probation: None,
            generations: vec![],
            last_snapshot: None,
            libraries_left_mapped: vec![],
            snapshot_failure: None,
        };
        let text = render(&status);
        assert!(
            text.starts_with("counter: nothing serving, pid 7, instance pod-0, up 1m 5s"),
            "{text}"
        );
        status.version = Some("2.0.0".into());
        status.state_schema = Some(2);
        status.desired = Some("2.0.0".into());
        status.generations = vec!["1.0.0".into()];
        status.last_swap = Some(SwapRecord {
            from: Some("2.0.0".into()),
            to: "3.0.0".into(),
            pause_us: 355_774,
            waited_for_snapshot_us: 0,
            ok: false,
            error: Some("refused".into()),
            state_bytes: 0,
            schema: None,
            at: "2026-01-01T00:00:01Z".into(),
        });
        status.last_refusal = Some(Refusal {
            release: "counter 3.0.0".into(),
            step: "import".into(),
            error: "import failed; counter 2.0.0 still serving".into(),
            still_running: Some("counter 2.0.0".into()),
            at: "2026-01-01T00:00:01Z".into(),
        });
        let text = render(&status);
        for part in [
            "counter 2.0.0 serving (state schema 2)",
            "2.0.0 → 3.0.0 refused after a pause of 355774 µs",
            "last refusal counter 3.0.0 at import",
            "rollback to  1.0.0",
        ] {
            assert!(text.contains(part), "no {part:?} in:\n{text}");
        }
        assert!(
            !text.contains("Some(") && !text.contains("None"),
            "debug text in:\n{text}"
        );
    }
}
