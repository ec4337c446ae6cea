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
