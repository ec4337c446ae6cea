//! Running hooks on a worker thread, under a deadline.
//!
//! A swap starts its worker while staging, so the pause pays for a wake-up, not for starting
//! a thread.

use super::error::Cause;
use crate::loader::Hook;
use std::sync::mpsc;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// A thread that runs jobs one after the other, each awaited with a deadline.
///
/// On a deadline the thread is abandoned, not killed (a thread cannot be killed safely): it
/// keeps running the hook, and the job keeps every `Arc<Plugin>` or `Arc<Instance>` it
/// captured, so the library it executes is never unmapped under it. Whatever it returns later
/// is dropped on that thread, which ends once its `Worker` is gone and its job is done.
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts a worker thread named `molt-<name>`.
    pub(crate) fn spawn(name: &str, hook: Hook) -> Result<Worker, Cause> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("molt-{name}"))
            .spawn(move || {
                for job in queue {
                    job();
                }
            })
            .map_err(|source| Cause::Thread { hook, source })?;
        Ok(Worker { jobs })
    }

    /// Runs `job` (one call of `hook`) on the worker and waits at most `timeout` for it.
    pub(crate) fn run<T, F>(&self, hook: Hook, timeout: Duration, job: F) -> Result<T, Cause>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move || {
                // The receiver is gone after a deadline; the answer is dropped here then.
                let _ = tx.send(job());
            }))
            .map_err(|_| Cause::Lost { hook })?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => Cause::Deadline { hook, timeout },
            mpsc::RecvTimeoutError::Disconnected => Cause::Lost { hook },
        })
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
}
