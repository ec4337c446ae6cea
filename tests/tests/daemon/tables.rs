//! Tables through the real `molt run`: kv v3 (state in host-owned tables) upgraded to kv v4
//! (a new record schema) and rolled back under a steady write load, with no failed request
//! and no lost write; the tables carried over a restart by the snapshot; a release whose
//! record hook refuses a key refused, naming it, while v3 serves on.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const KV: &str = "kv";
const PRELOADED: u64 = 20_000;

fn start_kv(dir: &TestDir, volume: &Path, state: &Path) -> MoltProcess {
    let opts = RunOptions::new(volume, KV, &dir.mkdir("work")).args([
        "--state-dir".to_owned(),
        path(state),
        "--run-dir".to_owned(),
        path(&dir.mkdir("run")),
        "--probation".to_owned(),
        "0s".to_owned(),
    ]);
    MoltProcess::start(&opts)
}

/// The number of keys `/stats` reports.
fn keys(http: &reqwest::blocking::Client, molt: &MoltProcess) -> u64 {
    let a = answer(http.get(molt.url("/stats")).send().expect("GET /stats"));
    assert_eq!(a.status, 200, "{a:?}");
    let rest = a.body.strip_prefix("{\"keys\":").expect("stats JSON");
    rest[..rest.find(',').expect("a comma")]
        .parse()
        .expect("a key count")
}

#[test]
fn kv_v3_to_v4_and_back_under_writes_then_restart() {
    let dir = TestDir::new("daemon-tables");
    let (volume, state) = (dir.mkdir("volume"), dir.mkdir("state"));
    let molt = start_kv(&dir, &volume, &state);
    push_to(&volume, "kv_v3");
    molt.wait_for_version("3.0.0");
    let http = http();
    let a = answer(
        http.post(molt.url(&format!("/preload?keys={PRELOADED}&size=100")))
            .send()
            .expect("preload"),
    );
    assert_eq!(a.status, 200, "{a:?}");

    // Writers: each PUTs new keys over one keep-alive connection until told to stop.
    let stop = AtomicBool::new(false);
    let (acked, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for writer in 0..2 {
            let (molt, stop, acked, failed, failures) = (&molt, &stop, &acked, &failed, &failures);
            s.spawn(move || {
                let http = super::http();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let sent = http
                        .put(molt.url(&format!("/kv/w{writer}-{i}")))
                        .body(format!("value {i}"))
                        .send();
                    match sent.map(answer) {
                        Ok(a) if a.status == 201 => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        other => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            failures.lock().unwrap().push(format!("{other:?}"));
                        }
                    }
                    i += 1;
                }
            });
        }
        let wait_writes = |n: u64| {
            let target = acked.load(Ordering::SeqCst) + n;
            while acked.load(Ordering::SeqCst) < target && failed.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait_writes(200);
        push_to(&volume, "kv_v4");
        let up = molt.wait_status(SHOW_TIMEOUT, "the swap to 4.0.0", |s| {
            s.version.as_deref() == Some("4.0.0") && s.last_swap.is_some()
        });
        assert!(up.last_swap.as_ref().is_some_and(|s| s.ok), "{up:#?}");
        wait_writes(200);
        // A preloaded key was written once; kv v4 reads it through the record conversion.
        let a = answer(http.get(molt.url("/kv/k7/writes")).send().expect("GET writes"));
        assert_eq!((a.status, a.body.as_str()), (200, "1"), "{a:?}");
        ok(&["rollback", "--control", &molt.control_base()]);
        molt.wait_for_version("3.0.0");
        wait_writes(200);
        stop.store(true, Ordering::SeqCst);
    });
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "{:?}\n{}",
        failures.lock().unwrap(),
        molt.log()
    );
    let acked = acked.load(Ordering::SeqCst);
    assert_eq!(
        keys(&http, &molt),
        PRELOADED + acked,
        "every acknowledged write is kept"
    );
    let a = answer(http.get(molt.url("/kv/w0-0")).send().expect("GET"));
    assert_eq!((a.status, a.body.as_str()), (200, "value 0"));

    // SIGTERM writes the tables into the snapshot; a new process restores them.
    let exit = molt.terminate();
    assert!(exit.success(), "{exit}");
    let again = start_kv(&dir, &volume, &state);
    again.wait_for_version("3.0.0");
    let http = super::http();
    assert_eq!(keys(&http, &again), PRELOADED + acked, "{}", again.log());
    let a = answer(http.get(again.url("/kv/w1-0")).send().expect("GET"));
    assert_eq!((a.status, a.body.as_str()), (200, "value 0"), "{}", again.log());

    // A release whose record hook refuses the key `poison`: refused, naming it; v3 serves on.
    let a = answer(http.put(again.url("/kv/poison")).body("x").send().expect("PUT"));
    assert_eq!(a.status, 201);
    // The push waits for the supervisor: it says who refused it and why, and puts `current`
    // back on 3.0.0.
    let (stdout, stderr) = fails(
        1,
        &["push", &lib("fixture_bad_record"), "--volume", &path(&volume)],
    );
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("refused at tables") && said.contains("current is back on 3.0.0"),
        "{said}"
    );
    let refused = again.wait_status(SHOW_TIMEOUT, "the refusal of the bad record", |s| {
        s.last_refusal.is_some()
    });
    let refusal = refused.last_refusal.expect("a refusal");
    assert_eq!(refusal.step, "tables", "{refusal:#?}");
    assert!(
        refusal.error.contains("record \"poison\" of table kv") && refusal.error.contains("still serving"),
        "{refusal:#?}"
    );
    assert_eq!(refused.version.as_deref(), Some("3.0.0"));
    let a = answer(http.get(again.url("/kv/poison")).send().expect("GET"));
    assert_eq!((a.status, a.body.as_str()), (200, "x"));
}

/// `molt push` of the built plugin `name` onto `volume`.
fn push_to(volume: &Path, name: &str) {
    ok(&["push", &lib(name), "--volume", &path(volume)]);
}
