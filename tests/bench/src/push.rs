//! Push to serving: from the moment `molt push LIB --volume V` (the CLI process: inspect the
//! library, copy and hash it, write the release, move `current`) returns, to the moment the new
//! version answers traffic (`x-molt-version`) on a running `molt run` (release) that watches
//! the volume. The first push of v2 publishes a new release; the following ones alternate v1
//! and v2, already on the volume (same sha256: the push re-activates them), each a real swap.
//! The new version is polled for every 250 µs on a keep-alive connection.

use crate::artifacts::{Built, V1, V2};
use crate::molt::{push, Molt, Setup};
use crate::stats::Summary;
use anyhow::{ensure, Context};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// Push-to-serving times.
#[derive(Debug, Clone, Serialize)]
pub struct PushResult {
    /// From `molt push` returning to the new version serving, ms (all pushes).
    pub serving_ms: Summary,
    /// How long the `molt push` process itself ran, ms.
    pub push_cli_ms: Summary,
    /// The first push (a new release, copied and fsynced), push returned to serving, ms.
    pub first_push_ms: f64,
    /// Pushes measured.
    pub pushes: usize,
}

/// Measures `pushes` pushes, calling `tick` after each.
pub fn run(built: &Built, work: &Path, pushes: usize, mut tick: impl FnMut()) -> anyhow::Result<PushResult> {
    let volume = work.join("volume");
    push(&built.molt, &built.counter_v1, &volume, true)?;
    let molt = Molt::start(&Setup::new(&built.molt, &volume, "counter", &work.join("molt")))?;
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building an HTTP client")?;
    let url = format!("http://{}/count", molt.listen());
    let serving = |version: &str| -> anyhow::Result<bool> {
        let resp = http.get(&url).send().with_context(|| format!("GET {url}"))?;
        let header = resp
            .headers()
            .get(molt_supervisor::front::VERSION_HEADER)
            .cloned();
        resp.bytes()?;
        Ok(header.is_some_and(|v| v.as_bytes() == version.as_bytes()))
    };
    ensure!(serving(V1)?, "v1 does not serve after the first push");

    let (mut serving_ms, mut cli_ms) = (Vec::new(), Vec::new());
    for i in 0..pushes {
        let (library, version) = if i % 2 == 0 {
            (&built.counter_v2, V2)
        } else {
            (&built.counter_v1, V1)
        };
        let started = Instant::now();
        push(&built.molt, library, &volume, true)?;
        let returned = Instant::now();
        let until = returned + Duration::from_secs(30);
        while !serving(version)? {
            ensure!(
                Instant::now() < until,
                "{version} not serving 30 s after push {i}:\n{}",
                molt.log()
            );
            std::thread::sleep(Duration::from_micros(250));
        }
        serving_ms.push(returned.elapsed().as_secs_f64() * 1e3);
        cli_ms.push((returned - started).as_secs_f64() * 1e3);
        tick();
    }
    // `/status` counts a swap just after the new version starts serving: wait for the last.
    molt.wait_status(&format!("{pushes} swaps"), |s| s.swaps == pushes as u64)?;
    Ok(PushResult {
        first_push_ms: serving_ms.first().copied().unwrap_or(0.0),
        serving_ms: Summary::of(&serving_ms),
        push_cli_ms: Summary::of(&cli_ms),
        pushes,
    })
}
