//! Swaps and rollbacks of real libraries under concurrent load.

use molt_supervisor::engine::{Engine, EngineConfig, SwapReport};
use molt_tests::dir::TestDir;
use molt_tests::drive::{call, get_text, load, post_n};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

const THREADS: usize = 8;
const CALLS: u64 = 1000;

/// What the callers of [`under_load`] saw.
#[derive(Debug, Default)]
struct Load {
    /// Calls answered 200.
    acknowledged: u64,
    /// Calls answered anything else, with the answer.
    failed: Vec<String>,
    /// Acknowledged calls per version that served them.
    by_version: BTreeMap<String, u64>,
}

/// Runs `action` (a swap, a rollback) while `THREADS` threads `POST /incr`. Each thread makes
/// at least `CALLS` calls and keeps calling until it has made one call that started after
/// `action` returned, so the action always overlaps live traffic and the new version always
/// serves some of it, whatever the scheduling. `action` starts once a quarter of the minimum
/// traffic is acknowledged.
fn under_load<R: Send>(engine: &Engine, action: impl FnOnce() -> R + Send) -> (R, Load) {
    let acknowledged = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let (result, threads) = thread::scope(|s| {
        let callers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut load = Load::default();
                    let mut calls = 0;
                    loop {
                        let after_action = done.load(Ordering::SeqCst);
                        let served = call(engine, "POST", "/incr");
                        calls += 1;
                        if served.response.status == 200 {
                            load.acknowledged += 1;
                            *load.by_version.entry(served.version.to_string()).or_default() += 1;
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        } else {
                            load.failed.push(format!(
                                "{}: {}",
                                served.response.status,
                                served.response.text()
                            ));
                        }
                        if calls >= CALLS && after_action {
                            break load;
                        }
                    }
                })
            })
            .collect();
        while acknowledged.load(Ordering::SeqCst) < THREADS as u64 * CALLS / 4 {
            thread::yield_now();
        }
        let result = action();
        done.store(true, Ordering::SeqCst);
        let threads: Vec<Load> = callers
            .into_iter()
            .map(|t| t.join().expect("caller panicked"))
            .collect();
        (result, threads)
    });
    let mut total = Load::default();
    for load in threads {
        total.acknowledged += load.acknowledged;
        total.failed.extend(load.failed);
        for (version, n) in load.by_version {
            *total.by_version.entry(version).or_default() += n;
        }
    }
    (result, total)
}

fn count(engine: &Engine) -> u64 {
    get_text(engine, "/count").parse().expect("a number")
}

/// The pause is reported, positive, and exactly the sum of the paused steps.
fn assert_pause(report: &SwapReport) {
    assert!(report.steps.pause > std::time::Duration::ZERO, "{report:?}");
    assert_eq!(
        report.steps.pause,
        report.steps.drain
            + report.steps.tables
            + report.steps.export
            + report.steps.import
            + report.steps.switch,
        "{report:?}"
    );
    eprintln!(
        "{} -> {}: pause {:?} (drain {:?}, export {:?}, import {:?}, switch {:?}), stage {:?}",
        report.from,
        report.to,
        report.steps.pause,
        report.steps.drain,
        report.steps.export,
        report.steps.import,
        report.steps.switch,
        report.steps.stage
    );
}

#[test]
fn swap_and_rollback_under_load_lose_nothing() {
    let dir = TestDir::new("swap-under-load");
    let run = dir.mkdir("run");
    let engine = Engine::start(load("counter_v1", &run), None, EngineConfig::default()).unwrap();

    // 8 threads x 1000 increments on v1 alone.
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| post_n(&engine, "/incr", CALLS));
        }
    });
    assert_eq!(count(&engine), THREADS as u64 * CALLS);

    // The upgrade, in the middle of the same load.
    let v2 = load("counter_v2", &run);
    let (report, upgrade) = under_load(&engine, || engine.swap(v2));
    let report = report.expect("v1 -> v2");
    assert!(upgrade.failed.is_empty(), "calls failed: {:?}", upgrade.failed);
    assert_eq!(
        (report.from.as_str(), report.to.as_str(), report.schema),
        ("1.0.0", "2.0.0", 1)
    );
    assert_pause(&report);
    let expected = THREADS as u64 * CALLS + upgrade.acknowledged;
    assert_eq!(
        count(&engine),
        expected,
        "every acknowledged increment is counted"
    );
    assert!(
        upgrade.by_version["1.0.0"] >= THREADS as u64 * CALLS / 4,
        "{:?}",
        upgrade.by_version
    );
    assert!(
        upgrade.by_version["2.0.0"] >= THREADS as u64,
        "{:?}",
        upgrade.by_version
    );

    // v2's own routes: v1's total became key `default`.
    assert_eq!(get_text(&engine, "/count/default"), expected.to_string());
    assert_eq!(get_text(&engine, "/count/apples"), "0");
    post_n(&engine, "/incr/apples", 2);
    assert_eq!(get_text(&engine, "/count/apples"), "2");
    let expected = expected + 2;
    assert_eq!(count(&engine), expected, "GET /count is the sum over keys");

    // The rollback, under load too: v2 exports its sum in schema 1.
    let (report, downgrade) = under_load(&engine, || engine.rollback());
    let report = report.expect("rollback to v1");
    assert!(
        downgrade.failed.is_empty(),
        "calls failed: {:?}",
        downgrade.failed
    );
    assert_eq!(
        (report.from.as_str(), report.to.as_str(), report.schema),
        ("2.0.0", "1.0.0", 1)
    );
    assert_pause(&report);
    assert_eq!(count(&engine), expected + downgrade.acknowledged);
    assert_eq!(&*call(&engine, "GET", "/count").version, "1.0.0");
    assert_eq!(
        call(&engine, "GET", "/count/default").response.status,
        404,
        "v1 has no keys"
    );
    assert!(
        engine.generations().is_empty(),
        "v2 is forgotten after rolling away from it"
    );
}

#[test]
fn every_swap_reports_its_pause() {
    let dir = TestDir::new("pauses");
    let run = dir.mkdir("run");
    let (v1, v2) = (load("counter_v1", &run), load("counter_v2", &run));
    let engine = Engine::start(v1.clone(), None, EngineConfig::default()).unwrap();
    post_n(&engine, "/incr", 10);
    for round in 0..5u64 {
        assert_pause(&engine.swap(v2.clone()).unwrap());
        post_n(&engine, "/incr/k", 1);
        let back = engine.swap(v1.clone()).unwrap();
        assert_pause(&back);
        assert_eq!(back.state_bytes, 8, "schema 1 is 8 bytes");
        assert_eq!(count(&engine), 10 + round + 1);
    }
    let kept: Vec<String> = engine
        .generations()
        .iter()
        .map(|p| p.info().version.clone())
        .collect();
    assert_eq!(
        kept.len(),
        EngineConfig::default().generations,
        "bounded: {kept:?}"
    );
    let state = engine.export_state().unwrap().state;
    assert_eq!(
        (state.schema, state.bytes.to_vec()),
        (1, 15u64.to_le_bytes().to_vec())
    );
}
