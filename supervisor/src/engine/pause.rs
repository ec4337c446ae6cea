//! The measured pause: the instants that bound each step of one swap, and the durations
//! derived from them.
//!
//! The pause is what callers feel: it starts when the swap begins waiting for the gate (from
//! then on new calls queue) and ends when the gate opens again (steps 2 to 5 of the swap
//! protocol: drain, export, import, switch). Staging runs while traffic flows and is reported
//! on its own, never as part of the pause.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// A boundary between two steps of a swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Staging is done; the swap starts waiting for the gate: the pause begins.
    Paused,
    /// The gate is held: no call is in flight.
    Drained,
    /// The table records written since staging are validated (a record schema change).
    Validated,
    /// The running version's state is exported.
    Exported,
    /// The new version has imported it.
    Imported,
    /// The new instance is active and the gate opens (marked just before the unlock): the
    /// pause ends.
    Resumed,
}

/// The instants of one swap, from the start of staging. Marks are cells so that a failing
/// swap can read the pause so far while it is still being marked.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    started: Instant,
    marks: [Cell<Option<Instant>>; 6],
}

/// How long each step of a swap took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Steps {
    /// Staging, while traffic flows.
    pub stage: Duration,
    /// From the first queued call to the moment traffic resumed: `drain + tables + export +
    /// import + switch`.
    pub pause: Duration,
    /// Waiting for in-flight calls.
    pub drain: Duration,
    /// Validating the table records written since staging (a record schema change only).
    pub tables: Duration,
    /// The old version's export.
    pub export: Duration,
    /// The new version's import.
    pub import: Duration,
    /// Installing the new instance and opening the gate.
    pub switch: Duration,
}

impl Timeline {
    /// Staging starts now.
    pub(crate) fn start() -> Timeline {
        Timeline::start_at(Instant::now())
    }

    fn start_at(started: Instant) -> Timeline {
        Timeline {
            started,
            marks: Default::default(),
        }
    }

    /// Records that a step boundary is passed now.
    pub(crate) fn mark(&self, mark: Mark) {
        self.mark_at(mark, Instant::now());
        // For tools that follow a swap step by step (the fault-injection tests): off unless
        // `MOLT_LOG` enables the `molt::phase` target at trace level.
        tracing::trace!(target: "molt::phase", step = ?mark, "swap");
    }

    fn mark_at(&self, mark: Mark, at: Instant) {
        self.marks[mark as usize].set(Some(at));
    }

    fn at(&self, mark: Mark) -> Option<Instant> {
        self.marks[mark as usize].get()
    }

    /// The pause so far: from [`Mark::Paused`] to [`Mark::Resumed`], or to now while the swap
    /// is still paused; zero before the pause began.
    pub(crate) fn pause(&self) -> Duration {
        match self.at(Mark::Paused) {
            Some(paused) => self
                .at(Mark::Resumed)
                .unwrap_or_else(Instant::now)
                .saturating_duration_since(paused),
            None => Duration::ZERO,
        }
    }

    /// The duration of every step; a step not reached takes zero.
    pub(crate) fn steps(&self) -> Steps {
        let between = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(from), Some(to)) => to.saturating_duration_since(from),
            _ => Duration::ZERO,
        };
        let marks = |m| self.at(m);
        Steps {
            stage: between(Some(self.started), marks(Mark::Paused)),
            pause: between(marks(Mark::Paused), marks(Mark::Resumed)),
            drain: between(marks(Mark::Paused), marks(Mark::Drained)),
            tables: between(marks(Mark::Drained), marks(Mark::Validated)),
            export: between(marks(Mark::Validated), marks(Mark::Exported)),
            import: between(marks(Mark::Exported), marks(Mark::Imported)),
            switch: between(marks(Mark::Imported), marks(Mark::Resumed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A swap whose stage took 10 s and whose paused steps took 1, 2, 3 and 4 ms.
    fn timeline() -> Timeline {
        let t0 = Instant::now();
        let t = Timeline::start_at(t0);
        let mut at = t0 + 10_000 * MS;
        t.mark_at(Mark::Paused, at);
        for (mark, ms) in [
            (Mark::Drained, 1),
            (Mark::Validated, 0),
            (Mark::Exported, 2),
            (Mark::Imported, 3),
            (Mark::Resumed, 4),
        ] {
            at += ms * MS;
            t.mark_at(mark, at);
        }
        t
    }

    #[test]
    fn pause_covers_steps_2_to_5_and_never_the_stage() {
        let steps = timeline().steps();
        assert_eq!(steps.stage, 10_000 * MS);
        assert_eq!(
            (steps.drain, steps.export, steps.import, steps.switch),
            (MS, 2 * MS, 3 * MS, 4 * MS)
        );
        assert_eq!(steps.pause, 10 * MS, "pause = drain + export + import + switch");
        assert_eq!(
            steps.pause,
            steps.drain + steps.tables + steps.export + steps.import + steps.switch
        );
        assert_eq!(timeline().pause(), steps.pause);
    }

    #[test]
    fn an_unfinished_swap_reports_what_it_reached() {
        let t = Timeline::start_at(Instant::now() - 5 * MS);
        assert_eq!(t.pause(), Duration::ZERO, "no pause before the gate is asked for");
        t.mark(Mark::Paused);
        let steps = t.steps();
        assert!(steps.stage >= 5 * MS);
        assert_eq!(
            (steps.pause, steps.drain, steps.switch),
            (Duration::ZERO, Duration::ZERO, Duration::ZERO)
        );
    }
}
