//! Confirmed pushes (issue 10): `molt push/activate --volume` wait until every live supervisor
//! runs the new version or refused it; a refusal exits 1, puts `current` back and marks the
//! release bad (never `previous`); with no supervisor the push says so.

use super::*;

/// `molt releases` for the test's volume.
fn releases(env: &Env) -> String {
    ok(&["releases", "--volume", &path(&env.volume), "--app", APP])
}

/// The `releases` line of `version`.
fn release_line(env: &Env, version: &str) -> String {
    let listing = releases(env);
    listing
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == version))
        .unwrap_or_else(|| panic!("{version} is not listed:\n{listing}"))
        .to_owned()
}

#[test]
fn a_push_refused_by_the_supervisor_exits_1_restores_current_and_marks_the_release_bad() {
    let env = Env::new("confirmed-refused");
    let molt = env.start(std::iter::empty::<String>());
    let said = ok(&["push", &lib("counter_v1"), "--volume", &path(&env.volume)]);
    assert!(
        said.contains("runs on 1 supervisor"),
        "the push did not confirm:\n{said}"
    );
    let http = http();
    incr(&http, &molt, 5, "1.0.0");

    // The supervisor refuses it (its import panics): exit 1, naming the supervisor, the step
    // and the cause; `current` is back on 1.0.0, which never stopped serving.
    let (stdout, stderr) = fails(
        1,
        &[
            "push",
            &lib("fixture_panic_import"),
            "--volume",
            &path(&env.volume),
        ],
    );
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("refused by 1 of 1 supervisors"), "{all}");
    assert!(all.contains("refused at import"), "the step is not named:\n{all}");
    assert!(all.contains("panic"), "the cause is not named:\n{all}");
    assert!(
        all.contains(&format!("pid {}", molt.pid())),
        "the supervisor is not named:\n{all}"
    );
    assert!(all.contains("current is back on 1.0.0"), "{all}");
    assert_eq!(env.current(), "1.0.0");
    assert_eq!(count(&http, &molt), (5, "1.0.0".to_owned()), "{}", molt.log());
    let line = release_line(&env, "2.0.0-panic-import");
    assert!(line.contains("BAD") && line.contains("import"), "{line}");
    assert!(
        line.starts_with(' '),
        "a refused release is neither current nor previous: {line}"
    );

    // Pushed again, it is refused before anything moves, unless forced.
    let (stdout, stderr) = fails(
        1,
        &[
            "push",
            &lib("fixture_panic_import"),
            "--volume",
            &path(&env.volume),
        ],
    );
    assert!(
        format!("{stdout}{stderr}").contains("marked bad"),
        "{stdout}{stderr}"
    );

    // The stage checks run before `current` moves: v3 cannot import v1's schema.
    let (stdout, stderr) = fails(1, &["push", &lib("counter_v3"), "--volume", &path(&env.volume)]);
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("no shared state schema") && all.contains("current stays 1.0.0"),
        "{all}"
    );
    assert_eq!(env.current(), "1.0.0");
    assert!(release_line(&env, "3.0.0").contains("BAD"), "{}", releases(&env));
    assert_eq!(incr(&http, &molt, 1, "1.0.0"), 6, "{}", molt.log());
    // A refused swap reports its pause, not a zero copied from nowhere; the refusal of the
    // panicking import paused traffic for a moment.
    let status = molt.status();
    let refusal = status.last_refusal.expect("the refusal is in /status");
    assert_eq!(refusal.release, "counter 2.0.0-panic-import");
    let swap = status.last_swap.expect("the refused swap is in /status");
    assert!(!swap.ok && swap.pause_us > 0, "{swap:#?}");
}

#[test]
fn a_push_with_no_supervisor_running_says_so() {
    let env = Env::new("confirmed-nobody");
    let said = ok(&["push", &lib("counter_v1"), "--volume", &path(&env.volume)]);
    assert!(said.contains("published; no supervisor runs counter"), "{said}");
    assert_eq!(env.current(), "1.0.0");
    // A supervisor that shut down cleanly is not waited for either.
    let molt = env.start(std::iter::empty::<String>());
    molt.wait_for_version("1.0.0");
    assert!(molt.terminate().success());
    let said = ok(&["push", &lib("counter_v2"), "--volume", &path(&env.volume)]);
    assert!(said.contains("published; no supervisor runs counter"), "{said}");
}

#[test]
fn concurrent_activations_serialize_and_each_reports_what_it_did() {
    let env = Env::new("confirmed-concurrent");
    let molt = env.start(std::iter::empty::<String>());
    ok(&["push", &lib("counter_v1"), "--volume", &path(&env.volume)]);
    ok(&[
        "push",
        &lib("counter_v2"),
        "--volume",
        &path(&env.volume),
        "--no-activate",
    ]);
    let volume = path(&env.volume);
    let runs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = ["2.0.0", "1.0.0", "2.0.0", "1.0.0"]
            .into_iter()
            .map(|v| {
                let volume = volume.clone();
                s.spawn(move || ok(&["activate", v, "--volume", &volume, "--app", APP]))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an activation thread"))
            .collect()
    });
    // Each one either changed `current` and saw the supervisor run it, or found it current.
    let mut changes = 0;
    for said in &runs {
        if said.contains("current is now") {
            changes += 1;
            assert!(said.contains("runs on 1 supervisor"), "{said}");
        } else {
            assert!(said.contains("is already current"), "{said}");
        }
    }
    let status = molt.status();
    assert_eq!(
        status.swaps, changes,
        "every change is one swap: {runs:#?}\n{status:#?}"
    );
    assert_eq!(
        status.version.as_deref(),
        Some(env.current().as_str()),
        "{status:#?}"
    );
}

#[test]
fn a_push_whose_release_kills_the_only_supervisor_fails_and_puts_current_back() {
    let env = Env::new("confirmed-lost");
    let molt = env.start(std::iter::empty::<String>());
    let volume = path(&env.volume);
    let said = ok(&["push", &lib("counter_v1"), "--volume", &volume]);
    assert!(said.contains("runs on 1 supervisor"), "{said}");
    let http = http();
    incr(&http, &molt, 2, "1.0.0");

    // Its import aborts the process: the only supervisor is gone before it could answer.
    // That is no success (it once ended "runs on 0 supervisors" with exit 0).
    let (stdout, stderr) = fails(
        1,
        &[
            "push",
            &lib("fixture_abort_import"),
            "--volume",
            &volume,
            "--wait",
            "30s",
        ],
    );
    let all = format!("{stdout}{stderr}");
    assert!(!all.contains("runs on 0 supervisors"), "{all}");
    assert!(
        all.contains("not confirmed: 1 of 1 supervisors lost before they answered"),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "lost: pid {} died before it ran 2.0.0-abort-import",
            molt.pid()
        )),
        "{all}"
    );
    assert!(all.contains("current is back on 1.0.0"), "{all}");
    assert_eq!(env.current(), "1.0.0");
}

#[test]
fn a_report_whose_heartbeat_is_far_in_the_future_is_not_waited_for() {
    let env = Env::new("confirmed-skew");
    let volume = path(&env.volume);
    ok(&["push", &lib("counter_v1"), "--volume", &volume]);
    // A supervisor on another host whose clock runs an hour ahead (or a forged report): it
    // would count as live forever, and every push would end "not confirmed".
    let reports = env.app_dir().join(molt_supervisor::volume::SUPERVISORS_DIR);
    std::fs::create_dir_all(&reports).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let report = serde_json::json!({
        "instance": "ahead",
        "host": "a-host-whose-clock-runs-ahead",
        "pid": 4242,
        "app": APP,
        "running": "1.0.0",
        "watching": true,
        "refused": null,
        "history": [],
        "started_ms": now_ms + 3_600_000,
        "heartbeat_ms": now_ms + 3_600_000,
        "stale_after_ms": 10_000,
    });
    std::fs::write(reports.join("ahead.json"), report.to_string()).unwrap();
    let said = ok(&["push", &lib("counter_v2"), "--volume", &volume, "--wait", "5s"]);
    assert!(said.contains("published; no supervisor runs counter"), "{said}");
    assert_eq!(env.current(), "2.0.0");
}
