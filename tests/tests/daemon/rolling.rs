//! `molt push LIB --to URL --to URL`: one supervisor at a time, stopping at the first failure.

use super::*;
use molt_supervisor::control::Status;

/// Two supervisors on their own volumes, both serving counter v1 with probation `probation`;
/// the first has counted to 11, the second to 7.
fn two_supervisors(name: &str) -> [(Env, MoltProcess); 2] {
    [11, 7].map(|n| {
        let env = Env::new(name);
        env.push(&plugin("counter_v1"));
        let molt = env.start(["--probation", "2s"]);
        molt.wait_for_version("1.0.0");
        assert_eq!(incr(&http(), &molt, n, "1.0.0"), n);
        (env, molt)
    })
}

fn counted(pods: &[(Env, MoltProcess); 2], version: &str) {
    for ((_, molt), n) in pods.iter().zip([11, 7]) {
        assert_eq!(count(&http(), molt), (n, version.to_owned()), "{}", molt.log());
    }
}

/// Both supervisors' logs, for failure messages.
fn all_logs(pods: &[(Env, MoltProcess); 2]) -> String {
    pods.iter()
        .map(|(_, m)| m.log())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn push_to(library: &str, pods: &[(Env, MoltProcess); 2]) -> Output {
    let (a, b) = (pods[0].1.control_base(), pods[1].1.control_base());
    run(&[
        "push",
        library,
        "--to",
        &a,
        "--to",
        &b,
        "--probation-timeout",
        "20s",
    ])
}

#[test]
fn a_rolling_push_upgrades_every_supervisor() {
    let pods = two_supervisors("rolling-ok");
    let out = push_to(&lib("counter_v2"), &pods);
    let (stdout, stderr) = texts(&out);
    let logs = || all_logs(&pods);
    assert!(
        out.status.success(),
        "molt push --to exited {}:\n{stdout}{stderr}\n{}",
        out.status,
        logs()
    );
    assert!(
        stdout.contains("pushed counter 2.0.0 to 2 supervisor(s), all serving it"),
        "no summary:\n{stdout}"
    );
    for (env, molt) in &pods {
        let status = molt.status();
        assert_eq!(status.version.as_deref(), Some("2.0.0"), "{status:#?}");
        assert_eq!((status.swaps, status.pid), (1, molt.pid()), "{status:#?}");
        let probation = status
            .probation
            .as_ref()
            .map(|p| (p.version.as_str(), p.state.as_str()));
        assert_eq!(probation, Some(("2.0.0", "passed")), "{status:#?}");
        assert_eq!(env.current(), "2.0.0");
    }
    counted(&pods, "2.0.0");
}

#[test]
fn a_release_failing_probation_stops_the_rolling_push_at_the_first() {
    let pods = two_supervisors("rolling-unhealthy");
    let version = "2.0.0-unhealthy";
    let out = push_to(&lib("fixture_unhealthy"), &pods);
    let (stdout, stderr) = texts(&out);
    let logs = || all_logs(&pods);
    assert_eq!(
        out.status.code(),
        Some(1),
        "molt push --to should fail:\n{stdout}{stderr}\n{}",
        logs()
    );
    assert!(
        stderr.contains("failed probation") && stderr.contains("1 never touched"),
        "the failure does not say what happened:\n{stderr}"
    );

    // The first took it, failed probation and rolled itself back.
    let (first_env, first) = &pods[0];
    let status: Status = first.wait_status(SHOW_TIMEOUT, "the first back on 1.0.0", |s| {
        s.version.as_deref() == Some("1.0.0")
    });
    let probation = status
        .probation
        .as_ref()
        .map(|p| (p.version.as_str(), p.state.as_str()));
    assert_eq!(probation, Some((version, "failed")), "{status:#?}");
    assert_eq!(status.swaps, 2, "a swap in, a swap back: {status:#?}");
    // Counted once each: the swap in as `ok`, the probation's rollback as `rolled_back` only.
    let metrics = http()
        .get(first.control_url("/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("GET /metrics");
    for series in [
        r#"molt_swaps_total{result="ok"} 1"#,
        r#"molt_swaps_total{result="rolled_back"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "no {series:?} in:\n{metrics}"
        );
    }
    // The release that failed probation is recorded as bad on the volume.
    let listing = ok(&["releases", "--volume", &path(&first_env.volume), "--app", APP]);
    assert!(
        listing
            .lines()
            .any(|l| l.contains(version) && l.contains("BAD") && l.contains("probation")),
        "{listing}"
    );
    assert_eq!(
        first_env.current(),
        "1.0.0",
        "the first's volume still names the failed release"
    );

    // The second never saw it.
    let (second_env, second) = &pods[1];
    let status = second.status();
    assert_eq!(
        (status.version.as_deref(), status.swaps),
        (Some("1.0.0"), 0),
        "{status:#?}"
    );
    assert!(
        status.probation.is_none() && status.last_refusal.is_none(),
        "{status:#?}"
    );
    assert!(
        !second_env.app_dir().join("releases").join(version).exists(),
        "the release reached the second supervisor's volume"
    );

    counted(&pods, "1.0.0");
}

#[test]
fn a_rolling_push_refused_by_the_second_rolls_the_first_back() {
    // Both on counter v1; the second wants a token the push does not carry.
    let first = Env::new("rolling-second-refuses");
    first.push(&plugin("counter_v1"));
    let a = first.start(std::iter::empty::<String>());
    let second = Env::new("rolling-second-refuses");
    second.push(&plugin("counter_v1"));
    let token = second.dir.write("token", "second-supervisor-only\n");
    let b = second.start(["--token-file".to_owned(), path(&token)]);
    for molt in [&a, &b] {
        molt.wait_for_version("1.0.0");
        incr(&http(), molt, 3, "1.0.0");
    }

    let out = run(&[
        "push",
        &lib("counter_v2"),
        "--to",
        &a.control_base(),
        "--to",
        &b.control_base(),
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "molt push --to should fail at the second:\n{stdout}{stderr}"
    );
    assert!(
        stderr.contains("2/2")
            && stderr.contains("401")
            && stderr.contains("1 upgraded supervisor(s) rolled back"),
        "the failure does not say where it stopped and what it undid:\n{stderr}"
    );
    let status = a.status();
    assert_eq!(
        (status.version.as_deref(), status.swaps),
        (Some("1.0.0"), 2),
        "the first was not rolled back: {status:#?}\n{}",
        a.log()
    );
    assert_eq!(first.current(), "1.0.0");
    assert_eq!(b.status().swaps, 0);
    for molt in [&a, &b] {
        assert_eq!(count(&http(), molt), (3, "1.0.0".to_owned()), "{}", molt.log());
    }
}
