//! Zero downtime under load, end to end: a real `molt run` process serves counter increments on
//! keep-alive connections while the volume's `current` pointer flips v1 ↔ v2 twenty times.
//! Not one request may fail and not one acknowledged increment may be lost.
//!
//! Assertions are on counts, never on speed: the pause itself is the benchmark's business
//! (`tests/bench`).

use molt_supervisor::volume::Volume;
use molt_tests::artifacts::plugin;
use molt_tests::dir::TestDir;
use molt_tests::process::{push, MoltProcess, RunOptions};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Client threads, one keep-alive connection each.
const CLIENTS: usize = 4;
/// Version changes through the volume.
const FLIPS: u64 = 20;
/// Increments acknowledged between two flips, so every swap meets live traffic.
const BETWEEN_FLIPS: u64 = 20;

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    /// `POST /incr` answered 2xx.
    acknowledged: u64,
    /// Everything else: a status, or a connection error.
    failed: Vec<String>,
    /// Acknowledged increments by the `x-molt-version` that served them.
    by_version: BTreeMap<String, u64>,
}

/// `POST /incr` on one keep-alive connection until `stop`.
fn client(url: &str, stop: &AtomicBool, acknowledged: &AtomicU64) -> Seen {
    let http = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building an HTTP client");
    let mut seen = Seen::default();
    while !stop.load(Ordering::SeqCst) {
        match http.post(url).send() {
            Ok(resp) if resp.status().is_success() => {
                let version = resp
                    .headers()
                    .get("x-molt-version")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?")
                    .to_owned();
                match resp.text() {
                    Ok(_) => {
                        seen.acknowledged += 1;
                        *seen.by_version.entry(version).or_default() += 1;
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => seen.failed.push(format!("reading the body: {e}")),
                }
            }
            Ok(resp) => {
                let status = resp.status();
                seen.failed
                    .push(format!("{status}: {}", resp.text().unwrap_or_default()));
            }
            Err(e) => seen.failed.push(format!("connection: {e}")),
        }
    }
    seen
}

/// Waits until `acknowledged` has grown by `n` (bounded, so a stalled server fails the test).
fn wait_for_traffic(acknowledged: &AtomicU64, n: u64, molt: &MoltProcess) {
    let target = acknowledged.load(Ordering::SeqCst) + n;
    let until = Instant::now() + Duration::from_secs(20);
    while acknowledged.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < until,
            "no traffic acknowledged for 20 s:\n{}",
            molt.log()
        );
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn twenty_swaps_under_load_fail_no_request_and_lose_no_write() {
    let started = Instant::now();
    let dir = TestDir::new("load");
    let volume = dir.mkdir("volume");
    push(&plugin("counter_v1"), &volume);
    push(&plugin("counter_v2"), &volume);
    let releases = Volume::new(&volume);
    releases.activate("counter", "1.0.0").expect("activating v1");

    let opts = RunOptions::new(&volume, "counter", &dir.mkdir("work"))
        .args(["--state-dir".to_owned(), dir.mkdir("state").display().to_string()]);
    let molt = MoltProcess::start(&opts);
    molt.wait_for_version("1.0.0");
    let url = molt.url("/incr");

    let stop = AtomicBool::new(false);
    let acknowledged = AtomicU64::new(0);
    let seen: Vec<Seen> = thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| s.spawn(|| client(&url, &stop, &acknowledged)))
            .collect();
        // Whatever happens below, the clients stop (a failed assertion must not hang the scope).
        let flips = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for_traffic(&acknowledged, BETWEEN_FLIPS, &molt);
            for flip in 1..=FLIPS {
                let version = if flip % 2 == 1 { "2.0.0" } else { "1.0.0" };
                releases
                    .activate("counter", version)
                    .unwrap_or_else(|e| panic!("flip {flip} to {version}: {e}"));
                molt.wait_status(
                    Duration::from_secs(30),
                    &format!("flip {flip} to {version}"),
                    |s| s.version.as_deref() == Some(version) && s.swaps == flip,
                );
                wait_for_traffic(&acknowledged, BETWEEN_FLIPS, &molt);
            }
        }));
        stop.store(true, Ordering::SeqCst);
        let seen = clients
            .into_iter()
            .map(|c| c.join().expect("client thread panicked"))
            .collect();
        if let Err(panic) = flips {
            std::panic::resume_unwind(panic);
        }
        seen
    });

    let failed: Vec<&String> = seen.iter().flat_map(|s| &s.failed).collect();
    let acked: u64 = seen.iter().map(|s| s.acknowledged).sum();
    let mut by_version = BTreeMap::<&str, u64>::new();
    for (version, n) in seen.iter().flat_map(|s| &s.by_version) {
        *by_version.entry(version).or_default() += n;
    }
    eprintln!(
        "{acked} increments acknowledged across {FLIPS} swaps ({by_version:?}), {} failed, in {:?}",
        failed.len(),
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "{} requests failed, first ones: {:?}\n{}",
        failed.len(),
        &failed[..failed.len().min(10)],
        molt.log()
    );
    assert_eq!(
        by_version.keys().copied().collect::<Vec<_>>(),
        ["1.0.0", "2.0.0"],
        "both versions served"
    );

    let count: u64 = reqwest::blocking::get(molt.url("/count"))
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("GET /count")
        .trim()
        .parse()
        .expect("a number");
    assert_eq!(
        count, acked,
        "every acknowledged increment is counted, nothing more"
    );

    let status = molt.status();
    assert_eq!(status.swaps, FLIPS, "{status:#?}");
    assert_eq!(status.version.as_deref(), Some("1.0.0"));
    assert_eq!(status.pid, molt.addrs.pid, "the same process served throughout");
    let exit = molt.terminate();
    assert!(exit.success(), "molt run exited with {exit}");
}
