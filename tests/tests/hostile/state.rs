//! The state directory under faults: a corrupt newest snapshot (refused on every start until
//! the operator says otherwise), a second supervisor on the same directory, snapshot writes
//! that fail while serving and at SIGTERM, and leftovers of a write cut off by a crash.

use super::*;

/// `molt run` on `case` with `interval` between snapshots.
fn opts_every(case: &Case, interval: &str, extra: &[&str]) -> RunOptions {
    RunOptions::new(&case.volume, APP, &case.dir.mkdir("work")).args(
        [
            "--state-dir",
            &path(&case.state),
            "--run-dir",
            &path(&case.dir.mkdir("run")),
            "--snapshot-interval",
            interval,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().map(|s| s.to_string())),
    )
}

/// The snapshot files, oldest first.
fn snapshots(case: &Case) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&case.state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("snapshot-") && name.ends_with(".molt")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_corrupt_snapshot_is_refused_on_every_start_never_an_older_one_served() {
    let case = Case::new("state-corrupt");
    let (molt, older) = case.serving(case.opts(Vec::<String>::new()), 42);
    assert!(molt.terminate().success());
    let (molt, newer) = case.serving(case.opts(Vec::<String>::new()), 8);
    assert_eq!(newer, 50);
    assert!(molt.terminate().success());
    let newest = snapshots(&case).pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();
    let before = case.trees();
    // A Kubernetes restart loop: every plain start is refused, naming the file and the check.
    for _ in 0..3 {
        let stderr = start_refused(&case, &[]);
        let name = newest.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            stderr.contains(&name) && stderr.contains("payload checksum check failed"),
            "{stderr}"
        );
        assert!(
            stderr.contains("no start will serve an older snapshot in its place"),
            "{stderr}"
        );
        assert!(stderr.contains("--discard-corrupt-state"), "{stderr}");
        assert_eq!(
            case.trees(),
            before,
            "a refused start changed the state directory"
        );
    }
    // The operator's word: the corrupt file is set aside and the older snapshot (42) serves.
    let (molt, n) = case.serving(case.opts(["--discard-corrupt-state"]), 0);
    assert_eq!(n, older, "{}", molt.log());
    assert!(
        molt.log().contains("the corrupt snapshot is set aside"),
        "{}",
        molt.log()
    );
}

#[test]
fn a_second_supervisor_on_one_state_directory_is_refused_naming_the_first() {
    let case = Case::new("state-second");
    let (molt, n) = case.serving(case.opts(Vec::<String>::new()), 101);
    let before = case.trees();
    let stderr = start_refused(&case, &["--snapshot-interval", "0s"]);
    assert!(stderr.contains("is in use by another supervisor"), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {} on host", molt.pid())),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
    still_serving(&molt, n);
    assert_eq!(case.trees(), before);
    // The first one's state is the one a restart keeps.
    assert!(molt.terminate().success());
    let (again, m) = case.serving(case.opts(Vec::<String>::new()), 0);
    assert_eq!(m, 101);
    drop(again);
}

#[test]
fn failing_snapshot_writes_show_in_status_metrics_and_readiness_and_at_sigterm_say_what_is_lost() {
    let case = Case::new("state-failing");
    let (molt, n) = case.serving(opts_every(&case, "300ms", &[]), 12);
    // Wait for a good periodic snapshot, then take the state directory away: a regular file
    // where the directory was, so every write fails (root ignores permission bits).
    molt.wait_status(Duration::from_secs(20), "a snapshot", |s| {
        s.last_snapshot.is_some()
    });
    let moved = case.dir.path().join("state-moved");
    std::fs::rename(&case.state, &moved).unwrap();
    std::fs::write(&case.state, b"not a directory").unwrap();
    let status = molt.wait_status(Duration::from_secs(20), "a snapshot failure", |s| {
        s.snapshot_failure.is_some()
    });
    let failure = status.snapshot_failure.clone().unwrap();
    assert!(failure.consecutive >= 1, "{failure:?}");
    assert!(!status.ready, "{status:?}");
    let http = http();
    let ready = http.get(molt.control_url("/readyz")).send().unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let why = ready.text().unwrap();
    assert!(why.contains("snapshot writes are failing"), "{why}");
    let metrics = http
        .get(molt.control_url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("molt_snapshot_failing 1"), "{metrics}");
    assert!(
        !metrics.contains("molt_snapshots_total{result=\"failed\"} 0"),
        "{metrics}"
    );
    // It keeps serving (the state is in memory), and takes 3 more increments.
    still_serving(&molt, n);
    for _ in 0..3 {
        assert_eq!(
            http.post(molt.url("/incr")).send().unwrap().status().as_u16(),
            200
        );
    }
    // SIGTERM: the final snapshot is retried, then reported with what is lost; exit 1.
    let log = molt.log_path().to_owned();
    let exit = molt.terminate();
    let log = std::fs::read_to_string(log).unwrap();
    assert_eq!(exit.code(), Some(1), "{log}");
    assert!(log.contains("final snapshot failed; retrying"), "{log}");
    assert!(log.contains("final snapshot failed 3 times"), "{log}");
    assert!(log.contains("requests were answered since then"), "{log}");
    // Put the directory back: the restart serves the last good snapshot (12), as reported.
    std::fs::remove_file(&case.state).unwrap();
    std::fs::rename(&moved, &case.state).unwrap();
    let (molt, m) = case.serving(case.opts(Vec::<String>::new()), 0);
    assert_eq!(m, n, "{}", molt.log());
    // And a snapshot that succeeds again clears the failure (shown on a fresh supervisor by
    // /readyz being 200 once serving).
    assert_eq!(
        http.get(molt.control_url("/readyz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[test]
fn a_snapshot_write_cut_off_by_a_crash_leaves_nothing_after_the_next_start() {
    let case = Case::new("state-leftover");
    let leftover = case.state.join(".snapshot-1700000000000-0000.molt.tmp-AbC123");
    std::fs::write(&leftover, vec![7u8; 3 << 20]).unwrap();
    // Written by a process killed two hours ago (nobody holds its lock).
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (molt, _) = case.serving(case.opts(Vec::<String>::new()), 1);
    assert!(!leftover.exists(), "the leftover temporary file is still there");
    assert!(
        molt.log().contains("removed the leftovers of interrupted writes"),
        "{}",
        molt.log()
    );
}
