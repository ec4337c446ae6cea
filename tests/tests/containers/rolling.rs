//! `molt push LIB --to http://127.0.0.1:P1 --to …P2 --to …P3 --token-file F`: a rolling push
//! over three containers' control APIs, one pod at a time, each waiting for the previous one's
//! probation; and a release that fails probation stops the push at its first pod.

use super::*;
use molt_supervisor::volume::Volume;
use molt_tests::artifacts::plugin;
use molt_tests::docker::image_or_skip;
use molt_tests::process::{molt, push};
use std::time::Instant;

/// Runs `molt push library --to <each pod> --token-file token` and, while it runs, watches
/// which pods serve `version`. Pods are read last to first: a rolling push upgrades them first
/// to last and (when it succeeds) for good, so reading in reverse order can never see a later
/// pod upgraded and an earlier one not unless that really happened. Asserts that the pods
/// serving `version` always form a prefix of `pods` (one at a time, in order); returns the
/// push's output and the distinct states seen.
fn rolling_push(library: &Path, version: &str, pods: &[Pod], token: &Path) -> (Output, Vec<Vec<bool>>) {
    let mut args: Vec<String> = vec!["push".into(), library.display().to_string()];
    for pod in pods {
        args.extend(["--to".into(), pod.control_base()]);
    }
    args.extend(["--token-file".into(), token.display().to_string()]);
    // Bounded, so that a pod stuck in probation fails the test instead of hanging it.
    args.extend(["--probation-timeout".into(), "30s".into()]);
    let until = Instant::now() + Duration::from_secs(90);
    std::thread::scope(|s| {
        let push = s.spawn(|| molt(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        let mut seen: Vec<Vec<bool>> = Vec::new();
        loop {
            let finished = push.is_finished();
            let mut serving: Vec<bool> = pods
                .iter()
                .rev()
                .map(|pod| pod.status().version.as_deref() == Some(version))
                .collect();
            serving.reverse();
            let first_not = serving.iter().position(|up| !up).unwrap_or(serving.len());
            assert!(
                serving[first_not..].iter().all(|up| !up),
                "a pod served {version} before an earlier one: {serving:?} (pods {:?})\n{}",
                pods.iter().map(|p| &p.name).collect::<Vec<_>>(),
                all_logs(pods)
            );
            if seen.last() != Some(&serving) {
                seen.push(serving);
            }
            if finished {
                break;
            }
            assert!(
                Instant::now() < until,
                "molt push {args:?} did not finish within 90 s\n{}",
                all_logs(pods)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        (push.join().expect("the push thread panicked"), seen)
    })
}

/// Three `--no-watch` pods with a 3 s probation on one shared volume, all serving counter v1
/// (pushed before they start: with `--no-watch` they read `current` only at start). Returns the
/// volume, the token file and the pods.
fn no_watch_trio(image: &molt_tests::docker::Image, dir: &TestDir) -> (PathBuf, PathBuf, Vec<Pod>) {
    let (secrets, token) = token_dir(dir);
    let volume = dir.mkdir("volume");
    push(&plugin("counter_v1"), &volume);
    let pods: Vec<Pod> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let state = dir.mkdir(format!("state-{name}"));
            Pod::start(
                image,
                name,
                &volume,
                &state,
                &secrets,
                &["--no-watch", "--probation", "3s"],
            )
        })
        .collect();
    for pod in &pods {
        pod.wait_version("1.0.0");
    }
    (volume, token, pods)
}

/// The progress lines `[n/total] URL: …` of one pod, from the push's stdout and stderr.
fn progress<'a>(out: &'a str, n: usize, total: usize, pod: &Pod) -> Vec<&'a str> {
    let prefix = format!("[{n}/{total}] {}: ", pod.control_base());
    out.lines().filter_map(|l| l.strip_prefix(&prefix)).collect()
}

/// Checks a successful rolling push's printed progress: each pod in turn, in order, stored,
/// swapped and through probation before the next one is touched.
fn assert_progress(out: &Output, release: &str, pods: &[Pod], stored: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all_lines: Vec<&str> = stdout.lines().collect();
    let total = pods.len();
    let mut previous_last = 0;
    for (i, pod) in pods.iter().enumerate() {
        let n = i + 1;
        let lines = progress(&stdout, n, total, pod);
        assert!(
            lines.len() >= 4
                && lines[0] == format!("uploading {release}")
                && lines[1] == format!("release {release} {}", stored[i])
                && lines[lines.len() - 1] == format!("serving {release}, probation passed"),
            "pod {} ([{n}/{total}]): unexpected progress {lines:?}\n{}",
            pod.name,
            text(out)
        );
        // All of pod n's lines come after all of pod n-1's.
        let mine = format!("[{n}/{total}] ");
        let first = all_lines.iter().position(|l| l.starts_with(&mine));
        let last = all_lines.iter().rposition(|l| l.starts_with(&mine));
        let (Some(first), Some(last)) = (first, last) else {
            unreachable!("pod {n}'s lines were found above")
        };
        assert!(
            first >= previous_last,
            "pod {n}'s progress interleaves with the previous pod's:\n{}",
            text(out)
        );
        previous_last = last;
    }
    let done = format!("pushed {release} to {total} supervisor(s), all serving it");
    assert!(
        stdout.lines().last() == Some(done.as_str()),
        "the push ends with {done:?}:\n{}",
        text(out)
    );
}

/// Each pod with its own release volume (the k8s README's answer for a strictly one-pod-at-a-
/// time rollout), watching it as usual, with a 1 s probation: the rolling push stores the
/// release on each pod's volume, swaps it, waits for its probation, then moves to the next.
#[test]
fn rolling_push_upgrades_three_containers_one_at_a_time() {
    let Some(image) = image_or_skip("rolling::rolling_push_upgrades_three_containers_one_at_a_time") else {
        return;
    };
    let started = Instant::now();
    let dir = TestDir::new("containers-rolling");
    let (secrets, token) = token_dir(&dir);
    let names = ["a", "b", "c"];
    let volumes: Vec<PathBuf> = names.iter().map(|n| dir.mkdir(format!("volume-{n}"))).collect();
    for volume in &volumes {
        push(&plugin("counter_v1"), volume);
    }
    let pods: Vec<Pod> = names
        .iter()
        .zip(&volumes)
        .map(|(name, volume)| {
            let state = dir.mkdir(format!("state-{name}"));
            Pod::start(image, name, volume, &state, &secrets, &["--probation", "1s"])
        })
        .collect();
    let counts = [2u64, 4, 6];
    for (pod, n) in pods.iter().zip(counts) {
        pod.wait_version("1.0.0");
        pod.incr_n(0, n, "1.0.0");
    }
    let before: Vec<Inspect> = pods.iter().map(Pod::inspect).collect();
    let (out, seen) = rolling_push(&plugin("counter_v2"), "2.0.0", &pods, &token);
    assert!(out.status.success(), "the rolling push failed:\n{}", text(&out));
    assert_progress(&out, "counter 2.0.0", &pods, &["stored"; 3]);

    for ((pod, n), volume) in pods.iter().zip(counts).zip(&volumes) {
        let status = pod.status();
        assert_eq!(
            (status.version.as_deref(), status.swaps),
            (Some("2.0.0"), 1),
            "pod {}: {status:?}",
            pod.name
        );
        let probation = status
            .probation
            .as_ref()
            .map(|p| (p.version.as_str(), p.state.as_str()));
        assert_eq!(probation, Some(("2.0.0", "passed")), "pod {}", pod.name);
        assert_eq!(
            pod.count(),
            (n, "2.0.0".to_owned()),
            "pod {}: count kept",
            pod.name
        );
        let current = Volume::new(volume).current(APP).expect("reading current");
        assert_eq!(current.as_deref(), Some("2.0.0"), "pod {}'s volume", pod.name);
    }
    assert_not_restarted(&pods, &before);
    eprintln!(
        "rolling push over three containers: states seen {seen:?}, in {:.1?}",
        started.elapsed()
    );
}

/// Three pods on one shared volume, with `--probation 3s` and `--no-watch`. Sharing a volume,
/// an activation through one pod's control API moves the `current` every pod reads: with
/// watchers on, all three would follow it at once (and each failed probation would roll the
/// shared pointer back on its own), so a rolling push would be rolling in name only. With
/// `--no-watch` only a pod's own control API changes what it runs, and the push really
/// touches one pod at a time.
///
/// A release whose health check fails (`fixture_unhealthy`, "2.0.0-unhealthy") stops the push
/// at the first pod, which rolls itself back to 1.0.0; the other two never see it. Then counter
/// v2 rolls out over the same three pods. No count is lost, no container restarts.
#[test]
fn rolling_push_stops_at_a_failed_probation_then_v2_rolls_out() {
    let Some(image) = image_or_skip("rolling::rolling_push_stops_at_a_failed_probation_then_v2_rolls_out")
    else {
        return;
    };
    let started = Instant::now();
    let dir = TestDir::new("containers-probation");
    let (volume, token, pods) = no_watch_trio(image, &dir);
    let counts = [2u64, 4, 6];
    for (pod, n) in pods.iter().zip(counts) {
        pod.incr_n(0, n, "1.0.0");
    }
    let before: Vec<Inspect> = pods.iter().map(Pod::inspect).collect();

    // 1. The unhealthy release: the push stops after the first pod.
    let bad = "2.0.0-unhealthy";
    let (out, seen) = rolling_push(&plugin("fixture_unhealthy"), bad, &pods, &token);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "the push must fail:\n{all}");
    let first = progress(&all, 1, 3, &pods[0]);
    assert!(
        first.first() == Some(&format!("uploading counter {bad}").as_str())
            && first
                .iter()
                .any(|l| l.starts_with("FAILED: ") && l.contains("failed probation")),
        "pod a: {first:?}\n{all}"
    );
    assert!(
        all.contains("stopped at 1/3") && all.contains("2 never touched"),
        "the push says where it stopped and what it left alone:\n{all}"
    );
    for pod in &pods[1..] {
        assert!(
            !all.contains(&pod.control_base()),
            "the push must not have touched pod {}:\n{all}",
            pod.name
        );
    }

    // Pod a rolled itself back: 1.0.0 again, probation `failed`, both swaps counted.
    let a = pods[0].wait_status("the failed probation recorded", |s| {
        s.probation
            .as_ref()
            .is_some_and(|p| p.version == bad && p.state == "failed")
    });
    assert_eq!(
        (a.version.as_deref(), a.swaps),
        (Some("1.0.0"), 2),
        "pod a: swapped to {bad} and back: {a:?}"
    );
    let reason = a
        .probation
        .as_ref()
        .and_then(|p| p.reason.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("health"),
        "pod a: the probation failure says why: {reason:?}"
    );
    let current = Volume::new(&volume).current(APP).expect("reading current");
    assert_eq!(
        current.as_deref(),
        Some("1.0.0"),
        "pod a's rollback puts the shared `current` back"
    );
    // Pods b and c were never touched: no swap, no refusal, no probation, nothing in the logs.
    for pod in &pods[1..] {
        let status = pod.status();
        assert!(
            status.version.as_deref() == Some("1.0.0")
                && status.swaps == 0
                && status.last_swap.is_none()
                && status.last_refusal.is_none()
                && status.probation.is_none(),
            "pod {} must never have seen {bad}: {status:?}",
            pod.name
        );
        let logs = pod.logs();
        assert!(
            !logs.contains(bad),
            "pod {} must never have seen {bad}:\n{logs}",
            pod.name
        );
    }
    for (pod, n) in pods.iter().zip(counts) {
        assert_eq!(
            pod.count(),
            (n, "1.0.0".to_owned()),
            "pod {}: count intact",
            pod.name
        );
    }

    // 2. counter v2 over the same three pods: one at a time, all through probation. The first
    // upload stores it on the shared volume; the next two find it there.
    let (out, seen_v2) = rolling_push(&plugin("counter_v2"), "2.0.0", &pods, &token);
    assert!(
        out.status.success(),
        "the rolling push of v2 failed:\n{}",
        text(&out)
    );
    let present = "already present (same sha256)";
    assert_progress(&out, "counter 2.0.0", &pods, &["stored", present, present]);
    for ((pod, n), swaps) in pods.iter().zip(counts).zip([3, 1, 1]) {
        let status = pod.status();
        let probation = status
            .probation
            .as_ref()
            .map(|p| (p.version.as_str(), p.state.as_str()));
        assert!(
            status.version.as_deref() == Some("2.0.0")
                && status.swaps == swaps
                && probation == Some(("2.0.0", "passed")),
            "pod {}: {status:?}",
            pod.name
        );
        assert_eq!(
            pod.count(),
            (n, "2.0.0".to_owned()),
            "pod {}: count kept",
            pod.name
        );
    }
    assert_not_restarted(&pods, &before);
    eprintln!(
        "no-watch trio: {bad} stopped at pod a (states seen {seen:?}), then 2.0.0 rolled out \
         (states seen {seen_v2:?}), in {:.1?}",
        started.elapsed()
    );
}

/// A rolling push over the `--no-watch` trio on one shared volume fails at the second pod: its
/// probation fails (the test sends it requests that answer 500 while it is on probation), it
/// rolls itself back, and the push rolls back the first pod, which had passed. Both must end on
/// 1.0.0, the shared `current` must name 1.0.0, the third pod is never touched.
#[test]
fn a_failure_at_the_second_pod_rolls_the_first_back_on_a_shared_volume() {
    let Some(image) =
        image_or_skip("rolling::a_failure_at_the_second_pod_rolls_the_first_back_on_a_shared_volume")
    else {
        return;
    };
    let started = Instant::now();
    let dir = TestDir::new("containers-rollback");
    let (volume, token, pods) = no_watch_trio(image, &dir);
    let counts = [1u64, 2, 3];
    for (pod, n) in pods.iter().zip(counts) {
        pod.incr_n(0, n, "1.0.0");
    }

    // `1.1.0-panic-handle` is healthy, but its `GET /boom` panics (a 500): probation fails once
    // five such answers make more than a tenth of a pod's requests.
    let bad = "1.1.0-panic-handle";
    let mut args: Vec<String> = vec![
        "push".into(),
        plugin("fixture_panic_handle").display().to_string(),
    ];
    for pod in &pods {
        args.extend(["--to".into(), pod.control_base()]);
    }
    args.extend(["--token-file".into(), token.display().to_string()]);
    args.extend(["--probation-timeout".into(), "30s".into()]);
    let out = std::thread::scope(|s| {
        let push = s.spawn(|| molt(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        pods[1].wait_status(&format!("{bad} on probation"), |s| {
            s.version.as_deref() == Some(bad)
                && s.probation
                    .as_ref()
                    .is_some_and(|p| p.version == bad && p.state == "running")
        });
        for _ in 0..10 {
            let (code, _, _) = pods[1].request(reqwest::Method::GET, "/boom");
            assert_eq!(code, 500, "GET /boom on {bad}");
        }
        push.join().expect("the push thread panicked")
    });
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "the push must fail at pod b:\n{all}");
    assert!(
        all.contains("stopped at 2/3") && all.contains("1 upgraded supervisor(s) rolled back"),
        "the push stops at pod b and rolls pod a back:\n{all}"
    );
    let b = pods[1].wait_status("pod b's failed probation", |s| {
        s.probation
            .as_ref()
            .is_some_and(|p| p.version == bad && p.state == "failed")
    });
    assert_eq!(
        b.version.as_deref(),
        Some("1.0.0"),
        "pod b rolled itself back: {b:?}"
    );
    let a = pods[0].status();
    let current = Volume::new(&volume).current(APP).expect("reading current");
    assert_eq!(
        (a.version.as_deref(), current.as_deref()),
        (Some("1.0.0"), Some("1.0.0")),
        "pod a must be rolled back to 1.0.0 and the shared `current` must name 1.0.0; pod a: {a:?}\n{all}\n{}",
        all_logs(&pods)
    );
    let c = pods[2].status();
    assert!(
        c.swaps == 0 && c.version.as_deref() == Some("1.0.0"),
        "pod c never touched: {c:?}"
    );
    for (pod, n) in pods.iter().zip(counts) {
        assert_eq!(
            pod.count(),
            (n, "1.0.0".to_owned()),
            "pod {}: count intact",
            pod.name
        );
    }
    eprintln!(
        "failure at the second pod rolled the first back, in {:.1?}",
        started.elapsed()
    );
}
