//! The serving path and the volume watcher of a running `molt run`.

use super::*;

/// `molt_watch_wakeups_total{source="change"}` from the control API's `/metrics`.
fn change_wakeups(http: &reqwest::blocking::Client, molt: &MoltProcess) -> u64 {
    let text = http
        .get(molt.control_url("/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET /metrics: {e}\n{}", molt.log()));
    text.lines()
        .find_map(|line| line.strip_prefix("molt_watch_wakeups_total{source=\"change\"} "))
        .unwrap_or_else(|| panic!("no change wake-up counter in /metrics:\n{text}"))
        .trim()
        .parse()
        .expect("a counter value")
}

#[test]
fn an_idle_supervisor_is_not_woken_by_reads_of_current() {
    let env = Env::new("watch-reads");
    env.push(&plugin("counter_v1"));
    ok(&[
        "push",
        &lib("counter_v2"),
        "--volume",
        &path(&env.volume),
        "--no-activate",
    ]);
    let molt = env.start(Vec::<String>::new());
    molt.wait_for_version("1.0.0");
    let http = http();
    let before = change_wakeups(&http, &molt);

    // What used to wake the watcher in a loop: reads of `current`, by anyone (an operator's
    // `cat`, `molt releases`) and by the supervisor itself on every `GET /status`.
    for _ in 0..100 {
        assert_eq!(env.current(), "1.0.0");
        let status = molt.status();
        assert_eq!(status.version.as_deref(), Some("1.0.0"));
    }
    ok(&["releases", "--volume", &path(&env.volume), "--app", APP]);

    // inotify reports in order: once the swap this rename causes has happened, any wake-up
    // the reads above caused would already be counted.
    env.point_current_at("2.0.0");
    molt.wait_for_version("2.0.0");
    let after = change_wakeups(&http, &molt);
    assert_eq!(
        after - before,
        1,
        "only the rename of `current` may wake the watcher ({before} before the reads, {after} after)\n{}",
        molt.log()
    );
    molt.terminate();
}
