//! The merge hook through the engine, on real plugins: a peer's state is absorbed under
//! concurrent load with no call lost; a merge that is refused, panics half way, or meets an
//! app without a merge hook leaves the running state exactly as it was.

use molt_supervisor::engine::{Cause, Engine, EngineConfig, Step};
use molt_supervisor::loader::{Hook, HookErrorKind};
use molt_tests::dir::TestDir;
use molt_tests::drive::{get_text, load, post_n};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counter v2 state (schema 2) of the given keys.
fn schema_2(keys: &[(&str, u64)]) -> Vec<u8> {
    let mut out = (keys.len() as u32).to_le_bytes().to_vec();
    for (key, value) in keys {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

#[test]
fn a_peer_state_is_merged_under_load_and_no_increment_is_lost() {
    let dir = TestDir::new("merge-under-load");
    let engine = Engine::start(
        load("counter_v2", &dir.mkdir("run")),
        None,
        EngineConfig::default(),
    )
    .unwrap();
    post_n(&engine, "/incr/a", 5);
    let done = AtomicU64::new(0);
    let reports = std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..300 {
                    post_n(&engine, "/incr/a", 1);
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        (0..10)
            .map(|_| engine.merge(2, schema_2(&[("a", 1), ("b", 2)])).unwrap())
            .collect::<Vec<_>>()
    });
    let incremented = done.load(Ordering::SeqCst);
    assert_eq!(incremented, 900);
    assert_eq!(get_text(&engine, "/count/a"), (5 + 900 + 10).to_string());
    assert_eq!(get_text(&engine, "/count/b"), "20");
    // A v1 peer's total (schema 1) goes to `default`.
    let report = engine.merge(1, 7u64.to_le_bytes().to_vec()).unwrap();
    assert_eq!(get_text(&engine, "/count/default"), "7");
    assert_eq!(
        (report.schema, report.peer_bytes, report.version.as_str()),
        (1, 8, "2.0.0")
    );
    for r in &reports {
        let s = r.steps;
        assert_eq!(
            s.pause,
            s.drain + s.export + s.import + s.merge + s.switch,
            "{r:?}"
        );
    }
    assert!(engine.generations().is_empty(), "a merge is no version change");
}

#[test]
fn refused_and_panicking_merges_leave_the_running_state_untouched() {
    let dir = TestDir::new("merge-faults");
    let run = dir.mkdir("run");

    let v2 = Engine::start(load("counter_v2", &run), None, EngineConfig::default()).unwrap();
    post_n(&v2, "/incr/a", 3);
    let err = v2.merge(2, vec![1, 0, 0, 0, 9]).unwrap_err();
    assert_eq!(err.step, Step::Merge, "{err}");
    assert!(
        matches!(&err.cause, Cause::Hook(h) if h.hook == Hook::Merge && h.kind == HookErrorKind::Error),
        "{err}"
    );
    let err = v2.merge(3, vec![]).unwrap_err();
    assert!(matches!(err.cause, Cause::CannotMerge { schema: 3, .. }), "{err}");
    assert_eq!(get_text(&v2, "/count/a"), "3");

    let panics = Engine::start(load("fixture_panic_merge", &run), None, EngineConfig::default()).unwrap();
    post_n(&panics, "/incr", 4);
    let err = panics.merge(1, 10u64.to_le_bytes().to_vec()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err.cause, Cause::Hook(h) if h.kind == HookErrorKind::Panic),
        "{text}"
    );
    assert!(
        text.contains("refused at merge")
            && text.contains("panics on purpose")
            && text.contains("still serving"),
        "{text}"
    );
    assert_eq!(
        get_text(&panics, "/count"),
        "4",
        "the half-done merge was dropped with its copy"
    );
    post_n(&panics, "/incr", 1);
    assert_eq!(get_text(&panics, "/count"), "5");

    let none = Engine::start(load("fixture_no_merge", &run), None, EngineConfig::default()).unwrap();
    post_n(&none, "/incr", 2);
    let err = none.merge(1, 10u64.to_le_bytes().to_vec()).unwrap_err();
    assert!(matches!(err.cause, Cause::NoMergeHook), "{err}");
    assert_eq!(err.step, Step::Stage);
    assert!(err.to_string().contains("no merge hook"), "{err}");
    assert_eq!(get_text(&none, "/count"), "2");
}
