//! This process's memory, from `/proc/self`: the resident set now, and its peak since the
//! last reset (`echo 5 > /proc/self/clear_refs` resets `VmHWM` to the current RSS).

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// `VmRSS`, KiB (0 when unreadable).
pub fn rss_kb() -> u64 {
    status_kb("VmRSS:").unwrap_or(0)
}

/// `VmHWM`, the peak RSS since the last [`reset_peak`], KiB (0 when unreadable).
pub fn peak_kb() -> u64 {
    status_kb("VmHWM:").unwrap_or(0)
}

/// Resets the peak to the current RSS and returns that RSS, KiB; `None` when the kernel
/// does not allow it (then peaks are not measured).
pub fn reset_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    Some(rss_kb())
}
