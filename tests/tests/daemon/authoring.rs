//! What the authoring kit adds to a running supervisor: the `tick` hook across swaps.

use super::*;
use std::time::Instant;

/// A sample of `/metrics`: the value of the line starting with `series ` (0 when absent).
fn metric(http: &reqwest::blocking::Client, molt: &MoltProcess, series: &str) -> u64 {
    let text = http
        .get(molt.control_url("/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET /metrics: {e}\n{}", molt.log()));
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{series} ")))
        .map_or(0, |v| v.trim().parse().expect("a metric value"))
}

#[test]
fn ticks_run_on_the_serving_version_across_swaps_and_a_panicking_tick_is_contained() {
    let env = Env::new("tick");
    env.push(&plugin("counter_v1"));
    let molt = env.start(Vec::<String>::new());
    molt.wait_for_version("1.0.0");
    let http = http();
    incr(&http, &molt, 5, "1.0.0");

    // Counter v1 has no tick hook: the count stays put.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count(&http, &molt).0, 5);

    // The ticking version takes over v1's state and ticks it forward by itself, through
    // three contained panics (at 10, 20 and 30).
    env.push(&plugin("fixture_tick"));
    molt.wait_for_version("1.2.0-tick");
    let deadline = Instant::now() + SHOW_TIMEOUT;
    while count(&http, &molt).0 < 35 {
        assert!(
            Instant::now() < deadline,
            "no ticks: {:?}\n{}",
            count(&http, &molt),
            molt.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, version) = count(&http, &molt);
    assert_eq!(version, "1.2.0-tick", "the app served on through the panics");
    assert!(metric(&http, &molt, "molt_ticks_total{result=\"ok\"}") >= 25);
    assert!(metric(&http, &molt, "molt_ticks_total{result=\"failed\"}") >= 3);
    let log = molt.log();
    assert!(
        log.contains("tick failed") && log.contains("fixture tick: panics on purpose at 10"),
        "the panic is reported in the log:\n{log}"
    );
    assert!(!log.contains("stack backtrace"), "no backtrace:\n{log}");

    // Back to v1: it keeps the ticked count, and nothing ticks any more.
    ok(&["activate", "1.0.0", "--volume", &path(&env.volume), "--app", APP]);
    molt.wait_for_version("1.0.0");
    let kept = count(&http, &molt).0;
    assert!(kept >= 35, "the ticked count survived the swap: {kept}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count(&http, &molt),
        (kept, "1.0.0".to_owned()),
        "no tick after the swap away"
    );
    molt.terminate();
}

#[test]
fn a_library_a_leaked_thread_keeps_mapped_is_reported() {
    let env = Env::new("leak");
    env.push(&plugin("counter_v1"));
    let molt = env.start(Vec::<String>::new());
    molt.wait_for_version("1.0.0");
    let http = http();
    incr(&http, &molt, 3, "1.0.0");
    // The leaking version takes over (its import starts a thread that never ends), then v2
    // replaces it; four more swaps push it out of the four generations kept for rollback,
    // and the supervisor closes its library.
    env.push(&plugin("fixture_leak_thread"));
    molt.wait_for_version("1.4.0-leak-thread");
    env.push(&plugin("counter_v2"));
    molt.wait_for_version("2.0.0");
    assert!(
        molt.status().libraries_left_mapped.is_empty(),
        "still kept for rollback, not closed"
    );
    for version in ["1.0.0", "2.0.0", "1.0.0", "2.0.0"] {
        ok(&["activate", version, "--volume", &path(&env.volume), "--app", APP]);
        molt.wait_for_version(version);
    }
    let status = molt.wait_status(SHOW_TIMEOUT, "a library left mapped", |s| {
        !s.libraries_left_mapped.is_empty()
    });
    assert_eq!(status.libraries_left_mapped.len(), 1, "{status:?}");
    assert!(
        status.libraries_left_mapped[0].starts_with("counter 1.4.0-leak-thread"),
        "{status:?}"
    );
    assert_eq!(metric(&http, &molt, "molt_libraries_left_mapped"), 1);
    let log = molt.log();
    assert!(
        log.contains("library still mapped after its last instance was destroyed")
            && log.contains("counter 1.4.0-leak-thread")
            && log.contains("a thread it started may still run"),
        "the warning names the release and the likely cause:\n{log}"
    );
    // The well-behaved versions closed along the way were unmapped: only the leak counts.
    assert_eq!(
        count(&http, &molt),
        (3, "2.0.0".to_owned()),
        "the state went through it all"
    );
    molt.terminate();
}

#[test]
fn panics_keep_their_message_for_the_log_and_capture_no_backtrace() {
    let env = Env::new("panics");
    env.push(&plugin("counter_v1"));
    // With backtraces asked for: a hook's panic must still not capture one (it would inside
    // the pause), and a panic in `handle` must not either.
    let molt = MoltProcess::start(&env.opts(Vec::<String>::new()).env("RUST_BACKTRACE", "1"));
    molt.wait_for_version("1.0.0");
    let http = http();
    incr(&http, &molt, 2, "1.0.0");

    // A panicking import: refused, v1 serves on, the message is in the refusal and the log.
    // The push waits for the supervisor and reports the refusal (exit 1, `current` back).
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
        format!("{stdout}{stderr}").contains("import_state panics on purpose"),
        "{stdout}{stderr}"
    );
    let status = molt.wait_status(SHOW_TIMEOUT, "the refusal", |s| s.last_refusal.is_some());
    let refusal = format!("{:?}", status.last_refusal);
    assert!(refusal.contains("import_state panics on purpose"), "{refusal}");
    assert_eq!(count(&http, &molt), (2, "1.0.0".to_owned()));

    // A panicking handler: the client sees a request id, the log has the text under that id.
    env.push(&plugin("fixture_panic_handle"));
    molt.wait_for_version("1.1.0-panic-handle");
    let resp = http.get(molt.url("/boom")).send().expect("GET /boom");
    assert_eq!(resp.status().as_u16(), 500);
    let id = resp
        .headers()
        .get("x-molt-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id header")
        .to_owned();
    let body = resp.text().expect("a body");
    assert_eq!(body, format!("internal error (request id {id})\n"));
    let log = molt.log();
    let line = log
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no log line with request id {id}:\n{log}"));
    assert!(
        line.contains("fixture panic-handle: /boom panics on purpose"),
        "{line}"
    );
    assert!(line.contains("lib.rs:"), "the panic's place is kept: {line}");
    assert!(
        !log.contains("stack backtrace"),
        "no backtrace was captured:\n{log}"
    );
    assert_eq!(count(&http, &molt).0, 2, "the app serves on");
    molt.terminate();
}
