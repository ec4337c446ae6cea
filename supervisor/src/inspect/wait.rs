//! Waiting for a child process with a deadline.

use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits for `child`, the leader of a process group of its own, until `deadline` has passed;
/// then kills it and returns `None`. Either way, every process left in its group (what the
/// library's constructors started) is killed when it is done: an inspection leaves nothing
/// running. A process that left the group (`setsid`) escapes this; see docs/DESIGN.md.
pub(super) fn with_deadline(mut child: Child, deadline: Duration) -> io::Result<Option<ExitStatus>> {
    let group = rustix::process::Pid::from_child(&child);
    let end_group = || match rustix::process::kill_process_group(group, rustix::process::Signal::KILL) {
        // ESRCH: nothing is left in the group.
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => {
            tracing::warn!(pgid = group.as_raw_nonzero().get(), error = %e, "cannot end the inspection's process group")
        }
    };
    let until = Instant::now() + deadline;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            end_group();
            return Ok(Some(status));
        }
        if Instant::now() >= until {
            end_group();
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The name of a signal that commonly ends a crashing process.
pub(super) fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGABRT => "SIGABRT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        _ => "a signal",
    }
}
