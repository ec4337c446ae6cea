//! Tables (ABI version 2) through the real engine and real built plugins: a code-only swap
//! hands the same tables over, a record schema change converts records while writers keep
//! writing, rollback converts them back, and a record the hook refuses refuses the swap.

use molt_abi::Request;
use molt_supervisor::engine::{Cause, Engine, EngineConfig, Step};
use molt_tests::dir::TestDir;
use molt_tests::drive::{call, get_text, load};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn put(engine: &Engine, key: &str, value: &str) -> u16 {
    engine
        .handle(&Request::new(
            "PUT",
            &format!("/kv/{key}"),
            "",
            &[],
            value.as_bytes(),
        ))
        .response
        .status
}

fn kv_v3_with(run: &std::path::Path, keys: u64) -> Engine {
    let engine = Engine::start(load("kv_v3", run), None, EngineConfig::default()).unwrap();
    let served = call(&engine, "POST", &format!("/preload?keys={keys}&size=16"));
    assert_eq!(served.response.status, 200, "{}", served.response.text());
    engine
}

#[test]
fn a_code_only_swap_hands_over_the_same_tables() {
    let dir = TestDir::new("tables-code-only");
    let run = dir.mkdir("run");
    let engine = kv_v3_with(&run, 5000);
    assert_eq!(put(&engine, "a", "alpha"), 201);
    let report = engine.swap(load("kv_v3", &run)).unwrap();
    let tables = report.tables.expect("records in tables");
    assert_eq!(
        (tables.records, tables.schema, tables.validated),
        (5001, (1, 1), 0)
    );
    assert_eq!(report.state_bytes, 0, "nothing crossed as bytes");
    assert_eq!(get_text(&engine, "/kv/a"), "alpha");
    let expected: Vec<u8> = (0..16).map(|j| b'a' + ((4999 + j) % 26) as u8).collect();
    assert_eq!(get_text(&engine, "/kv/k4999").as_bytes(), expected);
    // And back: the kept generation takes the same tables again.
    engine.rollback().unwrap();
    assert_eq!(get_text(&engine, "/kv/a"), "alpha");
}

#[test]
fn bytes_state_moves_into_tables_and_is_never_dropped() {
    let dir = TestDir::new("tables-from-bytes");
    let run = dir.mkdir("run");
    let engine = Engine::start(load("kv_v2", &run), None, EngineConfig::default()).unwrap();
    assert_eq!(put(&engine, "x", "1"), 201);
    assert_eq!(put(&engine, "x", "2"), 200);
    engine.swap(load("kv_v4", &run)).unwrap();
    assert_eq!(get_text(&engine, "/kv/x"), "2");
    assert_eq!(get_text(&engine, "/kv/x/writes"), "2", "kv v2's counter kept");
    // kv v2 keeps no tables: going back would drop the records, so it is refused.
    let err = engine.rollback().unwrap_err();
    assert_eq!(err.step, Step::Stage, "{err}");
    assert!(
        err.to_string().contains("kv 4.0.0 (libkv_v4.so) still serving"),
        "{err}"
    );
    assert_eq!(get_text(&engine, "/kv/x"), "2");
}

#[test]
fn a_schema_change_converts_records_under_writes_and_rolls_back() {
    let dir = TestDir::new("tables-schema-change");
    let run = dir.mkdir("run");
    let engine = kv_v3_with(&run, 20_000);
    let stop = AtomicBool::new(false);
    let (acknowledged, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let (up, down) = std::thread::scope(|s| {
        for writer in 0..4 {
            let (engine, stop, acknowledged, failed) = (&engine, &stop, &acknowledged, &failed);
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) || i < 200 {
                    let status = put(engine, &format!("w{writer}-{i}"), &i.to_string());
                    if status == 201 {
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    i += 1;
                }
            });
        }
        while acknowledged.load(Ordering::SeqCst) < 400 {
            std::thread::yield_now();
        }
        let up = engine.swap(load("kv_v4", &run)).unwrap();
        let mid = acknowledged.load(Ordering::SeqCst);
        while acknowledged.load(Ordering::SeqCst) < mid + 400 {
            std::thread::yield_now();
        }
        let down = engine.rollback().unwrap();
        stop.store(true, Ordering::SeqCst);
        (up, down)
    });
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    let up_tables = up.tables.unwrap();
    assert_eq!(up_tables.schema, (1, 2));
    assert!(up_tables.validated >= 20_000, "{up_tables:?}");
    assert_eq!(down.tables.unwrap().schema, (2, 1));
    // Every acknowledged write is there, in kv v3's schema again.
    let keys = 20_000 + acknowledged.load(Ordering::SeqCst);
    let stats = get_text(&engine, "/stats");
    assert!(
        stats.starts_with(&format!("{{\"keys\":{keys},")),
        "{stats} (want {keys} keys)"
    );
    assert_eq!(engine.active().info().version, "3.0.0");
    assert_eq!(engine.tables().schema(), 1);
}

#[test]
fn a_record_the_hook_refuses_refuses_the_swap_naming_the_key() {
    let dir = TestDir::new("tables-bad-record");
    let run = dir.mkdir("run");
    let engine = kv_v3_with(&run, 1000);
    assert_eq!(put(&engine, "poison", "x"), 201);
    let err = engine.swap(load("fixture_bad_record", &run)).unwrap_err();
    assert_eq!(err.step, Step::Tables, "{err}");
    let text = err.to_string();
    assert!(matches!(err.cause, Cause::Record(_)), "{text}");
    assert!(
        text.contains("record \"poison\" of table kv") && text.contains("this record cannot be upgraded"),
        "{text}"
    );
    assert!(text.contains("kv 3.0.0 (libkv_v3.so) still serving"), "{text}");
    // kv v3 serves on, the tables untouched and in its schema.
    assert_eq!(get_text(&engine, "/kv/poison"), "x");
    assert_eq!(engine.tables().schema(), 1);
    assert!(engine.tables().pending().is_none());
    // Without the poisoned key, the same release goes through.
    assert_eq!(call(&engine, "DELETE", "/kv/poison").response.status, 204);
    engine.swap(load("fixture_bad_record", &run)).unwrap();
    assert_eq!(get_text(&engine, "/kv/k7").len(), 16);
}

#[test]
fn a_record_hook_past_the_deadline_is_abandoned_and_refuses_naming_the_key() {
    let dir = TestDir::new("tables-slow-record");
    let run = dir.mkdir("run");
    let config = EngineConfig {
        hook_timeout: std::time::Duration::from_millis(300),
        ..EngineConfig::default()
    };
    let engine = Engine::start(load("kv_v3", &run), None, config).unwrap();
    assert_eq!(
        call(&engine, "POST", "/preload?keys=500&size=16").response.status,
        200
    );
    assert_eq!(put(&engine, "slow", "sleep:2500"), 201);
    let started = std::time::Instant::now();
    let err = engine.swap(load("fixture_bad_record", &run)).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.step, Step::Tables, "{text}");
    assert!(matches!(err.cause, Cause::RecordDeadline(_)), "{text}");
    assert!(
        text.contains("record \"slow\" of table kv") && text.contains("upgrade_record did not return within"),
        "{text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2000),
        "waited for the hook"
    );
    // kv v3 serves on, its tables untouched, and tracking writes no more.
    assert_eq!(get_text(&engine, "/kv/slow"), "sleep:2500");
    assert_eq!(put(&engine, "k1", "after"), 200);
    assert_eq!(engine.tables().schema(), 1);
    assert!(engine.tables().pending().is_none());
    // While the abandoned call runs, another pass is refused rather than run beside it.
    assert_eq!(call(&engine, "DELETE", "/kv/slow").response.status, 204);
    let err = engine.swap(load("fixture_bad_record", &run)).unwrap_err();
    assert!(matches!(err.cause, Cause::RecordHookRunning { .. }), "{err}");
    assert!(err.to_string().contains("record \"slow\""), "{err}");
    // Once it returned, the same release goes through.
    std::thread::sleep(std::time::Duration::from_millis(2600).saturating_sub(started.elapsed()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let report = loop {
        match engine.swap(load("fixture_bad_record", &run)) {
            Ok(report) => break report,
            Err(e)
                if matches!(e.cause, Cause::RecordHookRunning { .. })
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(report.tables.expect("records").schema, (1, 2));
    assert_eq!(get_text(&engine, "/kv/k1"), "after");
}
