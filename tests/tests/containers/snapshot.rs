//! `docker stop` sends SIGTERM: molt drains, writes its final snapshot into the host state
//! directory and exits 0; a new container on the same state directory restores it, also across
//! a code upgrade pushed while no container ran.

use super::*;
use molt_tests::artifacts::plugin;
use molt_tests::docker::image_or_skip;
use molt_tests::process::push;
use std::time::Instant;

/// How long `docker stop` waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Stops `pod` with `docker stop` and checks it went down cleanly, on SIGTERM, writing a new
/// snapshot; returns that snapshot.
fn stop_cleanly(pod: Pod) -> PathBuf {
    let before = pod.snapshots();
    let stopped = pod.container.stop(STOP_GRACE);
    let logs = pod.logs();
    assert!(
        !stopped.running && stopped.exit_code == 0 && !stopped.oom_killed,
        "pod {}: docker stop must end molt with exit code 0 (137 would be SIGKILL after the grace \
         period): {stopped:?}\n{logs}",
        pod.name
    );
    assert!(
        logs.contains("SIGTERM received") && logs.contains("final snapshot written"),
        "pod {}: molt logs the signal and the final snapshot:\n{logs}",
        pod.name
    );
    let after = pod.snapshots();
    let new: Vec<&PathBuf> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(
        new.len(),
        1,
        "pod {}: one new snapshot-*.molt in the host state directory {} (before {before:?}, after {after:?})\n{logs}",
        pod.name,
        pod.state.display()
    );
    new[0].clone()
}

#[test]
fn docker_stop_writes_a_snapshot_and_a_new_container_restores_the_count() {
    let Some(image) =
        image_or_skip("snapshot::docker_stop_writes_a_snapshot_and_a_new_container_restores_the_count")
    else {
        return;
    };
    let started = Instant::now();
    let dir = TestDir::new("containers-snapshot");
    let (secrets, _) = token_dir(&dir);
    let volume = dir.mkdir("volume");
    let state = dir.mkdir("state");
    push(&plugin("counter_v1"), &volume);
    // Snapshots only on shutdown, so the one found afterwards is SIGTERM's.
    let only_on_shutdown = ["--snapshot-interval", "0s"];

    let first = Pod::start(image, "first", &volume, &state, &secrets, &only_on_shutdown);
    first.wait_version("1.0.0");
    first.incr_n(0, 7, "1.0.0");
    assert!(
        first.snapshots().is_empty(),
        "no snapshot before the stop: {:?}",
        first.snapshots()
    );
    let first_id = first.container.id().to_owned();
    let snapshot = stop_cleanly(first);

    // A new container (new name, new id) on the same state directory: the same count.
    let second = Pod::start(image, "second", &volume, &state, &secrets, &only_on_shutdown);
    assert_ne!(second.container.id(), first_id, "a new container");
    second.wait_version("1.0.0");
    assert_eq!(
        second.count(),
        (7, "1.0.0".to_owned()),
        "the count comes back from {}",
        snapshot.display()
    );
    second.incr_n(7, 1, "1.0.0");
    stop_cleanly(second);

    // v2 pushed while nothing runs: the next container starts on v2 and migrates the v1
    // snapshot through v2's import hook.
    push(&plugin("counter_v2"), &volume);
    let third = Pod::start(image, "third", &volume, &state, &secrets, &only_on_shutdown);
    let status = third.wait_version("2.0.0");
    assert_eq!(
        third.count(),
        (8, "2.0.0".to_owned()),
        "the v1 snapshot restored into v2"
    );
    assert_eq!(status.swaps, 0, "started on v2, no swap: {status:?}");
    stop_cleanly(third);
    eprintln!(
        "three containers in turn on one state directory kept the count across docker stop, in {:.1?}",
        started.elapsed()
    );
}
