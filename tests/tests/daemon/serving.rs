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

/// A counter of `molt_http_dispatch_total{path=…}` from `/metrics`.
fn dispatched(http: &reqwest::blocking::Client, molt: &MoltProcess, path: &str) -> u64 {
    let text = http
        .get(molt.control_url("/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET /metrics: {e}\n{}", molt.log()));
    let prefix = format!("molt_http_dispatch_total{{path=\"{path}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
        .trim()
        .parse()
        .expect("a counter value")
}

#[test]
fn handlers_that_block_do_not_stop_other_connections_being_served() {
    // More blocked handlers than the supervisor has runtime workers on any machine this runs
    // on: if blocked calls could take every worker, nothing else would be served.
    let blockers = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    const CLIENTS: usize = 8;
    const EACH: u64 = 25;

    let env = Env::new("blocking-handler");
    env.push(&plugin("fixture_block_handle"));
    let molt = env.start(Vec::<String>::new());
    molt.wait_for_version("1.1.0-block-handle");
    let http = http();
    let pool_before = dispatched(&http, &molt, "pool");

    // Handlers that block until told to go, each on its own connection.
    let blocked: Vec<_> = (0..blockers)
        .map(|_| {
            let url = molt.url("/block");
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(90))
                    .build()
                    .expect("a client");
                client.post(url).send().and_then(|r| r.text())
            })
        })
        .collect();
    molt.wait_status(SHOW_TIMEOUT, "every blocker inside the app", |_| {
        http.get(molt.url("/blocked"))
            .send()
            .and_then(|r| r.text())
            .is_ok_and(|n| n.trim() == blockers.to_string())
    });

    // Meanwhile, other clients on other connections are served, every one of them.
    let served: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let url = molt.url("/incr");
            std::thread::spawn(move || {
                let client = super::http();
                (0..EACH)
                    .map(|_| {
                        client
                            .post(url.as_str())
                            .send()
                            .map(|r| r.status().as_u16())
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for client in served {
        let statuses = client.join().expect("a client thread");
        assert!(
            statuses.iter().all(|s| s == &Ok(200)),
            "requests while {blockers} handlers block: {statuses:?}\n{}",
            molt.log()
        );
    }
    let (total, _) = count(&http, &molt);
    assert_eq!(total, CLIENTS as u64 * EACH, "every increment counted");
    assert_eq!(
        http.get(molt.url("/blocked"))
            .send()
            .and_then(|r| r.text())
            .unwrap()
            .trim(),
        blockers.to_string(),
        "the blockers were still blocked while the others were served"
    );
    // At most all workers but one were inside the app inline: the rest went to the pool.
    assert!(
        dispatched(&http, &molt, "pool") > pool_before,
        "some requests should have gone to the blocking pool while workers were blocked"
    );

    // Release them; each gets its answer.
    let released = http.post(molt.url("/release")).send().expect("POST /release");
    assert_eq!(released.status().as_u16(), 200);
    for blocker in blocked {
        let text = blocker
            .join()
            .expect("a blocker thread")
            .expect("the blocked request");
        assert_eq!(text, "released");
    }

    // The one-second handler: served while other connections keep being served.
    let sleeper = {
        let url = molt.url("/sleep");
        std::thread::spawn(move || http_sleeper(&url))
    };
    incr(&http, &molt, 20, "1.1.0-block-handle");
    assert_eq!(sleeper.join().expect("the sleeper"), "slept");
    molt.terminate();
}

fn http_sleeper(url: &str) -> String {
    reqwest::blocking::get(url)
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET /sleep: {e}"))
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("listing /proc/PID/fd")
        .count()
}

#[test]
fn out_of_file_descriptors_the_supervisor_backs_off_and_serves_on() {
    let env = Env::new("emfile");
    env.push(&plugin("counter_v1"));
    let molt = env.start(Vec::<String>::new());
    molt.wait_for_version("1.0.0");
    // A client connected before the descriptors run out keeps its connection.
    let kept = http();
    incr(&kept, &molt, 1, "1.0.0");

    // Leave the supervisor a handful of descriptors more than it has open.
    let limit = open_fds(molt.pid()) + 8;
    let set = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &molt.pid().to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("running prlimit");
    assert!(set.success(), "prlimit failed");

    // Far more connections than it can accept: the rest wait in the backlog while accept
    // fails with EMFILE.
    let addr = molt
        .url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let flood: Vec<std::net::TcpStream> = (0..40)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connecting (the backlog takes it)"))
        .collect();
    let until = std::time::Instant::now() + SHOW_TIMEOUT;
    while !molt.log().contains("cannot accept connections") {
        assert!(
            std::time::Instant::now() < until,
            "no accept failure logged:\n{}",
            molt.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The connection it already had is still served.
    incr(&kept, &molt, 5, "1.0.0");

    // Descriptors come back: the waiting connections are accepted and new clients served.
    drop(flood);
    let fresh = http();
    let (total, _) = count(&fresh, &molt);
    assert_eq!(total, 6, "{}", molt.log());
    let log = molt.log();
    assert_eq!(
        log.matches("cannot accept connections").count(),
        1,
        "one warning per episode, not one per retry:\n{log}"
    );
    molt.terminate();
}
