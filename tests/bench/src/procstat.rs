//! What a process cost, from `/proc`: CPU time (`/proc/PID/stat`, utime + stime of all its
//! threads) and context switches (`voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches` of
//! each thread in `/proc/PID/task/*/status`; the process's own `status` counts only its main
//! thread). Threads that exited between two readings take their switches with them: the
//! servers measured here keep their threads.

use anyhow::Context;
use std::process::Command;
use std::sync::OnceLock;

/// A reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time, in microseconds (clock-tick resolution).
    pub cpu_us: u64,
    /// Context switches, voluntary and not, over all live threads.
    pub switches: u64,
}

impl Usage {
    /// What was spent from `earlier` to `self`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu_us: self.cpu_us.saturating_sub(earlier.cpu_us),
            switches: self.switches.saturating_sub(earlier.switches),
        }
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 when it cannot be asked).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(100)
    })
}

/// Reads what process `pid` has spent so far.
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, and ends at the last ')'):
    // state is field 3; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("parsing /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("a short /proc/PID/stat")?
            .parse::<u64>()
            .context("parsing a CPU time")
    };
    let cpu_ticks = ticks(11)? + ticks(12)?;
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).context("listing /proc/PID/task")? {
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue; // the thread exited meanwhile
        };
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                switches += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Ok(Usage {
        cpu_us: cpu_ticks * 1_000_000 / clock_ticks(),
        switches,
    })
}
