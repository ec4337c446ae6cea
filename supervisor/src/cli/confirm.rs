//! A confirmed change of `current` on a volume (`molt push/activate/rollback --volume`): under
//! the app's writer lock, run the stage checks, move the pointers, then wait until every live
//! supervisor of the app (see `crate::volume::SupervisorReport`) runs the new version or
//! reports refusing it. Exit 0 only when all run it; on a refusal (or no answer in time) the
//! pointers go back to what they held, and the error names each supervisor, the failed step
//! and the cause. A supervisor live at the start that is lost before it answers (its process
//! died or stopped, the instance restarted, its report went away or became unreadable) fails
//! the change the same way: only an answer from each counts. With no live supervisor at the
//! start: "published; no supervisor runs <app>".

use super::preflight;
use crate::volume::{now_ms, ReportRead, SupervisorReport, Volume};
use anyhow::bail;
use clap::Args;
use std::time::{Duration, Instant};

/// How long to wait for supervisors (`--wait`, `--no-wait`).
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Wait at most this long for every live supervisor to run the new version or refuse it.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    wait: Duration,
    /// Move `current` and return without waiting for the supervisors.
    #[arg(long, conflicts_with = "wait")]
    no_wait: bool,
}

impl WaitArgs {
    /// The wait, `None` for `--no-wait`.
    pub fn wait(&self) -> Option<Duration> {
        (!self.no_wait).then_some(self.wait)
    }
}

/// How often the supervisors' reports are read.
const POLL: Duration = Duration::from_millis(50);

/// What moves the pointers.
pub enum Move {
    /// `current` to the target, `previous` to the old current (unless it is bad).
    Activate,
    /// `current` to the target, `previous` to the next step back (`None`: removed).
    Rollback {
        /// The next step back.
        next: Option<String>,
    },
}

/// Changes `current` of `app` to `target` (see the module docs); returns the lines to print.
pub fn change(
    volume: &Volume,
    app: &str,
    target: &str,
    how: Move,
    wait: Option<Duration>,
) -> anyhow::Result<Vec<String>> {
    let lock_wait = wait.unwrap_or(Duration::ZERO).max(Duration::from_secs(30));
    let _lock = volume.lock_app(app, lock_wait)?;
    let before_current = volume.current(app);
    let before_previous = volume.previous(app).ok().flatten();
    let current = before_current.as_ref().ok().cloned().flatten();
    // Already current: done when every watching supervisor runs it. Else `current` is written
    // again (same version) so that those which refused it, or skipped it while it was marked
    // bad, try once more; the answer is then confirmed like any activation.
    let again = current.as_deref() == Some(target);
    if again
        && volume
            .live_supervisors(app)?
            .iter()
            .filter(|s| s.watching)
            .all(|s| s.running.as_deref() == Some(target))
    {
        return Ok(vec![format!("{app} {target} is already current")]);
    }
    if let Err(failed) = preflight::check(volume, app, target, current.as_deref()) {
        let still = current.as_deref().unwrap_or("nothing");
        let why = format!("refused before activation at {}: {}", failed.step, failed.why);
        if failed.step != "release" {
            let _ = volume.mark_bad(app, target, "push", &why);
        }
        bail!("{app} {target} {why}; current stays {still}");
    }
    let started = now_ms();
    let moved = match &how {
        Move::Activate if again => volume.reannounce(app, target),
        Move::Activate => volume.activate(app, target).map(drop),
        Move::Rollback { next } => volume.restore_pointers(app, Some(target), next.as_deref()),
    };
    if let Err(e) = moved {
        // A full or read-only volume: say what `current` names now (read again, not assumed).
        let now = match volume.current(app) {
            Ok(v) => format!("current names {}", v.as_deref().unwrap_or("nothing")),
            Err(e) => format!("current is unreadable: {e}"),
        };
        bail!("{app} {target}: cannot move the pointers: {e}; {now}");
    }
    let mut lines = vec![if again {
        format!("{app}: current already names {target}; asking the supervisors that do not run it to try it again")
    } else {
        format!(
            "{app}: current is now {target} (was {})",
            current.as_deref().unwrap_or("none")
        )
    }];
    let Some(wait) = wait else {
        lines.push("not waiting for the supervisors (--no-wait)".to_owned());
        return Ok(lines);
    };
    let put_back = || match &before_current {
        Ok(_) if again => Ok(format!("current still names {target}, as before")),
        Ok(current) => volume
            .restore_pointers(app, current.as_deref(), before_previous.as_deref())
            .map(|()| format!("current is back on {}", current.as_deref().unwrap_or("nothing"))),
        Err(_) => Ok("current was unreadable before: left on the new version".to_owned()),
    };
    let all = volume.live_supervisors(app)?;
    let (watching, fixed): (Vec<_>, Vec<_>) = all.into_iter().partition(|s| s.watching);
    for s in &fixed {
        lines.push(format!(
            "{} does not watch the volume (--no-watch): it keeps running {}",
            who(s),
            s.running.as_deref().unwrap_or("nothing")
        ));
    }
    if watching.is_empty() {
        lines.push(format!("published; no supervisor runs {app}"));
        return Ok(lines);
    }
    let deadline = Instant::now() + wait;
    loop {
        let now = now_ms();
        let reports = volume.supervisor_reports(app)?;
        // Every supervisor live at the start answers: runs it, refused it, or was lost (it
        // died, stopped, restarted, or its report went away or became unreadable).
        let verdicts: Vec<(&SupervisorReport, Answer)> = watching
            .iter()
            .map(|w| {
                let seen = reports.iter().find(|(i, _)| *i == w.instance).map(|(_, r)| r);
                (w, judge(w, seen, target, started, now))
            })
            .collect();
        let count = |f: fn(&Answer) -> bool| verdicts.iter().filter(|(_, a)| f(a)).count();
        let pending = count(|a| matches!(a, Answer::Pending(_)));
        let refused = count(|a| matches!(a, Answer::Refused(..)));
        let lost = count(|a| matches!(a, Answer::Lost(..)));
        if pending == 0 || Instant::now() >= deadline {
            if refused == 0 && pending == 0 && lost == 0 && !verdicts.is_empty() {
                let names: Vec<String> = verdicts.iter().map(|(w, _)| who(w)).collect();
                lines.push(format!(
                    "{app} {target} runs on {} supervisor{}: {}",
                    names.len(),
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                ));
                return Ok(lines);
            }
            let mut why = Vec::new();
            for (w, a) in &verdicts {
                why.push(match a {
                    Answer::Runs => format!("  {}: ran {target}, follows current back", who(w)),
                    Answer::Refused(step, error) => format!("  {}: refused at {step}: {error}", who(w)),
                    Answer::Lost(how) => format!(
                        "  {}: lost: {how} before it ran {target} or refused it (it ran {})",
                        who(w),
                        w.running.as_deref().unwrap_or("nothing")
                    ),
                    Answer::Pending(running) => format!(
                        "  {}: no answer within {}: still runs {}",
                        who(w),
                        humantime::format_duration(wait),
                        running.as_deref().unwrap_or("nothing")
                    ),
                });
            }
            let back = put_back().unwrap_or_else(|e| format!("could not put current back: {e}"));
            for line in &lines {
                println!("{line}");
            }
            let n = verdicts.len();
            let lost_too = if lost > 0 {
                format!(", {lost} lost")
            } else {
                String::new()
            };
            let what = if refused > 0 {
                format!("refused by {refused} of {n} supervisors{lost_too}")
            } else if lost > 0 {
                format!("not confirmed: {lost} of {n} supervisors lost before they answered")
            } else {
                format!("not confirmed by {pending} of {n} supervisors")
            };
            bail!("{app} {target} {what}; {back}\n{}", why.join("\n"));
        }
        std::thread::sleep(POLL);
    }
}

/// One supervisor's answer so far.
enum Answer {
    Runs,
    Refused(String, String),
    /// Gone before it answered: how.
    Lost(String),
    /// No answer yet: what it runs.
    Pending(Option<String>),
}

/// The answer of `start` (a supervisor live when the change began), from its report now
/// (`None`: the file is gone).
fn judge(
    start: &SupervisorReport,
    now: Option<&ReportRead>,
    target: &str,
    since_ms: u64,
    now_ms: u64,
) -> Answer {
    let r = match now {
        None => return Answer::Lost("its report disappeared".to_owned()),
        Some(Err(e)) => return Answer::Lost(format!("its report became unreadable ({e})")),
        Some(Ok(r)) => r,
    };
    if r.pid != start.pid || r.started_ms != start.started_ms {
        return Answer::Lost(format!(
            "pid {} is gone (the instance restarted as pid {})",
            start.pid, r.pid
        ));
    }
    if let Some(how) = r.not_live(now_ms) {
        return Answer::Lost(how);
    }
    if r.running.as_deref() == Some(target) {
        return Answer::Runs;
    }
    match &r.refused {
        Some(n) if n.version == target && n.at_ms >= since_ms => {
            Answer::Refused(n.step.clone(), n.error.clone())
        }
        _ => Answer::Pending(r.running.clone()),
    }
}

/// How a supervisor is named in messages.
fn who(r: &SupervisorReport) -> String {
    format!("{} (pid {} on {})", r.instance, r.pid, r.host)
}
