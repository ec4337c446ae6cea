//! Engine tests on in-process apps ([`Plugin::from_app`]): the real shims and function
//! pointers, no library to build. Real libraries are exercised by `molt-tests`.

use super::test_apps::*;
use super::*;
use molt_abi::App;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

fn start<A: App>(config: EngineConfig) -> Engine {
    Engine::start(Plugin::from_app::<A>("1.0.0"), None, config).unwrap()
}

fn call(engine: &Engine, method: &str, path: &str) -> Served {
    engine.handle(&Request::new(method, path, "", &[], b""))
}

fn count(engine: &Engine) -> String {
    call(engine, "GET", "/count").response.text()
}

fn incr(engine: &Engine, n: u64) {
    for _ in 0..n {
        assert_eq!(call(engine, "POST", "/incr").response.status, 200);
    }
}

fn versions(engine: &Engine) -> Vec<String> {
    engine
        .generations()
        .iter()
        .map(|p| p.info().version.clone())
        .collect()
}

#[test]
fn swap_and_rollback_move_the_state_and_report_the_pause() {
    let engine = start::<V1>(EngineConfig::default());
    incr(&engine, 3);
    let report = engine.swap(Plugin::from_app::<V2>("2.0.0")).unwrap();
    assert_eq!((report.from.as_str(), report.to.as_str()), ("1.0.0", "2.0.0"));
    assert_eq!((report.schema, report.state_bytes), (1, 8));
    assert!(report.steps.pause > Duration::ZERO);
    assert_eq!(
        report.steps.pause,
        report.steps.drain
            + report.steps.tables
            + report.steps.export
            + report.steps.import
            + report.steps.switch
    );
    let served = call(&engine, "GET", "/count");
    assert_eq!(
        (served.response.text(), &*served.version),
        ("3".to_owned(), "2.0.0")
    );
    assert_eq!(engine.active().info().version, "2.0.0");
    assert_eq!(versions(&engine), ["1.0.0"]);

    incr(&engine, 1);
    let back = engine.rollback().unwrap();
    assert_eq!(
        (back.to.as_str(), back.schema),
        ("1.0.0", 1),
        "v2 downgrades in schema 1"
    );
    assert_eq!(count(&engine), "4");
    assert!(
        versions(&engine).is_empty(),
        "the rolled-from version is forgotten"
    );
    let err = engine.rollback().unwrap_err();
    assert!(matches!(err.cause, Cause::NoPrevious), "{err}");
}

#[test]
fn rollback_walks_back_one_version_at_a_time() {
    let engine = start::<V1>(EngineConfig::default());
    engine.swap(Plugin::from_app::<V2>("2.0.0")).unwrap();
    engine.swap(Plugin::from_app::<V2>("2.1.0")).unwrap();
    assert_eq!(versions(&engine), ["2.0.0", "1.0.0"]);
    assert_eq!(engine.rollback().unwrap().to, "2.0.0");
    assert_eq!(engine.rollback().unwrap().to, "1.0.0");
    assert!(engine.rollback().is_err());
    let bounded = start::<V1>(EngineConfig {
        generations: 1,
        ..EngineConfig::default()
    });
    bounded.swap(Plugin::from_app::<V2>("2.0.0")).unwrap();
    bounded.swap(Plugin::from_app::<V2>("2.1.0")).unwrap();
    assert_eq!(versions(&bounded), ["2.0.0"]);
}

#[test]
fn stage_is_not_in_the_pause() {
    let engine = start::<V1>(EngineConfig::default());
    incr(&engine, 2);
    let slow_stage = Duration::from_millis(200);
    let report = engine
        .swap_with_stage_hook(Plugin::from_app::<V2>("2.0.0"), || {
            thread::sleep(slow_stage);
            // Traffic flows while staging: this call is served at once, by the old version.
            let served = call(&engine, "POST", "/incr");
            assert_eq!(
                (served.response.text(), &*served.version),
                ("3".to_owned(), "1.0.0")
            );
        })
        .unwrap();
    assert!(report.steps.stage >= slow_stage, "{report:?}");
    assert_eq!(
        report.steps.pause,
        report.steps.drain
            + report.steps.tables
            + report.steps.export
            + report.steps.import
            + report.steps.switch
    );
    assert!(
        report.steps.pause < report.steps.stage,
        "the slow stage is not in the pause: {report:?}"
    );
    assert_eq!(count(&engine), "3");
}

#[test]
fn writer_preference_new_calls_queue_behind_a_waiting_swap() {
    let latch = &LATCHES[0];
    let engine = start::<V1>(EngineConfig {
        drain_timeout: Duration::from_secs(60),
        ..EngineConfig::default()
    });
    incr(&engine, 5);
    thread::scope(|s| {
        let in_flight = s.spawn(|| call(&engine, "GET", "/block/0"));
        latch.wait_entered();
        let swap = s.spawn(|| engine.swap(Plugin::from_app::<V2>("2.0.0")));
        // Wait until the swap holds the writer bit and waits for the in-flight call to drain.
        while !engine.gate.is_locked_exclusive() {
            thread::yield_now();
        }
        // The policy itself: one reader holds the gate, yet no new reader may enter.
        assert!(
            engine.gate.try_read().is_none(),
            "a waiting writer must keep new readers out"
        );
        let queued = s.spawn(|| call(&engine, "POST", "/incr"));
        assert!(!queued.is_finished(), "a call during the pause waits");
        latch.release();
        assert_eq!(
            &*in_flight.join().unwrap().version,
            "1.0.0",
            "in-flight call drained on v1"
        );
        let report = swap.join().unwrap().unwrap();
        let queued = queued.join().unwrap();
        assert_eq!(queued.response.status, 200, "queued, not refused");
        assert_eq!(
            (&*queued.version, queued.response.text()),
            ("2.0.0", "6".to_owned())
        );
        assert!(report.steps.drain <= report.steps.pause);
    });
}

#[test]
fn drain_deadline_refuses_and_changes_nothing() {
    let latch = &LATCHES[1];
    let engine = start::<V1>(EngineConfig {
        drain_timeout: Duration::from_millis(100),
        ..EngineConfig::default()
    });
    incr(&engine, 7);
    thread::scope(|s| {
        let stuck = s.spawn(|| call(&engine, "GET", "/block/1"));
        latch.wait_entered();
        let err = engine.swap(Plugin::from_app::<V2>("2.0.0")).unwrap_err();
        assert_eq!(err.step, Step::Drain, "{err}");
        assert!(matches!(err.cause, Cause::DrainTimeout { .. }));
        assert_eq!(err.serving.as_deref(), Some(engine.active().id()));
        // The gate is open again while the stuck call still runs.
        incr(&engine, 1);
        latch.release();
        assert_eq!(stuck.join().unwrap().response.text(), "released");
    });
    assert_eq!(count(&engine), "8");
    assert_eq!(engine.active().info().version, "1.0.0");
    assert!(versions(&engine).is_empty());
}

#[test]
fn refused_at_stage_before_pausing() {
    let engine = start::<V1>(EngineConfig::default());
    incr(&engine, 2);
    let err = engine
        .swap(Plugin::from_app::<Counter<SOther>>("9.0.0"))
        .unwrap_err();
    assert_eq!(err.step, Step::Stage);
    assert!(matches!(err.cause, Cause::NameMismatch { .. }), "{err}");
    let err = engine.swap(Plugin::from_app::<V3>("3.0.0")).unwrap_err();
    assert_eq!(err.step, Step::Stage);
    let text = err.to_string();
    assert!(
        text.contains("exports [1]") && text.contains("imports [3]"),
        "{text}"
    );
    assert!(
        text.contains("counter 1.0.0") && text.contains("still serving"),
        "{text}"
    );
    assert_eq!(count(&engine), "2");
}

#[test]
fn rollback_refused_when_the_current_version_cannot_downgrade() {
    let engine = start::<V1>(EngineConfig::default());
    incr(&engine, 4);
    engine.swap(Plugin::from_app::<NoDown>("3.0.0")).unwrap();
    let err = engine.rollback().unwrap_err();
    assert_eq!((err.action, err.step), (Action::Rollback, Step::Stage));
    assert!(
        matches!(&err.cause, Cause::NoSharedSchema { exports, imports } if exports == &[3] && imports == &[1]),
        "{err}"
    );
    assert_eq!(engine.active().info().version, "3.0.0", "it stays, and says so");
    assert_eq!(versions(&engine), ["1.0.0"], "v1 is still kept");
    assert_eq!(count(&engine), "4");
}

#[test]
fn failing_hooks_leave_the_old_version_serving() {
    let engine = start::<V1>(EngineConfig {
        hook_timeout: Duration::from_millis(100),
        ..EngineConfig::default()
    });
    incr(&engine, 9);
    let fails = engine
        .swap(Plugin::from_app::<FailsImport>("2.0.0-fails"))
        .unwrap_err();
    let panics = engine
        .swap(Plugin::from_app::<PanicsImport>("2.0.0-panics"))
        .unwrap_err();
    let hangs = engine
        .swap(Plugin::from_app::<HangsImport>("2.0.0-hangs"))
        .unwrap_err();
    assert!(matches!(&fails.cause, Cause::Hook(e) if e.kind == crate::loader::HookErrorKind::Error));
    assert!(matches!(&panics.cause, Cause::Hook(e) if e.kind == crate::loader::HookErrorKind::Panic));
    assert!(matches!(
        hangs.cause,
        Cause::Deadline {
            hook: Hook::Import,
            ..
        }
    ));
    for err in [&fails, &panics, &hangs] {
        assert_eq!(err.step, Step::Import, "{err}");
        assert!(err.to_string().contains("counter 1.0.0"), "{err}");
        assert_eq!(count(&engine), "9");
    }
    assert!(
        panics.to_string().contains("import panics on purpose"),
        "{panics}"
    );
    assert!(versions(&engine).is_empty());
}

#[test]
fn a_panicking_call_answers_500_and_the_next_call_works() {
    let engine = start::<V1>(EngineConfig::default());
    incr(&engine, 1);
    let boom = call(&engine, "GET", "/boom").response;
    assert_eq!(boom.status, 500);
    assert!(
        boom.text().starts_with("internal error (request id "),
        "{}",
        boom.text()
    );
    assert!(
        !boom.text().contains("on purpose"),
        "the panic text stays in the log"
    );
    incr(&engine, 1);
    assert_eq!(count(&engine), "2");
    assert_eq!(engine.health(), Ok(()));
}

#[test]
fn start_from_state_and_export_it() {
    let state = State {
        schema: 1,
        bytes: 5u64.to_le_bytes().to_vec().into(),
    };
    let engine = Engine::start(
        Plugin::from_app::<V2>("2.0.0"),
        Some(state),
        EngineConfig::default(),
    )
    .unwrap();
    assert_eq!(count(&engine), "5");
    let exported = engine.export_state().unwrap().state;
    assert_eq!(
        (exported.schema, exported.bytes),
        (2, 5u64.to_le_bytes().to_vec().into())
    );
    let wrong = State {
        schema: 2,
        bytes: Vec::new().into(),
    };
    let err = Engine::start(
        Plugin::from_app::<V1>("1.0.0"),
        Some(wrong),
        EngineConfig::default(),
    )
    .unwrap_err();
    assert_eq!((err.step, err.serving.as_deref()), (Step::Stage, None));
    assert!(err.to_string().contains("nothing is serving"), "{err}");
    let err = Engine::start(
        Plugin::from_app::<V1>("1.0.0"),
        Some(State {
            schema: 1,
            bytes: vec![1].into(),
        }),
        EngineConfig::default(),
    )
    .unwrap_err();
    assert_eq!(err.step, Step::Import, "{err}");
}

#[test]
fn concurrent_calls_across_swaps_lose_nothing() {
    let engine = start::<V1>(EngineConfig::default());
    let acknowledged = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..500 {
                    let served = call(&engine, "POST", "/incr");
                    assert_eq!(served.response.status, 200);
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        for _ in 0..3 {
            engine.swap(Plugin::from_app::<V2>("2.0.0")).unwrap();
            engine.rollback().unwrap();
        }
    });
    assert_eq!(count(&engine), acknowledged.load(Ordering::SeqCst).to_string());
    assert_eq!(count(&engine), "2000");
}

#[test]
fn tick_runs_on_the_active_version_only_and_never_during_a_pause() {
    let latch = &LATCHES[3];
    let engine = start::<V1>(EngineConfig {
        drain_timeout: Duration::from_secs(60),
        ..EngineConfig::default()
    });
    incr(&engine, 1);
    assert!(matches!(engine.tick().0, Ticked::NoHook), "v1 has no tick hook");
    assert_eq!(count(&engine), "1");

    engine.swap(Plugin::from_app::<Ticks>("2.0.0")).unwrap();
    assert_eq!(engine.tick_interval_ms(), 10);
    assert!(matches!(engine.tick().0, Ticked::Done));
    assert_eq!(count(&engine), "2", "the tick ran on the state v2 imported");
    // A panic in the hook is contained: reported, and the app serves (and ticks) on.
    let (failed, release) = engine.tick();
    match failed {
        Ticked::Failed(e) => {
            assert_eq!(e.hook, crate::loader::Hook::Tick);
            assert!(e.to_string().contains("tick panics on purpose at 3"), "{e}");
        }
        other => panic!("expected a failed tick, got {other:?}"),
    }
    assert!(release.contains("2.0.0"), "{release}");
    assert!(matches!(engine.tick().0, Ticked::Done));
    assert_eq!(count(&engine), "4");

    // While a swap waits for the gate (an in-flight call holds it), a tick is skipped.
    thread::scope(|s| {
        let in_flight = s.spawn(|| call(&engine, "GET", "/block/3"));
        latch.wait_entered();
        let swap = s.spawn(|| engine.swap(Plugin::from_app::<V1>("1.0.0")));
        while !engine.gate.is_locked_exclusive() {
            thread::yield_now();
        }
        assert!(matches!(engine.tick().0, Ticked::Skipped));
        latch.release();
        in_flight.join().unwrap();
        swap.join().unwrap().unwrap();
    });
    assert_eq!(count(&engine), "4", "the skipped tick changed nothing");
    assert!(matches!(engine.tick().0, Ticked::NoHook), "back on v1: no ticks");
}
