//! The coordinator of one handoff, over two control APIs: `molt handoff` runs it, and so does
//! `molt run --handoff-on-stop` (against its own control API). Every step has a deadline and
//! is timed; a failure names its step and leaves the departing supervisor serving again, unless
//! the receiver may already hold the state (then the receiver's answer decides).

use super::wire::{Absorbed, Begun, HandoffStep, Phase, Refused};
use crate::control::{CallError, ControlClient};
use std::time::{Duration, Instant};

/// How a handoff runs.
#[derive(Debug, Clone)]
pub struct HandoffOptions {
    /// How long the departing supervisor stays unready, still serving, before it seals: the
    /// time a Service needs to stop routing to it.
    pub unready_wait: Duration,
    /// How long in-flight requests get to finish once sealing starts.
    pub drain_timeout: Duration,
    /// The deadline of every other step (each control call).
    pub step_timeout: Duration,
    /// The termination grace period the whole handoff must fit in, if any.
    pub grace: Option<Duration>,
    /// The throughput assumed for export (with the pending record it writes), transfer and
    /// merge together when checking the grace period up front (bytes per second).
    pub assumed_rate: u64,
}

impl Default for HandoffOptions {
    fn default() -> Self {
        HandoffOptions {
            unready_wait: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(5),
            step_timeout: Duration::from_secs(30),
            grace: None,
            assumed_rate: 200 * 1000 * 1000,
        }
    }
}

/// One timed step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepTiming {
    /// The step.
    pub step: HandoffStep,
    /// How long it took, as the coordinator saw it.
    pub took: Duration,
    /// Its deadline.
    pub deadline: Duration,
    /// What it did, in words.
    pub note: String,
}

/// A handoff that moved the state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HandoffReport {
    /// The handoff id.
    pub id: String,
    /// The departing supervisor.
    pub from: String,
    /// The receiver.
    pub to: String,
    /// What the departing supervisor exported.
    pub begun: Begun,
    /// What the receiver did.
    pub absorbed: Absorbed,
    /// Every step, in order.
    pub steps: Vec<StepTiming>,
    /// From the first check to the commit.
    pub total: Duration,
    /// The grace period it had to fit in.
    pub grace: Option<Duration>,
}

/// A handoff that did not move the state (or whose end is not certain).
#[derive(Debug, thiserror::Error)]
#[error("handoff {id} from {from} to {to}: {step} failed: {message}")]
pub struct HandoffFailure {
    /// The handoff id.
    pub id: String,
    /// The departing supervisor.
    pub from: String,
    /// The receiver.
    pub to: String,
    /// The step that failed.
    pub step: HandoffStep,
    /// Why, and where the state is now.
    pub message: String,
    /// The steps that ran, the failed one last.
    pub steps: Vec<StepTiming>,
}

/// The departing supervisor and the receiver of one handoff.
pub struct Departing<'a> {
    /// The supervisor whose state leaves.
    pub from: &'a ControlClient,
    /// The supervisor that absorbs it.
    pub to: &'a ControlClient,
}

impl Departing<'_> {
    /// Runs handoff `id` (see the module docs and docs/DESIGN.md, "Handoff").
    pub fn run(&self, id: &str, opts: &HandoffOptions) -> Result<HandoffReport, Box<HandoffFailure>> {
        let mut run = Run {
            id,
            from: self.from,
            to: self.to,
            steps: Vec::new(),
            started: Instant::now(),
        };
        let (app, schema) = run.check(opts)?;
        let begun = run.begin(schema, opts)?;
        let state = run.transfer(opts)?;
        let absorbed = run.merge(&app, schema, state, opts)?;
        run.commit(opts)?;
        Ok(HandoffReport {
            id: id.to_owned(),
            from: self.from.base().to_owned(),
            to: self.to.base().to_owned(),
            begun,
            absorbed,
            total: run.started.elapsed(),
            steps: run.steps,
            grace: opts.grace,
        })
    }

    /// Settles handoff `id` whose end was left uncertain (the departing supervisor sealed,
    /// the receiver's answer lost): asks the receiver, fencing the id, then commits or aborts.
    pub fn resolve(&self, id: &str, opts: &HandoffOptions) -> Result<String, Box<HandoffFailure>> {
        let mut run = Run {
            id,
            from: self.from,
            to: self.to,
            steps: Vec::new(),
            started: Instant::now(),
        };
        let t = Instant::now();
        match self.to.absorb_query(id, true, opts.step_timeout) {
            Ok(q) if q.absorbed => {
                run.time(
                    HandoffStep::Merge,
                    t,
                    opts.step_timeout,
                    "the receiver absorbed it",
                );
                run.commit(opts)?;
                Ok(format!(
                    "handoff {id}: the receiver {} holds the state; committed",
                    self.to.base()
                ))
            }
            Ok(_) => {
                run.time(
                    HandoffStep::Merge,
                    t,
                    opts.step_timeout,
                    "the receiver did not absorb it (fenced)",
                );
                let done = run.abort(opts);
                Ok(format!(
                    "handoff {id}: the receiver never absorbed it (now fenced); {done}"
                ))
            }
            Err(e) => Err(run.fail(
                HandoffStep::Merge,
                t,
                opts.step_timeout,
                format!("cannot ask the receiver: {e}; the departing supervisor stays as it is"),
            )),
        }
    }
}

/// One run's state.
struct Run<'a> {
    id: &'a str,
    from: &'a ControlClient,
    to: &'a ControlClient,
    steps: Vec<StepTiming>,
    started: Instant,
}

impl Run<'_> {
    fn time(&mut self, step: HandoffStep, since: Instant, deadline: Duration, note: impl Into<String>) {
        self.steps.push(StepTiming {
            step,
            took: since.elapsed(),
            deadline,
            note: note.into(),
        });
    }

    fn fail(
        &mut self,
        step: HandoffStep,
        since: Instant,
        deadline: Duration,
        message: String,
    ) -> Box<HandoffFailure> {
        self.time(step, since, deadline, "failed");
        Box::new(HandoffFailure {
            id: self.id.to_owned(),
            from: self.from.base().to_owned(),
            to: self.to.base().to_owned(),
            step,
            message,
            steps: std::mem::take(&mut self.steps),
        })
    }

    /// Before anything stops: both answer, same app, both serving and idle, the receiver has a
    /// merge hook for a schema the departing version exports, and the grace period suffices.
    fn check(&mut self, opts: &HandoffOptions) -> Result<(String, u32), Box<HandoffFailure>> {
        let t = Instant::now();
        let deadline = opts.step_timeout;
        let nothing = "nothing was stopped";
        let from_info = self.from.handoff_info(deadline);
        let to_info = self.to.handoff_info(deadline);
        let checked = (|| -> Result<(String, u32, String), String> {
            let from = from_info.map_err(|e| format!("the departing supervisor: {e}; {nothing}"))?;
            let to = to_info.map_err(|e| format!("the receiver: {e}; {nothing}"))?;
            if self.from.base() == self.to.base() {
                return Err(format!("{} cannot hand its state to itself", self.from.base()));
            }
            if from.app != to.app {
                return Err(format!(
                    "the departing supervisor runs app {:?}, the receiver {:?}; {nothing}",
                    from.app, to.app
                ));
            }
            let (Some(from_version), Some(from_schema)) = (&from.version, from.state_schema) else {
                return Err(format!(
                    "nothing serves at {}: no state to hand off",
                    self.from.base()
                ));
            };
            let (Some(to_version), Some(to_schema)) = (&to.version, to.state_schema) else {
                return Err(format!(
                    "nothing serves at {} to merge into; {nothing}",
                    self.to.base()
                ));
            };
            for (who, info) in [(self.from.base(), &from), (self.to.base(), &to)] {
                if info.phase != Phase::Serving {
                    return Err(format!("{who} is not idle ({:?}); {nothing}", info.phase));
                }
            }
            let app = &from.app;
            if to.merges.is_empty() {
                return Err(format!(
                    "the receiver's {app} {to_version} has no merge hook: it cannot absorb another \
                     instance's state; {nothing}: {app} {from_version} at {} serves on with its state",
                    self.from.base()
                ));
            }
            let Some(schema) = molt_abi::choose_schema(from_schema, &from.exports, to_schema, &to.merges)
            else {
                return Err(format!(
                    "no schema to move the state in: {app} {from_version} exports {:?}, the receiver's \
                     {to_version} merges {:?}; {nothing}",
                    from.exports, to.merges
                ));
            };
            let mut note = format!("{app} {from_version} → {to_version}, schema {schema}");
            if let Some(grace) = opts.grace {
                let bytes = from.last_snapshot_bytes.unwrap_or(0);
                let moving = Duration::from_secs_f64(bytes as f64 / opts.assumed_rate.max(1) as f64);
                let least = opts.unready_wait + moving;
                let arithmetic = format!(
                    "unready wait {:?} + {bytes} bytes (last snapshot) at {} MB/s = {:?}",
                    opts.unready_wait,
                    opts.assumed_rate / 1_000_000,
                    least
                );
                if least > grace {
                    return Err(format!(
                        "it cannot fit the grace period of {grace:?}: {arithmetic}; {nothing}"
                    ));
                }
                note.push_str(&format!("; grace {grace:?} ≥ {arithmetic}"));
            }
            Ok((app.clone(), schema, note))
        })();
        match checked {
            Ok((app, schema, note)) => {
                self.time(HandoffStep::Check, t, deadline, note);
                Ok((app, schema))
            }
            Err(message) => Err(self.fail(HandoffStep::Check, t, deadline, message)),
        }
    }

    /// Unready, wait, seal, export: one call; the departing supervisor times its parts.
    fn begin(&mut self, schema: u32, opts: &HandoffOptions) -> Result<Begun, Box<HandoffFailure>> {
        let t = Instant::now();
        let deadline = opts.unready_wait + opts.drain_timeout + opts.step_timeout;
        let to = self.to.base().to_owned();
        // The coordinator's own steps after this one take at most four step deadlines
        // (transfer, merge, the questions after a lost answer, commit): past that, with a
        // margin, the departing supervisor may take it that the coordinator is gone.
        let lease = 4 * opts.step_timeout + Duration::from_secs(10);
        let result = self.from.handoff_begin(
            self.id,
            &to,
            schema,
            opts.unready_wait,
            opts.drain_timeout,
            lease,
            deadline,
        );
        match result {
            Ok(begun) => {
                let us = |n: u64| Duration::from_micros(n);
                for (step, took, note) in [
                    (
                        HandoffStep::Unready,
                        begun.unready_us,
                        "readiness false, still serving".to_owned(),
                    ),
                    (
                        HandoffStep::Drain,
                        begun.drain_us,
                        "sealed: later requests get 503".to_owned(),
                    ),
                    (
                        HandoffStep::Export,
                        begun.export_us + begun.record_us,
                        format!(
                            "{} bytes in schema {} (export {} µs, pending record {} µs)",
                            begun.state_bytes, begun.schema, begun.export_us, begun.record_us
                        ),
                    ),
                ] {
                    let limit = match step {
                        HandoffStep::Unready => opts.unready_wait,
                        HandoffStep::Drain => opts.drain_timeout,
                        _ => opts.step_timeout,
                    };
                    self.steps.push(StepTiming {
                        step,
                        took: us(took),
                        deadline: limit,
                        note,
                    });
                }
                Ok(begun)
            }
            Err(CallError::Refused { refused, .. }) => {
                // The departing supervisor undid what it had done before refusing.
                let Refused { step, message } = refused;
                Err(self.fail(step, t, deadline, message))
            }
            Err(e) => {
                let done = self.abort(opts);
                Err(self.fail(HandoffStep::Unready, t, deadline, format!("{e}; {done}")))
            }
        }
    }

    fn transfer(&mut self, opts: &HandoffOptions) -> Result<Vec<u8>, Box<HandoffFailure>> {
        let t = Instant::now();
        match self.from.handoff_state(self.id, opts.step_timeout) {
            Ok((_, _, bytes)) => {
                self.time(
                    HandoffStep::Transfer,
                    t,
                    opts.step_timeout,
                    format!("{} bytes", bytes.len()),
                );
                Ok(bytes)
            }
            Err(e) => {
                let done = self.abort(opts);
                Err(self.fail(
                    HandoffStep::Transfer,
                    t,
                    opts.step_timeout,
                    format!("{e}; {done}"),
                ))
            }
        }
    }

    /// The receiver merges. A lost answer is settled by asking it, with `fence`.
    fn merge(
        &mut self,
        app: &str,
        schema: u32,
        state: Vec<u8>,
        opts: &HandoffOptions,
    ) -> Result<Absorbed, Box<HandoffFailure>> {
        let t = Instant::now();
        let deadline = opts.step_timeout;
        let from = self.from.base().to_owned();
        let lost = match self.to.absorb(self.id, &from, app, schema, state, deadline) {
            Ok(absorbed) => {
                let note = format!(
                    "{} bytes merged by {} {}: its pause {} µs (merge hook {} µs){}",
                    absorbed.peer_bytes,
                    app,
                    absorbed.version,
                    absorbed.pause_us,
                    absorbed.merge_us,
                    match (&absorbed.snapshot, &absorbed.snapshot_error) {
                        (Some(path), _) => format!("; recorded in {path}"),
                        (None, Some(e)) => format!("; its snapshot failed ({e}): the next one records it"),
                        (None, None) => String::new(),
                    }
                );
                self.time(HandoffStep::Merge, t, deadline, note);
                return Ok(absorbed);
            }
            Err(e) if e.certainly_not_applied() => {
                let done = self.abort(opts);
                return Err(self.fail(
                    HandoffStep::Merge,
                    t,
                    deadline,
                    format!("{e}; the receiver's state is unchanged; {done}"),
                ));
            }
            Err(e) => e,
        };
        // The merge may or may not have happened: the receiver's record decides. Ask until the
        // deadline, fencing the id so that the answer cannot change afterwards.
        tracing::warn!(handoff = self.id, error = %lost, "the receiver's answer was lost: asking it");
        let until = Instant::now() + deadline;
        loop {
            match self.to.absorb_query(self.id, true, deadline) {
                Ok(q) if q.absorbed => {
                    self.time(
                        HandoffStep::Merge,
                        t,
                        deadline,
                        format!("answer lost ({lost}); the receiver confirms it absorbed the state"),
                    );
                    let absorbed = Absorbed {
                        id: self.id.to_owned(),
                        already: true,
                        version: String::new(),
                        schema,
                        peer_bytes: 0,
                        pause_us: 0,
                        merge_us: 0,
                        snapshot: None,
                        snapshot_error: None,
                    };
                    return Ok(absorbed);
                }
                Ok(_) => {
                    let done = self.abort(opts);
                    return Err(self.fail(
                        HandoffStep::Merge,
                        t,
                        deadline,
                        format!(
                        "{lost}; the receiver did not absorb it (it restarted or the call was cut) and has \
                         fenced handoff {}: its state is unchanged; {done}", self.id
                    ),
                    ));
                }
                Err(e) if Instant::now() >= until => {
                    return Err(self.fail(
                        HandoffStep::Merge,
                        t,
                        deadline,
                        format!(
                        "{lost}; the receiver cannot say whether it absorbed the state ({e}); the departing \
                         supervisor stays sealed, holding its state, serving nothing: when the receiver \
                         answers, run `molt handoff --resolve {} --from {} --to {}`",
                        self.id, self.from.base(), self.to.base()
                    ),
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    fn commit(&mut self, opts: &HandoffOptions) -> Result<(), Box<HandoffFailure>> {
        let t = Instant::now();
        match self.from.handoff_commit(self.id, opts.step_timeout) {
            Ok(done) => {
                self.time(HandoffStep::Commit, t, opts.step_timeout, done.message);
                Ok(())
            }
            Err(e) => {
                Err(self.fail(
                    HandoffStep::Commit,
                    t,
                    opts.step_timeout,
                    format!(
                "{e}; the receiver holds the state: the departing supervisor must not serve it again \
                 and stays sealed; run `molt handoff --resolve {} --from {} --to {}` to record it",
                self.id, self.from.base(), self.to.base()
            ),
                ))
            }
        }
    }

    /// Asks the departing supervisor to unseal; says how that went.
    fn abort(&mut self, opts: &HandoffOptions) -> String {
        match self.from.handoff_abort(self.id, opts.step_timeout) {
            Ok(done) => format!(
                "the departing supervisor is ready and serving again with its state ({})",
                done.message
            ),
            Err(e) => format!("asking the departing supervisor to serve again failed: {e}"),
        }
    }
}
