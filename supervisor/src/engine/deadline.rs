//! Running a hook on its own thread, under a deadline.

use super::error::Cause;
use crate::loader::Hook;
use std::sync::mpsc;
use std::time::Duration;

/// Runs `job` (one call of `hook`) on a new thread and waits at most `timeout` for it.
///
/// On a deadline the thread is abandoned, not killed (a thread cannot be killed safely): it
/// keeps running the hook, and the job keeps every `Arc<Plugin>` or `Arc<Instance>` it
/// captured, so the library it is executing is never unmapped under it. Whatever it returns
/// later is dropped on that thread.
pub(crate) fn run<T, F>(hook: Hook, timeout: Duration, job: F) -> Result<T, Cause>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(format!("molt-{hook}"))
        .spawn(move || {
            // The receiver is gone after a deadline; the answer is dropped here then.
            let _ = tx.send(job());
        })
        .map_err(|source| Cause::Thread { hook, source })?;
    rx.recv_timeout(timeout).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => Cause::Deadline { hook, timeout },
        mpsc::RecvTimeoutError::Disconnected => Cause::Lost { hook },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_time_or_gives_up() {
        assert_eq!(run(Hook::Export, Duration::from_secs(60), || 7).unwrap(), 7);
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
