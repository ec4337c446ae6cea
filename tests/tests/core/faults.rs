//! Every faulty fixture is refused with an error that names it and the step that failed; the
//! running version keeps serving with its exact state.

use molt_supervisor::engine::{Cause, Engine, EngineConfig, Step, SwapError};
use molt_supervisor::loader::{ElfError, Hook, HookErrorKind, LoadError};
use molt_tests::artifacts::plugin;
use molt_tests::dir::TestDir;
use molt_tests::drive::{call, get_text, load, post_n, try_load};
use std::time::Duration;

/// An engine on counter v1 that has counted to 42.
fn v1_at_42(run: &std::path::Path, config: EngineConfig) -> Engine {
    let engine = Engine::start(load("counter_v1", run), None, config).unwrap();
    post_n(&engine, "/incr", 42);
    engine
}

/// v1 still serves, with its count intact, and counts on.
fn assert_v1_serves_42(engine: &Engine) {
    let served = call(engine, "GET", "/count");
    assert_eq!(
        (&*served.version, served.response.text()),
        ("1.0.0", "42".to_owned())
    );
    post_n(engine, "/incr", 1);
    assert_eq!(get_text(engine, "/count"), "43");
    assert!(engine.generations().is_empty(), "nothing was swapped");
}

/// The error names the fixture's release, the step, and v1 as still serving.
fn assert_names(err: &SwapError, fixture: &str, step: Step) {
    let text = err.to_string();
    assert_eq!(err.step, step, "{text}");
    assert!(err.release.contains(fixture), "{text}");
    assert!(
        text.contains(fixture) && text.contains(&format!("refused at {step}")),
        "{text}"
    );
    assert!(
        text.contains("counter 1.0.0 (libcounter_v1.so) still serving"),
        "{text}"
    );
}

#[test]
fn import_failures_are_refused_and_v1_keeps_its_state() {
    let dir = TestDir::new("import-faults");
    let run = dir.mkdir("run");
    let engine = v1_at_42(&run, EngineConfig::default());

    let err = engine.swap(load("fixture_panic_import", &run)).unwrap_err();
    assert_names(&err, "2.0.0-panic-import", Step::Import);
    assert!(matches!(&err.cause, Cause::Hook(e) if e.kind == HookErrorKind::Panic && e.hook == Hook::Import));
    assert!(
        err.to_string().contains("import_state panics on purpose"),
        "{err}"
    );
    assert_v1_serves_42(&engine);

    let engine = v1_at_42(&run, EngineConfig::default());
    let err = engine.swap(load("fixture_error_import", &run)).unwrap_err();
    assert_names(&err, "2.0.0-error-import", Step::Import);
    assert!(matches!(&err.cause, Cause::Hook(e) if e.kind == HookErrorKind::Error));
    assert!(
        err.to_string().contains("import_state refuses on purpose"),
        "{err}"
    );
    assert_v1_serves_42(&engine);
}

#[test]
fn a_hanging_import_hits_the_deadline() {
    let dir = TestDir::new("hang-import");
    let run = dir.mkdir("run");
    let config = EngineConfig {
        hook_timeout: Duration::from_millis(300),
        ..EngineConfig::default()
    };
    let engine = v1_at_42(&run, config);
    let err = engine.swap(load("fixture_hang_import", &run)).unwrap_err();
    assert_names(&err, "2.0.0-hang-import", Step::Import);
    assert!(
        matches!(err.cause, Cause::Deadline { hook: Hook::Import, timeout } if timeout == config.hook_timeout)
    );
    // The abandoned import still sleeps inside the fixture's library, which stays mapped.
    assert_v1_serves_42(&engine);
}

#[test]
fn a_schema_nobody_shares_is_refused_at_stage() {
    let dir = TestDir::new("wrong-schema");
    let run = dir.mkdir("run");
    let engine = v1_at_42(&run, EngineConfig::default());
    let err = engine.swap(load("fixture_wrong_schema", &run)).unwrap_err();
    assert_names(&err, "3.0.0-wrong-schema", Step::Stage);
    assert!(
        matches!(&err.cause, Cause::NoSharedSchema { exports, imports } if exports == &[1] && imports == &[3]),
        "{err}"
    );
    assert_v1_serves_42(&engine);
}

#[test]
fn another_app_is_refused_at_stage() {
    let dir = TestDir::new("other-app");
    let run = dir.mkdir("run");
    let engine = v1_at_42(&run, EngineConfig::default());
    let kv = load("kv_v1", &run);
    let err = engine.swap(kv.clone()).unwrap_err();
    assert_eq!(err.step, Step::Stage);
    assert!(
        matches!(&err.cause, Cause::NameMismatch { running, target } if running == "counter" && target == &kv.info().name)
    );
    assert_v1_serves_42(&engine);
}

#[test]
fn broken_libraries_are_refused_by_the_loader() {
    let dir = TestDir::new("broken-libraries");
    let run = dir.mkdir("run");
    let engine = v1_at_42(&run, EngineConfig::default());

    let err = try_load("fixture_wrong_abi", &run).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::AbiVersion {
                found: 999,
                supported: &[1, 2],
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(
            "libfixture_wrong_abi.so: app counter 2.0.0-wrong-abi was built against molt ABI version 999, \
             this supervisor loads ABI versions [1, 2]; rebuild it against molt-abi 0.1.0 (ABI 2)"
        ),
        "{text}"
    );

    let err = try_load("fixture_no_entry", &run).unwrap_err();
    // Refused by the ELF pre-check, before anything was opened.
    assert!(
        matches!(
            err,
            LoadError::Elf {
                source: ElfError::NoEntry,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&plugin("fixture_no_entry").display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("molt_app_descriptor"), "{err}");

    // Nothing of that touched what runs.
    assert_v1_serves_42(&engine);
}

#[test]
fn a_panicking_handler_answers_500_and_serving_goes_on() {
    let dir = TestDir::new("panic-handle");
    let run = dir.mkdir("run");
    let engine = v1_at_42(&run, EngineConfig::default());
    let report = engine.swap(load("fixture_panic_handle", &run)).unwrap();
    assert_eq!(report.to, "1.1.0-panic-handle");
    for _ in 0..3 {
        let boom = call(&engine, "GET", "/boom").response;
        assert_eq!(boom.status, 500);
        // The client gets a request id, never the panic text (that goes to the log).
        let text = boom.text();
        assert!(
            !text.contains("on purpose") && !text.contains("panicked"),
            "{text}"
        );
        let id = boom
            .headers
            .iter()
            .find(|(name, _)| name == "x-molt-request-id")
            .map(|(_, value)| value.clone())
            .expect("a request id header");
        assert_eq!(text, format!("internal error (request id {id})\n"));
        post_n(&engine, "/incr", 1);
    }
    assert_eq!(get_text(&engine, "/count"), "45");
    assert_eq!(engine.rollback().unwrap().to, "1.0.0");
    assert_eq!(get_text(&engine, "/count"), "45");
}

#[test]
fn an_unhealthy_version_says_so() {
    let dir = TestDir::new("unhealthy");
    let run = dir.mkdir("run");
    let engine = v1_at_42(&run, EngineConfig::default());
    assert_eq!(engine.health(), Ok(()));
    engine.swap(load("fixture_unhealthy", &run)).unwrap();
    let err = engine.health().unwrap_err();
    assert_eq!((err.hook, err.kind), (Hook::Health, HookErrorKind::Error));
    assert!(err.message.contains("health fails on purpose"), "{err}");
    assert_eq!(call(&engine, "GET", "/count").response.status, 500);
    // Probation would roll back: the state comes back to v1 intact.
    engine.rollback().unwrap();
    assert_v1_serves_42(&engine);
}

#[test]
fn rollback_is_refused_when_the_current_version_cannot_downgrade() {
    let dir = TestDir::new("no-downgrade");
    let run = dir.mkdir("run");
    let engine = v1_at_42(&run, EngineConfig::default());
    engine.swap(load("fixture_no_downgrade", &run)).unwrap();
    post_n(&engine, "/incr", 1);
    let err = engine.rollback().unwrap_err();
    let text = err.to_string();
    assert_eq!(err.step, Step::Stage, "{text}");
    assert!(
        text.starts_with("rollback to counter 1.0.0 (libcounter_v1.so) refused at stage"),
        "{text}"
    );
    assert!(text.contains("exports [3], the target imports [1]"), "{text}");
    assert!(
        text.contains("3.0.0-no-downgrade (libfixture_no_downgrade.so) still serving"),
        "{text}"
    );
    let served = call(&engine, "GET", "/count");
    assert_eq!(
        (&*served.version, served.response.text()),
        ("3.0.0-no-downgrade", "43".to_owned())
    );
    assert_eq!(engine.generations().len(), 1, "v1 is still kept");
}
