//! What `molt run` refuses to start with, and how to start anyway.

use super::*;

#[test]
fn an_exposed_control_api_without_a_token_is_refused_at_start() {
    let env = Env::new("exposed");
    env.push(&plugin("counter_v1"));
    let stderr = run_refused(&env, &["--control", "0.0.0.0:0"]);
    assert!(
        stderr.contains("0.0.0.0:0") && stderr.contains("--token-file"),
        "the refusal does not name the address and --token-file:\n{stderr}"
    );
    assert!(env.snapshots().is_empty(), "a refused start wrote a snapshot");
}

/// Flips one byte of the payload (after the two header lines) of a snapshot file.
fn flip_payload_byte(snapshot: &Path) {
    let mut bytes = std::fs::read(snapshot).expect("reading the snapshot");
    let mut newlines = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i);
    let (_, second) = (newlines.next(), newlines.next());
    let at = second.expect("a snapshot has two header lines") + 1;
    assert!(at < bytes.len(), "the snapshot has no payload");
    bytes[at] ^= 0x01;
    std::fs::write(snapshot, bytes).expect("writing the snapshot back");
}

/// One `molt run` life: start, `n` increments, SIGTERM (a snapshot); returns the count.
fn live(env: &Env, n: u64) -> u64 {
    let molt = env.start(["--snapshot-interval", "0s"]);
    molt.wait_for_version("1.0.0");
    let total = incr(&http(), &molt, n, "1.0.0");
    let log = molt.log_path().to_owned();
    let exit = molt.terminate();
    assert!(exit.success(), "molt run exited {exit}:\n{}", read(&log));
    total
}

#[test]
fn a_corrupt_snapshot_stops_every_start_until_the_operator_discards_it() {
    let env = Env::new("corrupt");
    env.push(&plugin("counter_v1"));
    let older = live(&env, 4);
    let newer = live(&env, 3);
    assert_eq!(
        (older, newer),
        (4, 7),
        "the second life did not restore the first's count"
    );
    let snapshots = env.snapshots();
    assert!(snapshots.len() >= 2, "two lives, {snapshots:?}");
    let newest = snapshots.last().expect("checked").clone();
    let name = newest
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    flip_payload_byte(&newest);

    let stderr = run_refused(&env, &["--control", "127.0.0.1:0"]);
    assert!(
        stderr.contains(&name) && stderr.contains("payload checksum"),
        "the refusal does not name {name} and the failed check:\n{stderr}"
    );
    assert!(
        stderr.contains("--discard-corrupt-state"),
        "the refusal does not say how to start anyway:\n{stderr}"
    );
    // Left in place: the next plain start (a Kubernetes restart) is refused again, never
    // served the older snapshot silently.
    let corrupt = std::fs::read(&newest).expect("the corrupt snapshot stays under its name");
    let again = run_refused(&env, &["--control", "127.0.0.1:0"]);
    assert!(
        again.contains(&name) && again.contains("payload checksum"),
        "{again}"
    );
    assert_eq!(
        std::fs::read(&newest).unwrap(),
        corrupt,
        "the refused start changed it"
    );

    // Asked to, it sets the corrupt one aside (renamed, not deleted) and starts from the next
    // older snapshot.
    let molt = env.start(["--discard-corrupt-state"]);
    molt.wait_for_version("1.0.0");
    assert_eq!(
        count(&http(), &molt),
        (older, "1.0.0".to_owned()),
        "{}",
        molt.log()
    );
    assert!(!newest.exists(), "the corrupt snapshot stayed under its name");
    let aside: Vec<String> = std::fs::read_dir(&env.state)
        .expect("listing the state directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{name}.corrupt-")))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the corrupt snapshot was not set aside: {aside:?}"
    );
    assert_eq!(
        std::fs::read(env.state.join(&aside[0])).unwrap(),
        corrupt,
        "set aside unchanged"
    );
}
