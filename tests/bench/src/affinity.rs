//! CPU affinity of single threads, through `taskset` (util-linux), so the benchmark needs no
//! `unsafe`: the load generator on one core, the server it measures on the other, so that the
//! scheduler's placement of a handful of threads on two cores does not change from one round
//! to the next.

use anyhow::{ensure, Context};
use std::process::Command;

/// The calling thread's id (`/proc/thread-self` → `/proc/PID/task/TID`).
pub fn current_tid() -> anyhow::Result<u32> {
    let link = std::fs::read_link("/proc/thread-self").context("reading /proc/thread-self")?;
    link.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no thread id in {}", link.display()))
}

/// The ids of this process's threads whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> anyhow::Result<Vec<u32>> {
    let mut tids = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")? {
        let entry = entry?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            tids.extend(entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()));
        }
    }
    Ok(tids)
}

/// Restricts thread `tid` to core `cpu`; threads it starts later inherit that.
pub fn pin(tid: u32, cpu: usize) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid.to_string()])
        .output()
        .context("running taskset (util-linux)")?;
    ensure!(
        out.status.success(),
        "taskset -p -c {cpu} {tid}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Pins every thread of process `pid` (and the threads it starts later, which inherit the
/// mask of the thread that starts them) to core `cpu`.
pub fn pin_process(pid: u32, cpu: usize) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .output()
        .context("running taskset (util-linux)")?;
    anyhow::ensure!(
        out.status.success(),
        "taskset -a -p -c {cpu} {pid}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
