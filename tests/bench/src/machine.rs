//! Facts about the machine and the code a run measured, recorded with the figures.

use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// Where and on what a run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub nproc: usize,
    /// The CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Total memory, MiB (`/proc/meminfo`).
    pub memory_mib: u64,
    /// The kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// The molt commit measured (`git rev-parse HEAD`).
    pub molt_commit: String,
    /// Whether the work tree had uncommitted changes.
    pub molt_tree_dirty: bool,
    /// The 1-minute load average when the run started (`/proc/loadavg`): other work on the
    /// machine competes with every figure.
    pub loadavg_at_start: f64,
}

/// The 1-minute load average now; 0 when unknown.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Collects the facts; what cannot be read is `"unknown"`.
pub fn describe(workspace: &Path) -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_owned(), |(_, m)| m.trim().to_owned());
    let memory_mib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024);
    let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(workspace).args(args));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Machine {
        nproc: cores(),
        cpu,
        memory_mib,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        rustc: output(Command::new(rustc).arg("--version")),
        date: molt_supervisor::control::status::now_rfc3339(),
        molt_commit: git(&["rev-parse", "HEAD"]),
        molt_tree_dirty: !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty(),
        loadavg_at_start: loadavg(),
    }
}

fn output(cmd: &mut Command) -> String {
    match cmd.output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => "unknown".to_owned(),
    }
}
