//! Snapshots do not stall traffic: a release `molt run` serving kv v1 with 100 MB of state
//! (`POST /preload`, 1 KiB values), snapshotting every second, under writes (`PUT /kv/k<n>`
//! over 1,024 keys, so every shard is written) from the closed-loop generator. The figure is
//! the longest a request waited while snapshots ran; the same run with no snapshots gives the
//! machine's own longest wait beside it.

use crate::artifacts::Built;
use crate::load::{Running, Spec};
use crate::molt::{push, Molt, Setup};
use anyhow::{ensure, Context};
use hyper::Method;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// The stall figures for one kind of state.
#[derive(Debug, Clone, Serialize)]
pub struct StallResult {
    /// The longest request latency while snapshots ran, ms.
    pub max_ms: f64,
    /// The 99.9th percentile of request latency while snapshots ran, ms.
    pub p999_ms: f64,
    /// The longest latency of the same load with no snapshots, ms.
    pub baseline_max_ms: f64,
    /// Its 99.9th percentile, ms.
    pub baseline_p999_ms: f64,
    /// Snapshots written during the loaded window.
    pub snapshots: u64,
    /// State bytes.
    pub state_bytes: u64,
    /// Requests answered while snapshots ran.
    pub requests: u64,
    /// Failed requests.
    pub failed: u64,
    /// The loaded window, s.
    pub window_s: f64,
}

/// Runs the snapshot and the baseline windows, each `window` long.
pub fn run(
    built: &Built,
    work: &Path,
    state_mb: u64,
    window: Duration,
    connections: usize,
) -> anyhow::Result<StallResult> {
    let volume = work.join("volume");
    push(&built.molt, &built.kv_v1, &volume, true)?;
    let measure = |name: &str, interval: &str| -> anyhow::Result<(crate::load::Outcome, u64)> {
        let mut setup = Setup::new(&built.molt, &volume, "kv", &work.join(name));
        setup.extra = vec!["--snapshot-interval".into(), interval.into()];
        let molt = Molt::start(&setup)?;
        let keys = state_mb * 1024;
        let preload = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()?
            .post(format!("http://{}/preload?keys={keys}&size=1024", molt.listen()))
            .send()
            .context("POST /preload")?;
        ensure!(
            preload.status().is_success(),
            "POST /preload: {}",
            preload.status()
        );
        let before = snapshots(&molt)?;
        let spec = Spec::spread(molt.listen(), connections, Method::PUT, "/kv/k", 1024).recording();
        let outcome = Running::for_duration(spec, window)?;
        let written = snapshots(&molt)? - before;
        drop(molt);
        Ok((outcome, written))
    };
    let (loaded, written) = measure("snapshots", "1s")?;
    let (baseline, _) = measure("baseline", "0s")?;
    let latencies = |o: &crate::load::Outcome| {
        let mut l: Vec<u32> = o.samples.iter().map(|s| s.latency_us).collect();
        l.sort_unstable();
        l
    };
    let pct = |l: &[u32], p: f64| -> f64 {
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        f64::from(l[i]) / 1000.0
    };
    let (a, b) = (latencies(&loaded), latencies(&baseline));
    Ok(StallResult {
        max_ms: pct(&a, 1.0),
        p999_ms: pct(&a, 0.999),
        baseline_max_ms: pct(&b, 1.0),
        baseline_p999_ms: pct(&b, 0.999),
        snapshots: written,
        state_bytes: state_mb << 20,
        requests: loaded.acknowledged,
        failed: loaded.failed + baseline.failed,
        window_s: window.as_secs_f64(),
    })
}

/// `molt_snapshots_total{result="ok"}` from `/metrics`.
fn snapshots(molt: &Molt) -> anyhow::Result<u64> {
    let text = reqwest::blocking::get(format!("http://{}/metrics", molt.control_addr()))?.text()?;
    text.lines()
        .find_map(|l| l.strip_prefix("molt_snapshots_total{result=\"ok\"} "))
        .context("no snapshot counter in /metrics")?
        .trim()
        .parse()
        .context("parsing the snapshot counter")
}
