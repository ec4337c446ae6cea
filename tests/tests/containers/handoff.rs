//! Scale-down without losing state: two containers on one release volume, each with its own
//! state and its own traffic; `molt handoff` from the second to the first while both take
//! writes. The first serves on with no failed request and ends with the merge of both states
//! (every acknowledged write of either is there); the time is printed against the grace
//! period; the second, restarted on its state directory, does not serve the handed-off state
//! again.

use super::*;
use molt_tests::artifacts::plugin;
use molt_tests::docker::image_or_skip;
use molt_tests::process::push;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Closed-loop writers on one pod's key: how many were acknowledged (200), and how many failed
/// (any other answer, or none).
struct Writers {
    acked: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    /// Non-200 answers, for the message (the first few).
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    fn start(pod: &Pod, key: &str, threads: usize, stop: &Arc<AtomicBool>) -> Writers {
        let acked = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let url = pod.url(&format!("/incr/{key}"));
        let threads = (0..threads)
            .map(|_| {
                let (url, stop, acked, failed, errors) = (
                    url.clone(),
                    Arc::clone(stop),
                    Arc::clone(&acked),
                    Arc::clone(&failed),
                    Arc::clone(&errors),
                );
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .expect("an HTTP client");
                    while !stop.load(Ordering::SeqCst) {
                        match http.post(&url).send() {
                            Ok(r) if r.status().as_u16() == 200 => {
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                            other => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                let mut errors = errors.lock().expect("the error list");
                                if errors.len() < 5 {
                                    errors.push(match other {
                                        Ok(r) => format!("{} {}", r.status(), r.text().unwrap_or_default()),
                                        Err(e) => e.to_string(),
                                    });
                                }
                                // A sealed pod answers at once: do not spin on it.
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                })
            })
            .collect();
        Writers {
            acked,
            failed,
            errors,
            threads,
        }
    }

    /// Waits for the writers (after `stop`); (acknowledged, failed, first errors).
    fn join(self) -> (u64, u64, Vec<String>) {
        for t in self.threads {
            t.join().expect("a writer thread");
        }
        let errors = self.errors.lock().expect("the error list").clone();
        (
            self.acked.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            errors,
        )
    }
}

/// `GET /count/{key}` on `pod`.
fn key_count(pod: &Pod, key: &str) -> u64 {
    pod.number(reqwest::Method::GET, &format!("/count/{key}")).0
}

#[test]
fn handoff_from_the_second_container_to_the_first_under_load_loses_nothing() {
    let Some(image) =
        image_or_skip("handoff::handoff_from_the_second_container_to_the_first_under_load_loses_nothing")
    else {
        return;
    };
    let dir = TestDir::new("containers-handoff");
    let volume = dir.mkdir("volume");
    let (secrets, token_file) = token_dir(&dir);
    let second_state = dir.mkdir("state-second");
    push(&plugin("counter_v2"), &volume);
    let first = Pod::start(image, "first", &volume, &dir.mkdir("state-first"), &secrets, &[]);
    let second = Pod::start(image, "second", &volume, &second_state, &secrets, &[]);
    for pod in [&first, &second] {
        pod.wait_version("2.0.0");
    }
    // Each its own state: 3 and 5 on the shared key `default`.
    first.incr_n(0, 3, "2.0.0");
    second.incr_n(0, 5, "2.0.0");

    // Traffic on both, each on its own key.
    let stop = Arc::new(AtomicBool::new(false));
    let on_first = Writers::start(&first, "on-first", 2, &stop);
    let on_second = Writers::start(&second, "on-second", 1, &stop);
    std::thread::sleep(Duration::from_millis(800));

    let out = molt_tests::process::molt_within(
        &[
            "handoff",
            "--from",
            &second.control_base(),
            "--to",
            &first.control_base(),
            "--token-file",
            &token_file.display().to_string(),
            "--grace",
            "30s",
            "--unready-wait",
            "500ms",
        ],
        Duration::from_secs(60),
    );
    // The first keeps taking writes after the handoff too.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let (first_acked, first_failed, first_errors) = on_first.join();
    let (second_acked, _second_refused, _) = on_second.join();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "molt handoff: {}\n{}",
        text(&out),
        all_logs(&[first, second])
    );
    eprintln!("{report}");
    assert!(report.contains("of the 30.00 s grace period"), "{report}");

    assert_eq!(
        first_failed, 0,
        "no request to the first failed during the handoff: {first_errors:?}"
    );
    assert!(
        first_acked > 0 && second_acked > 0,
        "both took writes: {first_acked} {second_acked}"
    );
    assert_eq!(
        key_count(&first, "on-first"),
        first_acked,
        "every write acknowledged by the first is there"
    );
    assert_eq!(
        key_count(&first, "on-second"),
        second_acked,
        "every write acknowledged by the second before it sealed is in the first"
    );
    assert_eq!(key_count(&first, "default"), 3 + 5, "the merge of both states");
    let (code, body, _) = second.request(reqwest::Method::GET, "/count/on-second");
    assert_eq!(code, 503, "the second serves nothing after the handoff: {body}");
    eprintln!(
        "handoff under load: the first took {first_acked} writes with 0 failed, the second {second_acked} \
         before it sealed; the first holds both"
    );

    // docker stop (SIGTERM), and a new container on the second's state directory: it starts
    // empty, not with the state the first now holds.
    let stopped = second.container.stop(Duration::from_secs(30));
    assert_eq!(stopped.exit_code, 0, "{}", second.logs());
    let again = Pod::start(image, "second-again", &volume, &second_state, &secrets, &[]);
    again.wait_version("2.0.0");
    assert_eq!(key_count(&again, "default"), 0, "{}", again.logs());
    assert_eq!(key_count(&again, "on-second"), 0, "{}", again.logs());
    assert!(
        again.logs().contains("handed to a peer"),
        "the restart says why it starts empty:\n{}",
        again.logs()
    );
    assert_eq!(
        key_count(&first, "on-second"),
        second_acked,
        "the first still holds it"
    );
}
