//! `molt handoff` and `molt absorb` between real `molt run` processes (docs/DESIGN.md,
//! "Handoff"): the state moves once, the departing supervisor's restart starts empty, a
//! retried merge of one id is not applied twice; a merge that panics, a receiver without a
//! merge hook, an unreachable receiver and an impossible grace period each leave both states
//! as they were, the departing supervisor serving; a lost merge answer is settled by the
//! receiver's record, applied once; a receiver killed mid-merge comes back without the merge
//! and fences the id, and the departing supervisor serves again; `--handoff-on-stop` hands the
//! state over on SIGTERM; an orphan snapshot is absorbed once.

use super::*;

/// A supervisor on its own volume serving `plugin_name` (version `version`), with `extra`
/// arguments.
fn serving(name: &str, plugin_name: &str, version: &str, extra: &[&str]) -> (Env, MoltProcess) {
    let env = Env::new(name);
    env.push(&plugin(plugin_name));
    let molt = env.start(extra.iter().copied());
    molt.wait_for_version(version);
    (env, molt)
}

/// A supervisor of the kv app (kv v1) on its own volume, with `extra` arguments.
fn serving_kv(name: &str, extra: &[&str]) -> (Env, MoltProcess) {
    let env = Env::new(name);
    env.push(&plugin("kv_v1"));
    let opts = RunOptions::new(&env.volume, "kv", &env.dir.mkdir("work")).args(
        [
            "--state-dir",
            &path(&env.state),
            "--run-dir",
            &path(&env.dir.mkdir("run")),
        ]
        .into_iter()
        .chain(extra.iter().copied()),
    );
    let molt = MoltProcess::start(&opts);
    molt.wait_for_version("1.0.0");
    (env, molt)
}

fn post(http: &reqwest::blocking::Client, molt: &MoltProcess, target: &str, n: u64) {
    for _ in 0..n {
        let a = answer(http.post(molt.url(target)).send().expect("POST"));
        assert_eq!(a.status, 200, "POST {target}: {a:?}\n{}", molt.log());
    }
}

fn get(http: &reqwest::blocking::Client, molt: &MoltProcess, target: &str) -> Answer {
    answer(http.get(molt.url(target)).send().expect("GET"))
}

fn ready(molt: &MoltProcess) -> u16 {
    http()
        .get(molt.control_url("/readyz"))
        .send()
        .expect("GET /readyz")
        .status()
        .as_u16()
}

fn handoff(from: &MoltProcess, to: &MoltProcess, extra: &[&str]) -> Output {
    let (from, to) = (from.control_base(), to.control_base());
    let mut args = vec!["handoff", "--from", &from, "--to", &to, "--unready-wait", "100ms"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_handoff_moves_the_state_once_and_the_departing_restart_starts_empty() {
    let http = http();
    let (_a_env, a) = serving("handoff-a", "counter_v2", "2.0.0", &[]);
    let (b_env, b) = serving("handoff-b", "counter_v2", "2.0.0", &[]);
    post(&http, &a, "/incr/x", 5);
    post(&http, &b, "/incr/x", 3);
    post(&http, &b, "/incr/y", 2);

    let out = handoff(&b, &a, &["--grace", "30s"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}\n{}\n{}", a.log(), b.log());
    for step in [
        "check", "unready", "drain", "export", "transfer", "merge", "commit",
    ] {
        assert!(
            stdout.contains(&format!("  {step} ")),
            "step {step} timed:\n{stdout}"
        );
    }
    assert!(stdout.contains("of the 30.00 s grace period"), "{stdout}");

    // The receiver holds the merge of both; the departing one is unready and serves nothing.
    assert_eq!(get(&http, &a, "/count/x").body, "8");
    assert_eq!(get(&http, &a, "/count/y").body, "2");
    assert_eq!(ready(&a), 200);
    assert_eq!(ready(&b), 503);
    let sealed = get(&http, &b, "/count/x");
    assert_eq!(sealed.status, 503, "{sealed:?}");
    assert!(sealed.body.contains("handed to"), "{sealed:?}");

    // A retried merge of the same id is recognised, not applied twice.
    let id = stdout
        .split_whitespace()
        .nth(1)
        .expect("the report names the id")
        .trim_end_matches(':')
        .to_owned();
    let again = a
        .control(None)
        .absorb(
            &id,
            "test",
            APP,
            2,
            {
                let mut state = 1u32.to_le_bytes().to_vec();
                state.extend_from_slice(&1u32.to_le_bytes());
                state.extend_from_slice(b"x");
                state.extend_from_slice(&100u64.to_le_bytes());
                state
            },
            Duration::from_secs(10),
        )
        .expect("a retried absorb answers");
    assert!(again.already, "{again:?}");
    assert_eq!(get(&http, &a, "/count/x").body, "8", "nothing applied twice");

    // The departing supervisor's restart does not serve the handed-off state again.
    assert!(b.terminate().success());
    let b2 = b_env.start(Vec::<String>::new());
    b2.wait_for_version("2.0.0");
    assert_eq!(get(&http, &b2, "/count").body, "0", "{}", b2.log());
    assert_eq!(ready(&b2), 200);
    assert!(b2.log().contains("handed to a peer"), "{}", b2.log());

    // The receiver's restart keeps the merged state and the id it absorbed.
    let logs = a.log();
    assert!(logs.contains("absorbed a peer's state"), "{logs}");
}

#[test]
fn a_merge_that_panics_leaves_both_states_and_the_departing_supervisor_serves_again() {
    let http = http();
    let (_a_env, a) = serving("handoff-panic-a", "fixture_panic_merge", "1.0.0-panic-merge", &[]);
    let (_b_env, b) = serving("handoff-panic-b", "counter_v1", "1.0.0", &[]);
    post(&http, &a, "/incr", 4);
    post(&http, &b, "/incr", 6);

    let out = handoff(&b, &a, &[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("merge failed"), "{stderr}");
    assert!(stderr.contains("panics on purpose"), "{stderr}");
    assert!(
        stderr.contains("the departing supervisor is ready and serving again"),
        "{stderr}"
    );
    assert!(stdout.contains("FAILED at merge"), "{stdout}");
    assert_eq!(
        get(&http, &a, "/count").body,
        "4",
        "the receiver's state is unchanged"
    );
    assert_eq!(ready(&b), 200);
    assert_eq!(
        incr(&http, &b, 1, "1.0.0"),
        7,
        "the departing supervisor counts on"
    );
}

#[test]
fn an_app_without_a_merge_hook_is_refused_before_anything_stops() {
    let http = http();
    let (_a_env, a) = serving("handoff-nomerge-a", "fixture_no_merge", "1.0.0-no-merge", &[]);
    let (_b_env, b) = serving("handoff-nomerge-b", "counter_v1", "1.0.0", &[]);
    post(&http, &a, "/incr", 2);
    post(&http, &b, "/incr", 3);

    let out = handoff(&b, &a, &[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("check failed"), "{stderr}");
    assert!(
        stderr.contains("counter 1.0.0-no-merge has no merge hook"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was stopped"), "{stderr}");
    assert_eq!(get(&http, &a, "/count").body, "2");
    assert_eq!(ready(&b), 200);
    assert_eq!(incr(&http, &b, 1, "1.0.0"), 4);
    assert!(
        !b.log().contains("readiness false"),
        "b was never touched:\n{}",
        b.log()
    );
}

#[test]
fn an_unreachable_receiver_or_an_impossible_grace_period_stops_nothing() {
    let http = http();
    let (_a_env, a) = serving_kv("handoff-grace-a", &[]);
    let (_b_env, b) = serving_kv("handoff-grace-b", &["--snapshot-interval", "300ms"]);
    let filled = http
        .post(b.url("/preload?keys=10&size=1000000"))
        .send()
        .expect("preload");
    assert_eq!(filled.status().as_u16(), 200);
    // The grace check estimates from the last snapshot's size: wait for one of 10 MB.
    let until = std::time::Instant::now() + SHOW_TIMEOUT;
    while !matches!(b.status().last_snapshot, Some(ref s) if s.bytes >= 10_000_000) {
        assert!(
            std::time::Instant::now() < until,
            "no snapshot of the preload:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = handoff(&b, &a, &["--grace", "5s", "--assume-mb-per-s", "1"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("check failed") && stderr.contains("cannot fit the grace period of 5s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("(last snapshot) at 1 MB/s"),
        "the arithmetic is shown: {stderr}"
    );

    let closed = "http://127.0.0.1:9".to_owned();
    let out = run(&["handoff", "--from", &b.control_base(), "--to", &closed]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("check failed: the receiver") && stderr.contains("unreachable"),
        "{stderr}"
    );

    assert_eq!(ready(&b), 200);
    assert_eq!(get(&http, &b, "/kv/k3").status, 200, "b serves its state");
    assert!(
        !b.log().contains("readiness false"),
        "b was never touched:\n{}",
        b.log()
    );
}

#[test]
fn an_orphan_snapshot_is_absorbed_once() {
    let http = http();
    let (_a_env, a) = serving("absorb-a", "counter_v1", "1.0.0", &[]);
    let (gone_env, gone) = serving("absorb-gone", "counter_v1", "1.0.0", &[]);
    post(&http, &a, "/incr", 2);
    post(&http, &gone, "/incr", 4);
    let orphan = path(&gone_env.state);
    let out = run(&["absorb", &orphan, "--to", &a.control_base()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("is not an orphan") && stderr.contains("in use by another supervisor"),
        "{stderr}"
    );
    assert!(gone.terminate().success(), "SIGTERM writes the last snapshot");

    let out = run(&["absorb", &orphan, "--to", &a.control_base()]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}\n{}", a.log());
    assert!(
        stdout.contains("absorbed") && stdout.contains("marked in"),
        "{stdout}"
    );
    assert_eq!(get(&http, &a, "/count").body, "6");

    let out = run(&["absorb", &orphan, "--to", &a.control_base()]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("was already handed to"), "{stderr}");
    assert_eq!(get(&http, &a, "/count").body, "6", "absorbed once");

    // A pod started again on the orphan directory does not serve the absorbed state.
    let back = gone_env.start(Vec::<String>::new());
    back.wait_for_version("1.0.0");
    assert_eq!(get(&http, &back, "/count").body, "0", "{}", back.log());
}

#[test]
fn handoff_on_stop_hands_the_state_to_a_peer_on_sigterm() {
    let http = http();
    let (_a_env, a) = serving("on-stop-a", "counter_v1", "1.0.0", &[]);
    let target = a.control_base();
    let (b_env, b) = serving(
        "on-stop-b",
        "counter_v1",
        "1.0.0",
        &["--handoff-on-stop", &target, "--handoff-unready-wait", "100ms"],
    );
    post(&http, &a, "/incr", 2);
    post(&http, &b, "/incr", 9);
    let log = b.log_path().to_owned();
    assert!(b.terminate().success());
    let log = std::fs::read_to_string(log).expect("b's log");
    assert!(log.contains("handoff on stop: the state is the peer's"), "{log}");
    assert_eq!(get(&http, &a, "/count").body, "11", "{}", a.log());

    let again = b_env.start(Vec::<String>::new());
    again.wait_for_version("1.0.0");
    assert_eq!(get(&http, &again, "/count").body, "0", "{}", again.log());
}

/// The handoff id a failure names (`… handoff ID from …`).
fn failed_id(stderr: &str) -> String {
    let after = stderr
        .split("handoff ")
        .nth(1)
        .expect("the failure names the handoff");
    after.split_whitespace().next().expect("an id").to_owned()
}

#[test]
fn a_lost_merge_answer_is_settled_by_the_receiver_and_applied_once() {
    let http = http();
    let (_a_env, a) = serving("lost-answer-a", "fixture_slow_merge", "1.0.0-slow-merge", &[]);
    let (_b_env, b) = serving("lost-answer-b", "counter_v1", "1.0.0", &[]);
    post(&http, &a, "/incr", 4);
    post(&http, &b, "/incr", 6);
    // The merge takes 3 s, the call's deadline is 2 s: the answer is lost, the receiver's
    // record (asked once its merge is done) says it happened.
    let out = handoff(&b, &a, &["--timeout", "2s"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}\n{}", a.log());
    assert!(
        stdout.contains("the receiver confirms it absorbed the state"),
        "{stdout}"
    );
    assert_eq!(get(&http, &a, "/count").body, "10", "merged once");
    assert_eq!(ready(&b), 503, "the departing supervisor committed");
}

#[test]
fn a_receiver_killed_midway_leaves_its_state_and_the_departing_one_serves_again() {
    let http = http();
    let (a_env, a) = serving(
        "killed-a",
        "fixture_slow_merge",
        "1.0.0-slow-merge",
        &["--snapshot-interval", "100ms"],
    );
    let (_b_env, b) = serving("killed-b", "counter_v1", "1.0.0", &[]);
    post(&http, &a, "/incr", 4);
    post(&http, &b, "/incr", 6);
    std::thread::sleep(Duration::from_millis(500)); // a snapshot of a's 4

    let (from, to) = (b.control_base(), a.control_base());
    let coordinator = std::process::Command::new(molt_tests::artifacts::molt_binary())
        .args([
            "handoff",
            "--from",
            &from,
            "--to",
            &to,
            "--unready-wait",
            "0s",
            "--timeout",
            "2s",
        ])
        .env("MOLT_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting molt handoff");
    // Mid-merge (it takes 3 s): the receiver dies.
    std::thread::sleep(Duration::from_millis(1200));
    molt_tests::process::signal(a.pid(), "KILL");
    let out = coordinator.wait_with_output().expect("molt handoff");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("merge failed") && stderr.contains("--resolve"),
        "{stderr}"
    );
    assert_eq!(ready(&b), 503, "b stays sealed while the outcome is unknown");
    drop(a);

    // The receiver comes back from its snapshot, without the merge; asked, it fences the id.
    let a2 = a_env.start(Vec::<String>::new());
    a2.wait_for_version("1.0.0-slow-merge");
    assert_eq!(get(&http, &a2, "/count").body, "4");
    let id = failed_id(&stderr);
    let out = run(&[
        "handoff",
        "--resolve",
        &id,
        "--from",
        &from,
        "--to",
        &a2.control_base(),
    ]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("never absorbed it (now fenced)"), "{stdout}");
    assert_eq!(ready(&b), 200, "b is ready again");
    assert_eq!(incr(&http, &b, 1, "1.0.0"), 7, "b serves its state, untouched");
    assert_eq!(
        get(&http, &a2, "/count").body,
        "4",
        "the receiver's state is unchanged"
    );
}

#[test]
fn a_sealed_handoff_whose_coordinator_is_gone_is_settled_by_the_departing_supervisor() {
    let http = http();
    let (_a_env, a) = serving("lease-a", "counter_v1", "1.0.0", &[]);
    let (_b_env, b) = serving("lease-b", "counter_v1", "1.0.0", &[]);
    post(&http, &a, "/incr", 1);
    post(&http, &b, "/incr", 5);
    let (from, to) = (b.control(None), a.control(None));
    let step = Duration::from_secs(10);
    let lease = Duration::from_secs(1);
    let wait_ready = |code: u16| {
        let until = std::time::Instant::now() + Duration::from_secs(15);
        while ready(&b) != code {
            assert!(
                std::time::Instant::now() < until,
                "readyz never {code}:\n{}",
                b.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // A coordinator that sealed b and vanished before the merge: b asks a, which never
    // absorbed it (and now fences it); b serves again with its state.
    from.handoff_begin("gone-1", to.base(), 1, Duration::ZERO, step, lease, step)
        .expect("begin");
    assert_eq!(ready(&b), 503);
    wait_ready(200);
    assert_eq!(incr(&http, &b, 1, "1.0.0"), 6);
    let late = to.absorb("gone-1", "test", APP, 1, 6u64.to_le_bytes().to_vec(), step);
    assert!(late.is_err(), "a fenced id is never applied: {late:?}");
    assert_eq!(get(&http, &a, "/count").body, "1");

    // One that vanished after the merge: b asks a, which holds the state; b commits.
    let begun = from
        .handoff_begin("gone-2", to.base(), 1, Duration::ZERO, step, lease, step)
        .expect("begin");
    let (_, schema, state) = from.handoff_state("gone-2", step).expect("state");
    assert_eq!(begun.schema, schema);
    to.absorb("gone-2", &b.control_base(), APP, schema, state, step)
        .expect("absorb");
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while !b.log().contains("handoff committed") {
        assert!(
            std::time::Instant::now() < until,
            "b never committed:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ready(&b), 503);
    assert_eq!(get(&http, &a, "/count").body, "7", "merged once");
}

/// Kills `molt` with SIGKILL (no final snapshot, no settling) and reaps it.
fn crash(molt: MoltProcess) {
    molt_tests::process::signal(molt.pid(), "KILL");
    drop(molt);
}

/// Seals `b` for handoff `id` to `a`; with `merged`, `a` absorbs the state too. No commit.
fn sealed(b: &MoltProcess, a: &MoltProcess, id: &str, merged: bool) {
    let (from, to) = (b.control(None), a.control(None));
    let step = Duration::from_secs(10);
    let lease = Duration::from_secs(600);
    from.handoff_begin(id, to.base(), 1, Duration::ZERO, step, lease, step)
        .expect("begin");
    if merged {
        let (_, schema, state) = from.handoff_state(id, step).expect("state");
        to.absorb(id, &b.control_base(), APP, schema, state, step)
            .expect("absorb");
    }
    assert_eq!(ready(b), 503);
}

#[test]
fn a_supervisor_stopped_sealed_after_the_merge_does_not_serve_the_state_again() {
    let http = http();
    let (_a_env, a) = serving("stop-sealed-a", "counter_v1", "1.0.0", &[]);
    let (b_env, b) = serving("stop-sealed-b", "counter_v1", "1.0.0", &[]);
    post(&http, &b, "/incr", 5);

    // Merged by a, then SIGTERM before any commit: b asks a on its way down and commits.
    sealed(&b, &a, "dup1", true);
    assert!(b.terminate().success());
    let b2 = b_env.start(Vec::<String>::new());
    b2.wait_for_version("1.0.0");
    assert_eq!(get(&http, &b2, "/count").body, "0", "{}", b2.log());
    assert_eq!(get(&http, &a, "/count").body, "5", "counted once");

    // Sealed but never merged, then SIGTERM: a fences the id, b keeps and serves its state.
    post(&http, &b2, "/incr", 3);
    sealed(&b2, &a, "dup2", false);
    assert!(b2.terminate().success());
    let b3 = b_env.start(Vec::<String>::new());
    b3.wait_for_version("1.0.0");
    assert_eq!(get(&http, &b3, "/count").body, "3", "{}", b3.log());
    let late = a.control(None).absorb(
        "dup2",
        "test",
        APP,
        1,
        3u64.to_le_bytes().to_vec(),
        Duration::from_secs(10),
    );
    assert!(late.is_err(), "a fenced id is never applied: {late:?}");
    assert_eq!(get(&http, &a, "/count").body, "5");
}

#[test]
fn a_supervisor_killed_sealed_asks_the_receiver_before_serving_and_refuses_while_it_cannot() {
    let http = http();
    let (a_env, a) = serving("crash-sealed-a", "counter_v1", "1.0.0", &[]);
    let (b_env, b) = serving("crash-sealed-b", "counter_v1", "1.0.0", &[]);
    post(&http, &b, "/incr", 5);

    // Killed sealed, never merged: the restart asks a (which fences the id) and serves.
    sealed(&b, &a, "kill1", false);
    crash(b);
    let b2 = b_env.start(Vec::<String>::new());
    b2.wait_for_version("1.0.0");
    assert_eq!(get(&http, &b2, "/count").body, "5", "{}", b2.log());
    assert!(b2.log().contains("did not absorb it"), "{}", b2.log());

    // Killed sealed after the merge: the restart asks a, which holds it, and starts empty.
    sealed(&b2, &a, "kill2", true);
    crash(b2);
    let b3 = b_env.start(Vec::<String>::new());
    b3.wait_for_version("1.0.0");
    assert_eq!(get(&http, &b3, "/count").body, "0", "{}", b3.log());
    assert_eq!(get(&http, &a, "/count").body, "5", "counted once");

    // Killed sealed while the receiver is gone too: no start serves the state meanwhile.
    post(&http, &b3, "/incr", 2);
    sealed(&b3, &a, "kill3", false);
    crash(b3);
    assert!(a.terminate().success());
    let state = path(&b_env.state);
    let stderr = run_refused(&b_env, &["--control", "127.0.0.1:0"]);
    assert!(
        stderr.contains("kill3") && stderr.contains("cannot say"),
        "{stderr}"
    );
    let orphan = run(&["absorb", &state, "--to", "http://127.0.0.1:1"]);
    let (_, stderr) = texts(&orphan);
    assert!(
        !orphan.status.success() && stderr.contains("sealed for handoff kill3"),
        "{stderr}"
    );
    drop(a_env);
}

#[test]
fn handoff_calls_refuse_oversized_or_malformed_fields_naming_them() {
    let http = http();
    let (b_env, b) = serving("fields-b", "counter_v1", "1.0.0", &[]);
    post(&http, &b, "/incr", 4);
    let call = |target: String| {
        let resp = http.post(b.control_url(&target)).send().expect("POST");
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    };
    // The adversary's `to`: 21,500 control characters, 129 KB once escaped in a header.
    let (status, body) = call(format!(
        "/handoff/begin?id=h1&unready_ms=0&to={}",
        "%01".repeat(21_500)
    ));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("to:"), "{body}");
    let long = format!("http://{}", "a".repeat(3000));
    let (status, body) = call(format!("/handoff/begin?id=h1&unready_ms=0&to={long}"));
    assert!(status == 409 && body.contains("to:"), "{status} {body}");
    let (status, body) = call(format!(
        "/handoff/begin?id={}&unready_ms=0&to=http://127.0.0.1:1",
        "x".repeat(101)
    ));
    assert!(status == 409 && body.contains("id:"), "{status} {body}");
    let (status, body) = call("/absorb?id=h2&from=%01&app=counter&schema=1".to_owned());
    assert!(status == 409 && body.contains("from:"), "{status} {body}");

    // Nothing was sealed or recorded: the restart serves the state.
    assert_eq!(ready(&b), 200);
    assert!(b.terminate().success());
    let b2 = b_env.start(Vec::<String>::new());
    b2.wait_for_version("1.0.0");
    assert_eq!(get(&http, &b2, "/count").body, "4", "{}", b2.log());
}

#[test]
fn sighup_stops_with_a_final_snapshot_and_sigusr_is_ignored() {
    let http = http();
    let (env, b) = serving("signals", "counter_v1", "1.0.0", &[]);
    post(&http, &b, "/incr", 3);
    let wait_log = |molt: &MoltProcess, text: &str| {
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while !molt.log().contains(text) {
            assert!(
                std::time::Instant::now() < until,
                "no {text:?} in the log:\n{}",
                molt.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    for sig in ["USR1", "USR2"] {
        molt_tests::process::signal(b.pid(), sig);
        wait_log(&b, &format!("SIG{sig} received and ignored"));
    }
    post(&http, &b, "/incr", 1);
    molt_tests::process::signal(b.pid(), "HUP");
    wait_log(&b, "final snapshot written");
    // Reaps it (the SIGTERM reaches a process that already exited).
    let _ = b.terminate();
    let b2 = env.start(Vec::<String>::new());
    b2.wait_for_version("1.0.0");
    assert_eq!(get(&http, &b2, "/count").body, "4", "{}", b2.log());
}
