//! Boot that always serves something (issue 10): a restart after refused pushes serves the
//! snapshot's release with its state; a release whose load killed the process is marked bad
//! and skipped on the next start.

use super::*;

#[test]
fn refused_refused_restart_serves_the_snapshots_release_with_the_state() {
    let env = Env::new("boot-refused");
    let molt = env.start(std::iter::empty::<String>());
    let volume = path(&env.volume);
    ok(&["push", &lib("counter_v1"), "--volume", &volume]);
    let http = http();
    incr(&http, &molt, 7, "1.0.0");
    // Two refused releases left named by `current` (not waited for, so nobody puts it back).
    for fixture in ["fixture_panic_import", "fixture_error_import"] {
        ok(&["push", &lib(fixture), "--volume", &volume, "--no-wait"]);
        let version = env.current();
        molt.wait_status(SHOW_TIMEOUT, "the refusal", |s| {
            s.last_refusal
                .as_ref()
                .is_some_and(|r| r.release.ends_with(&version))
        });
    }
    assert_eq!(env.current(), "2.0.0-error-import");
    assert_eq!(count(&http, &molt), (7, "1.0.0".to_owned()));
    drop(http);
    assert!(molt.terminate().success());

    let again = env.start(std::iter::empty::<String>());
    let status = again.wait_for_version("1.0.0");
    assert!(status.ready, "{status:#?}");
    let http = super::http();
    assert_eq!(count(&http, &again), (7, "1.0.0".to_owned()), "{}", again.log());
    assert!(again.log().contains("could not start"), "{}", again.log());
    assert_eq!(
        env.current(),
        "2.0.0-error-import",
        "the operator's pointer is left alone"
    );
}

#[test]
fn a_release_that_crashes_the_process_on_load_is_skipped_on_the_next_start() {
    let env = Env::new("boot-crash");
    let molt = env.start(std::iter::empty::<String>());
    let volume = path(&env.volume);
    ok(&["push", &lib("counter_v1"), "--volume", &volume]);
    let http = http();
    incr(&http, &molt, 3, "1.0.0");
    drop(http);
    assert!(molt.terminate().success());

    // `current` names a release whose import aborts the process.
    ok(&["push", &lib("fixture_abort_import"), "--volume", &volume]);
    assert_eq!(env.current(), "2.0.0-abort-import");
    let run = env.dir.mkdir("crash-run");
    let out = molt_within(
        &[
            "run",
            "--volume",
            &volume,
            "--app",
            APP,
            "--state-dir",
            &path(&env.state),
            "--run-dir",
            &path(&run),
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ],
        Duration::from_secs(60),
    );
    assert!(
        !out.status.success(),
        "the abort fixture should kill molt run: {out:?}"
    );

    // The next start recovers by itself: the release is bad, v1 serves the snapshot.
    let again = env.start(std::iter::empty::<String>());
    again.wait_for_version("1.0.0");
    let http = super::http();
    assert_eq!(count(&http, &again), (3, "1.0.0".to_owned()), "{}", again.log());
    let listing = ok(&["releases", "--volume", &volume, "--app", APP]);
    let line = listing
        .lines()
        .find(|l| l.contains("2.0.0-abort-import"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        line.contains("BAD") && line.contains("died while loading"),
        "{line}"
    );
}
