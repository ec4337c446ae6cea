//! The lifecycle records on a real temporary volume: verdicts, the writer lock, pointers
//! around bad releases, supervisor reports, retention.

use super::*;
use std::fs;
use std::time::Duration;

fn volume_with(versions: &[&str]) -> (tempfile::TempDir, Volume) {
    let tmp = tempfile::tempdir().unwrap();
    let vol = Volume::new(tmp.path().join("vol"));
    let src = tmp.path().join("build");
    fs::create_dir(&src).unwrap();
    for v in versions {
        let lib = src.join(format!("libcounter_{v}.so"));
        fs::write(&lib, format!("bytes of {v}")).unwrap();
        let info = ReleaseInfo {
            app: "counter".into(),
            version: (*v).into(),
            abi: 1,
            state_schema: 1,
            signature: None,
        };
        vol.push(&lib, &info, false).unwrap();
    }
    (tmp, vol)
}

fn report(instance: &str, running: &str, history: &[&str]) -> SupervisorReport {
    SupervisorReport {
        instance: instance.into(),
        host: "another-host".into(),
        pid: 1,
        app: "counter".into(),
        running: Some(running.into()),
        watching: true,
        refused: None,
        history: history.iter().map(|v| (*v).to_owned()).collect(),
        started_ms: now_ms(),
        heartbeat_ms: now_ms(),
        stale_after_ms: 10_000,
        stopped: false,
    }
}

#[test]
fn bad_is_sticky_and_never_becomes_previous() {
    let (_tmp, vol) = volume_with(&["1.0.0", "2.0.0", "3.0.0"]);
    vol.activate("counter", "1.0.0").unwrap();
    vol.activate("counter", "2.0.0").unwrap();
    vol.mark_bad("counter", "2.0.0", "pod-0", "import panicked")
        .unwrap();
    vol.mark_good("counter", "2.0.0", "pod-1", "served").unwrap();
    let verdict = vol.verdict("counter", "2.0.0").unwrap().unwrap();
    assert!(
        verdict.is_bad(),
        "a good verdict does not clear a bad one: {verdict:?}"
    );
    assert_eq!(verdict.reason, "import panicked");
    // Moving on from the bad release does not record it as previous.
    let a = vol.activate("counter", "3.0.0").unwrap();
    assert_eq!(a.previous.as_deref(), Some("1.0.0"), "{a:?}");
    vol.clear_verdict("counter", "2.0.0").unwrap();
    assert!(!vol.is_bad("counter", "2.0.0"));
}

#[test]
fn the_writer_lock_is_exclusive_and_released_on_drop() {
    let (_tmp, vol) = volume_with(&["1.0.0"]);
    let held = vol.lock_app("counter", Duration::ZERO).unwrap();
    let err = vol.lock_app("counter", Duration::from_millis(50)).unwrap_err();
    assert!(matches!(err, VolumeError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another writer holds"), "{err}");
    drop(held);
    vol.lock_app("counter", Duration::ZERO).unwrap();
}

#[test]
fn restoring_pointers_puts_back_both_or_removes_them() {
    let (_tmp, vol) = volume_with(&["1.0.0", "2.0.0"]);
    vol.activate("counter", "1.0.0").unwrap();
    vol.activate("counter", "2.0.0").unwrap();
    vol.restore_pointers("counter", Some("1.0.0"), None).unwrap();
    assert_eq!(vol.current("counter").unwrap().as_deref(), Some("1.0.0"));
    assert_eq!(vol.previous("counter").unwrap(), None);
    vol.restore_pointers("counter", None, None).unwrap();
    assert_eq!(vol.current("counter").unwrap(), None);
}

#[test]
fn reports_expire_when_stale_or_stopped() {
    let (_tmp, vol) = volume_with(&["1.0.0"]);
    vol.write_report(&report("pod-0", "1.0.0", &[])).unwrap();
    let mut stale = report("pod-1", "1.0.0", &[]);
    stale.heartbeat_ms = now_ms() - 60_000;
    vol.write_report(&stale).unwrap();
    let mut stopped = report("pod-2", "1.0.0", &[]);
    stopped.stopped = true;
    vol.write_report(&stopped).unwrap();
    let live: Vec<String> = vol
        .live_supervisors("counter")
        .unwrap()
        .into_iter()
        .map(|r| r.instance)
        .collect();
    assert_eq!(live, ["pod-0"]);
    // A stopped report is still read back by its own instance (its history survives).
    assert!(vol.report("counter", "pod-2").is_some_and(|r| r.stopped));
}

#[test]
fn prune_keeps_current_previous_newest_good_and_what_live_supervisors_need() {
    let (_tmp, vol) = volume_with(&["1.0.0", "2.0.0", "3.0.0", "4.0.0", "5.0.0", "6.0.0"]);
    vol.activate("counter", "3.0.0").unwrap();
    vol.activate("counter", "4.0.0").unwrap();
    vol.mark_good("counter", "2.0.0", "pod-0", "served").unwrap();
    vol.write_report(&report("pod-0", "4.0.0", &["1.0.0"])).unwrap();
    let pruned = vol.prune("counter", 1, Duration::ZERO).unwrap();
    assert_eq!(pruned.removed, ["5.0.0"]);
    let kept: Vec<&str> = pruned.protected.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(kept, ["1.0.0", "2.0.0", "3.0.0", "4.0.0"], "{pruned:?}");
    let left: Vec<String> = vol
        .releases("counter")
        .unwrap()
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(left, ["1.0.0", "2.0.0", "3.0.0", "4.0.0", "6.0.0"]);
    assert!(fs::read_dir(vol.releases_dir("counter"))
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with(TEMP_PREFIX)));
}
