//! Running hooks on a worker thread, under a deadline.
//!
//! A swap starts its worker while staging, so the pause pays for handing a job over, not for
//! starting a thread. Handing over still costs two wake-ups (the worker's, then the caller's),
//! and on a VM a thread parked on an idle vCPU takes tens to hundreds of µs to wake (an
//! interrupt to a halted vCPU): on a quiet 2-core machine an export that runs for 2 µs took
//! 37 µs at the median, 112 µs at p99. So neither side parks at once: the worker polls for its
//! next job for [`SPIN`] after each job, and the caller polls for the answer for [`SPIN`]
//! before it parks. Each turn of a poll yields the CPU, so threads with work on that CPU run
//! first; a poll that finds nothing else to run keeps its vCPU from halting. A hook that runs
//! longer than [`SPIN`] costs one wake-up, as before; the CPU a poll burns is bounded by
//! [`SPIN`] per job on each side.

use super::error::{Cause, RecordOverrun};
use crate::loader::Hook;
use crate::tables::HookWatch;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// How long each side polls before it parks: the worker for its next job, the caller for the
/// answer. Longer than the handover and the short hooks of a code-only swap (a few µs each),
/// short enough that the CPU a swap burns polling does not matter.
pub(crate) const SPIN: Duration = Duration::from_millis(1);

/// A thread that runs jobs one after the other, each awaited with a deadline.
///
/// On a deadline the thread is abandoned, not killed (a thread cannot be killed safely): it
/// keeps running the hook, and the job keeps every `Arc<Plugin>` or `Arc<Instance>` it
/// captured, so the library it executes is never unmapped under it. Whatever it returns later
/// is dropped on that thread, which ends once its `Worker` is gone and its job is done.
pub(crate) struct Worker {
    queue: Arc<Queue>,
    thread: JoinHandle<()>,
}

/// The jobs handed to a worker.
#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    /// Whether `jobs` holds any: read without the lock by the polling worker, written under it.
    posted: AtomicBool,
    /// The `Worker` is gone: the thread ends once the jobs are done.
    closed: AtomicBool,
}

impl Queue {
    fn push(&self, job: Job) {
        let mut jobs = self.jobs.lock();
        jobs.push_back(job);
        self.posted.store(true, Ordering::Release);
    }

    fn pop(&self) -> Option<Job> {
        if !self.posted.load(Ordering::Acquire) {
            return None;
        }
        let mut jobs = self.jobs.lock();
        let job = jobs.pop_front();
        self.posted.store(!jobs.is_empty(), Ordering::Release);
        job
    }

    /// The worker thread: runs jobs until the `Worker` is gone; polls for [`SPIN`] after each
    /// job, then parks.
    fn serve(&self) {
        let mut idle_since = Instant::now();
        loop {
            if let Some(job) = self.pop() {
                // A job that panics (a bug of the host's: hooks' panics are caught in the
                // plugin's shims) drops its reply, which tells the caller; the worker serves on.
                let _ = catch_unwind(AssertUnwindSafe(job));
                idle_since = Instant::now();
                continue;
            }
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            if idle_since.elapsed() < SPIN {
                std::thread::yield_now();
            } else {
                // Woken by `push`'s caller or the `Worker`'s drop; a spurious return loops.
                std::thread::park();
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Release);
        self.thread.thread().unpark();
    }
}

/// Where a job's answer goes.
struct Answer<T> {
    state: AtomicU8,
    value: Mutex<Option<T>>,
    /// The caller parks (after its poll) only with this set, and the reply wakes it only
    /// then, so a caller answered while polling is left no stray wake-up.
    parked: AtomicBool,
    caller: Thread,
}

const WAITING: u8 = 0;
const ANSWERED: u8 = 1;
/// The job ended without an answer (it panicked).
const LOST: u8 = 2;

/// The job's end of an [`Answer`]: answers once, or says the job was lost when dropped
/// unanswered.
struct Reply<T>(Arc<Answer<T>>);

impl<T> Reply<T> {
    fn send(self, value: T) {
        *self.0.value.lock() = Some(value);
        self.settle(ANSWERED);
    }

    fn settle(&self, state: u8) {
        let answer = &self.0;
        if answer
            .state
            .compare_exchange(WAITING, state, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && answer.parked.load(Ordering::SeqCst)
        {
            answer.caller.unpark();
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        self.settle(LOST);
    }
}

impl Worker {
    /// Starts a worker thread named `molt-<name>`.
    pub(crate) fn spawn(name: &str, hook: Hook) -> Result<Worker, Cause> {
        let queue = Arc::new(Queue::default());
        let served = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name(format!("molt-{name}"))
            .spawn(move || served.serve())
            .map_err(|source| Cause::Thread { hook, source })?;
        Ok(Worker { queue, thread })
    }

    /// Runs `job` (one call of `hook`) on the worker and waits at most `timeout` for it.
    pub(crate) fn run<T, F>(&self, hook: Hook, timeout: Duration, job: F) -> Result<T, Cause>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let answer = self.post(hook, job)?;
        let deadline = Instant::now().checked_add(timeout);
        wait(&answer, hook, || match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(Cause::Deadline { hook, timeout })
                } else {
                    Ok(Some(left))
                }
            }
            None => Ok(None),
        })
    }

    /// Runs `job`, a pass over the tables that calls a record hook (`by` names it) through a
    /// conversion `watch` follows, and waits for it with no deadline on the pass: each call of
    /// the hook gets `timeout`. A call past it abandons the pass (see [`HookWatch`]) and
    /// refuses, naming the record.
    pub(crate) fn run_watched<T, F>(
        &self,
        hook: Hook,
        by: &str,
        timeout: Duration,
        watch: &Arc<HookWatch>,
        job: F,
    ) -> Result<T, Cause>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let answer = self.post(hook, job)?;
        // How often the watch is read while the pass runs.
        let poll = timeout.min(WATCH_POLL);
        wait(&answer, hook, || match watch.overdue(timeout) {
            Some(overdue) => {
                watch.abandon();
                Err(Cause::RecordDeadline(Box::new(RecordOverrun {
                    table: overdue.table,
                    key: overdue.key,
                    by: by.to_owned(),
                    timeout,
                })))
            }
            None => Ok(Some(poll)),
        })
    }

    /// Hands `job` to the worker; its answer will be in the returned [`Answer`].
    fn post<T, F>(&self, hook: Hook, job: F) -> Result<Arc<Answer<T>>, Cause>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if self.thread.is_finished() {
            return Err(Cause::Lost { hook });
        }
        let answer = Arc::new(Answer {
            state: AtomicU8::new(WAITING),
            value: Mutex::new(None),
            parked: AtomicBool::new(false),
            caller: std::thread::current(),
        });
        let reply = Reply(Arc::clone(&answer));
        self.queue.push(Box::new(move || reply.send(job())));
        self.thread.thread().unpark();
        Ok(answer)
    }
}

/// How often a watched pass's current hook call is checked against the deadline.
const WATCH_POLL: Duration = Duration::from_millis(10);

/// Waits for `answer`: polls for [`SPIN`], then parks. `check` says, at every turn, whether to
/// give up (the cause) or how long to park at most (`None`: until answered).
fn wait<T>(
    answer: &Answer<T>,
    hook: Hook,
    mut check: impl FnMut() -> Result<Option<Duration>, Cause>,
) -> Result<T, Cause> {
    let started = Instant::now();
    loop {
        match answer.state.load(Ordering::SeqCst) {
            ANSWERED => return answer.value.lock().take().ok_or(Cause::Lost { hook }),
            LOST => return Err(Cause::Lost { hook }),
            _ => {}
        }
        let park = check()?;
        if started.elapsed() < SPIN {
            std::thread::yield_now();
            continue;
        }
        answer.parked.store(true, Ordering::SeqCst);
        // Checked again with `parked` set: a reply settled before it saw `parked` is seen
        // here; one settled after it wakes this thread.
        if answer.state.load(Ordering::SeqCst) == WAITING {
            match park {
                Some(d) => std::thread::park_timeout(d),
                None => std::thread::park(),
            }
        }
    }
}

/// Runs one job on a fresh worker, under a deadline.
pub(crate) fn run<T, F>(hook: Hook, timeout: Duration, job: F) -> Result<T, Cause>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    Worker::spawn(&hook.to_string(), hook)?.run(hook, timeout, job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn answers_in_time_or_gives_up() {
        assert_eq!(run(Hook::Export, Duration::from_secs(60), || 7).unwrap(), 7);
        let worker = Worker::spawn("test", Hook::Export).unwrap();
        assert_eq!(
            worker.run(Hook::Export, Duration::from_secs(60), || 1).unwrap(),
            1
        );
        assert_eq!(
            worker.run(Hook::Import, Duration::from_secs(60), || 2).unwrap(),
            2
        );
        let (_hold, wait) = mpsc::channel::<()>();
        let late = run(Hook::Import, Duration::from_millis(20), move || wait.recv());
        assert!(matches!(
            late,
            Err(Cause::Deadline {
                hook: Hook::Import,
                ..
            })
        ));
        let lost = run(Hook::Import, Duration::from_secs(60), || -> u32 {
            panic!("host bug")
        });
        assert!(matches!(lost, Err(Cause::Lost { .. })));
    }

    #[test]
    fn a_worker_serves_on_after_a_lost_job_and_answers_past_its_poll() {
        let worker = Worker::spawn("test", Hook::Export).unwrap();
        let lost = worker.run(Hook::Export, Duration::from_secs(60), || -> u32 {
            panic!("host bug")
        });
        assert!(matches!(lost, Err(Cause::Lost { .. })));
        // Longer than both polls: the worker parked before the job came, the caller parks
        // before the answer comes, and both are woken.
        std::thread::sleep(3 * SPIN);
        let slow = worker.run(Hook::Import, Duration::from_secs(60), || {
            std::thread::sleep(3 * SPIN);
            5
        });
        assert_eq!(slow.unwrap(), 5);
        assert_eq!(
            worker.run(Hook::Import, Duration::MAX, || 6).unwrap(),
            6,
            "no deadline at all"
        );
    }

    #[test]
    fn an_abandoned_job_keeps_what_it_holds_until_it_returns() {
        let worker = Worker::spawn("test", Hook::Import).unwrap();
        let (release, wait) = mpsc::channel::<()>();
        let held = Arc::new(());
        let in_job = Arc::clone(&held);
        let late = worker.run(Hook::Import, Duration::from_millis(20), move || {
            let _ = wait.recv();
            drop(in_job);
        });
        assert!(matches!(late, Err(Cause::Deadline { .. })));
        drop(worker);
        assert_eq!(
            Arc::strong_count(&held),
            2,
            "the abandoned job still holds its library"
        );
        release.send(()).unwrap();
        let started = Instant::now();
        while Arc::strong_count(&held) > 1 {
            assert!(started.elapsed() < Duration::from_secs(10), "the job never ended");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
