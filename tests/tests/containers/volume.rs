//! Three containers, one bind-mounted release volume, three state directories: `molt push`
//! onto the volume (from the host) is all it takes to deploy, and to upgrade all three in place.

use super::*;
use molt_tests::artifacts::plugin;
use molt_tests::docker::image_or_skip;
use molt_tests::process::push;
use std::time::Instant;

#[test]
fn three_containers_on_one_volume_upgrade_in_place_and_keep_their_counts() {
    let Some(image) =
        image_or_skip("volume::three_containers_on_one_volume_upgrade_in_place_and_keep_their_counts")
    else {
        return;
    };
    let started = Instant::now();
    let dir = TestDir::new("containers-volume");
    let volume = dir.mkdir("volume");
    let (secrets, _) = token_dir(&dir);
    // The pods start on an empty volume: nothing to serve until the first push.
    let pods: Vec<Pod> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            Pod::start(
                image,
                name,
                &volume,
                &dir.mkdir(format!("state-{name}")),
                &secrets,
                &[],
            )
        })
        .collect();
    for pod in &pods {
        let status = pod.status();
        assert!(
            !status.ready && status.version.is_none(),
            "pod {}: nothing is on the volume yet, nothing may serve: {status:?}",
            pod.name
        );
    }

    // v1 onto the volume: every watcher sees the new `current` and starts serving it.
    push(&plugin("counter_v1"), &volume);
    for pod in &pods {
        pod.wait_version("1.0.0");
    }
    // A different count in each pod: they share the code, not the state.
    let counts = [3u64, 5, 8];
    for (pod, n) in pods.iter().zip(counts) {
        pod.incr_n(0, n, "1.0.0");
    }
    let before: Vec<Inspect> = pods.iter().map(Pod::inspect).collect();
    let status_before: Vec<Status> = pods.iter().map(Pod::status).collect();

    // v2 onto the volume: each pod swaps in place.
    push(&plugin("counter_v2"), &volume);
    for ((pod, n), status_before) in pods.iter().zip(counts).zip(&status_before) {
        let status = pod.wait_version("2.0.0");
        assert_eq!(
            pod.count(),
            (n, "2.0.0".to_owned()),
            "pod {}: its own count, kept across the swap",
            pod.name
        );
        pod.incr_n(n, 1, "2.0.0");
        assert_eq!(status.swaps, 1, "pod {}: one swap: {status:?}", pod.name);
        let swap = status.last_swap.as_ref().expect("the swap is reported");
        assert!(
            swap.ok && swap.from.as_deref() == Some("1.0.0") && swap.to == "2.0.0",
            "pod {}: {swap:?}",
            pod.name
        );
        assert_eq!(
            (status.pid, &status.started_at),
            (status_before.pid, &status_before.started_at),
            "pod {}: the same supervisor process served before and after",
            pod.name
        );
    }
    assert_not_restarted(&pods, &before);
    eprintln!(
        "three containers upgraded 1.0.0 → 2.0.0 in place (counts {counts:?} kept, pauses {:?} µs) in {:.1?}",
        pods.iter()
            .map(|p| p.status().last_swap.map_or(0, |s| s.pause_us))
            .collect::<Vec<_>>(),
        started.elapsed()
    );
}

/// The documented fleet-wide route (deploy/k8s/README.md, route 1): every pod watches the
/// shared volume, each with its own probation and automatic rollback. A release whose health
/// check fails is pushed onto the volume: every pod must end back on 1.0.0, with its count, and
/// the shared `current` must name 1.0.0 again.
///
/// Each pod rolls back to what *it* ran before, not to the shared `previous`, which another
/// pod's rollback may already have swapped with `current`.
#[test]
fn a_release_failing_probation_on_the_shared_volume_rolls_every_container_back() {
    let Some(image) =
        image_or_skip("volume::a_release_failing_probation_on_the_shared_volume_rolls_every_container_back")
    else {
        return;
    };
    let started = Instant::now();
    let dir = TestDir::new("containers-volume-probation");
    let volume = dir.mkdir("volume");
    let (secrets, _) = token_dir(&dir);
    push(&plugin("counter_v1"), &volume);
    let pods: Vec<Pod> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let state = dir.mkdir(format!("state-{name}"));
            Pod::start(image, name, &volume, &state, &secrets, &["--probation", "3s"])
        })
        .collect();
    let counts = [1u64, 2, 3];
    for (pod, n) in pods.iter().zip(counts) {
        pod.wait_version("1.0.0");
        pod.incr_n(0, n, "1.0.0");
    }
    let before: Vec<Inspect> = pods.iter().map(Pod::inspect).collect();

    let bad = "2.0.0-unhealthy";
    push(&plugin("fixture_unhealthy"), &volume);
    // Each pod swaps to the bad release and back: either its own probation fails, or another
    // pod's failure marks the release bad and moves `current` back first, and this pod follows
    // the volume. Which one happens first is a race the test must not depend on.
    let statuses: Vec<Status> = pods
        .iter()
        .map(|pod| {
            pod.wait_status(&format!("swapped to {bad} and back to 1.0.0"), |s| {
                s.version.as_deref() == Some("1.0.0") && s.swaps == 2
            })
        })
        .collect();
    assert!(
        statuses.iter().any(|s| s
            .probation
            .as_ref()
            .is_some_and(|p| p.version == bad && p.state == "failed")),
        "at least one pod's probation of {bad} failed: {statuses:?}\n{}",
        all_logs(&pods)
    );
    let shared = molt_supervisor::volume::Volume::new(&volume);
    assert!(shared.is_bad(APP, bad), "{bad} is recorded bad on the volume");
    let current = shared.current(APP).expect("reading current");
    for (pod, n) in pods.iter().zip(counts) {
        let status = pod.status();
        assert_eq!(
            (status.version.as_deref(), status.swaps, current.as_deref()),
            (Some("1.0.0"), 2, Some("1.0.0")),
            "pod {}: swapped to {bad} once and back once, and the volume names 1.0.0: {status:?}\n{}",
            pod.name,
            all_logs(&pods)
        );
        assert_eq!(
            pod.count(),
            (n, "1.0.0".to_owned()),
            "pod {}: count intact",
            pod.name
        );
    }
    assert_not_restarted(&pods, &before);
    eprintln!(
        "{bad} on the shared volume: three containers rolled back, in {:.1?}",
        started.elapsed()
    );
}
