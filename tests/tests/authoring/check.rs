//! `molt check LIB --against OLD [--state SNAPSHOT]` with the real binary: a good pair, a pair
//! with no shared schema, a pair whose round trip loses data, threads that outlive `destroy`,
//! and the old library taken from a volume.

use molt_supervisor::snapshot::{Snapshot, SnapshotStore};
use molt_tests::artifacts::plugin;
use molt_tests::dir::TestDir;
use molt_tests::process::{molt, push};
use std::path::{Path, PathBuf};

/// `molt check ARGS`: exit code, stdout, stderr.
fn check(args: &[&str]) -> (Option<i32>, String, String) {
    let out = molt(&[&["check"], args].concat());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lib(name: &str) -> String {
    plugin(name).display().to_string()
}

/// A snapshot file of counter 1.0.0 at `count`, written by the supervisor's own store.
fn counter_snapshot(dir: &TestDir, count: u64) -> PathBuf {
    let store = SnapshotStore::new(dir.mkdir("state"));
    store
        .write(&Snapshot::new(
            "counter",
            "1.0.0",
            1,
            count.to_le_bytes().to_vec(),
        ))
        .expect("writing a snapshot")
}

fn text(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn a_good_pair_round_trips_real_state() {
    let dir = TestDir::new("check-good");
    let snap = counter_snapshot(&dir, 42);
    let (code, out, err) = check(&[
        &lib("counter_v2"),
        "--against",
        &lib("counter_v1"),
        "--state",
        &text(&snap),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("checked against counter 1.0.0 (schema 1); state: snapshot"),
        "{out}"
    );
    assert!(out.contains("(counter 1.0.0, schema 1, 8 bytes)"), "{out}");
    assert!(out.contains("ok    a schema for the upgrade: schema 1"), "{out}");
    assert!(out.contains("ok    a schema for the rollback: schema 1"), "{out}");
    assert!(out.contains("(schema 1) → 1.0.0 (schema 1): identical"), "{out}");
    // Every hook of the dry run with its schema, size and time.
    for step in [
        "1.0.0 import (snapshot)",
        "2.0.0 import ",
        "2.0.0 export (rollback)",
        "1.0.0 import (rollback)",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(step))
            .unwrap_or_else(|| panic!("no {step:?} in {out}"));
        assert!(
            line.contains("schema 1") && line.contains("8 bytes") && line.ends_with(" ms"),
            "{line}"
        );
    }
}

#[test]
fn a_pair_with_no_shared_schema_is_refused() {
    let (code, out, err) = check(&[&lib("fixture_wrong_schema"), "--against", &lib("counter_v1")]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("FAIL  a schema for the upgrade: 1.0.0 exports [1], 3.0.0-wrong-schema imports [3]: nothing shared"), "{out}");
    assert!(out.contains("not migrated: no shared schema"), "{out}");
    assert!(
        err.contains("counter 3.0.0-wrong-schema refused by molt check: a schema for the upgrade; a schema for the rollback"),
        "{err}"
    );
}

#[test]
fn a_round_trip_that_loses_data_is_refused_on_real_state() {
    let dir = TestDir::new("check-lossy");
    let snap = counter_snapshot(&dir, 42);
    let lossy = lib("fixture_lossy_rollback");
    let (code, out, err) = check(&[&lossy, "--against", &lib("counter_v1"), "--state", &text(&snap)]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("FAIL  the round trip returns the same bytes: 1.0.0 → 2.0.0-lossy-rollback (schema 1) → 1.0.0 (schema 1): the state came back different"),
        "{out}"
    );
    assert!(
        err.contains("refused by molt check: the round trip returns the same bytes"),
        "{err}"
    );
    // On fresh state (a count of 0) the loss does not show: why --state matters.
    let (code, out, _) = check(&[&lossy, "--against", &lib("counter_v1")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("state: freshly created by 1.0.0"), "{out}");
}

#[test]
fn threads_that_outlive_destroy_are_named() {
    let (code, out, err) = check(&[&lib("fixture_leak_thread")]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(
            "FAIL  no thread outlives destroy: threads still running after destroy: \"leaked-by-app\""
        ),
        "{out}"
    );
    assert!(
        out.contains("FAIL  the library unloads after its last instance: still mapped"),
        "{out}"
    );
    // A well-behaved library passes both.
    let (code, out, _) = check(&[&lib("counter_v1")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok    no thread outlives destroy") && out.contains("ok    the library unloads"),
        "{out}"
    );
}

#[test]
fn the_old_library_can_come_from_a_volume() {
    let dir = TestDir::new("check-volume");
    let volume = dir.mkdir("volume");
    push(&plugin("counter_v1"), &volume);
    let (code, out, err) = check(&[&lib("counter_v2"), "--volume", &text(&volume), "--app", "counter"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("checked against counter 1.0.0 (schema 1)"), "{out}");
    let (code, _, err) = check(&[&lib("counter_v2"), "--volume", &text(&volume)]);
    assert_eq!(code, Some(2), "--volume without --app is a usage error: {err}");
}

#[test]
fn schema_lists_without_the_own_schema_are_refused() {
    // What `export_app!` refuses at compile time, in a library built without it.
    let (code, out, err) = check(&[&lib("fixture_bad_lists"), "--against", &lib("counter_v1")]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(
            "FAIL  IMPORTS include SCHEMA (a restart restores snapshots through it): schema 2, imports [1]"
        ),
        "{out}"
    );
    assert!(out.contains("FAIL  EXPORTS include SCHEMA"), "{out}");
    assert!(
        err.contains("counter 2.0.0-bad-lists refused by molt check"),
        "{err}"
    );
}

#[test]
fn pushing_a_missing_library_or_an_rlib_says_what_to_add_to_cargo_toml() {
    let dir = TestDir::new("push-messages");
    let volume = dir.mkdir("volume");
    let rlib = plugin("counter_v1").with_extension("rlib");
    let only_rlib = dir.write(
        "built/libnotes.rlib",
        std::fs::read(&rlib).expect("reading the rlib"),
    );
    let cases = [
        (
            only_rlib.with_extension("so"),
            "libnotes.rlib exists: the crate is built as an rlib only",
        ),
        (rlib.clone(), "a Rust static library (rlib), not a shared library"),
    ];
    for (library, says) in cases {
        let out = molt(&["push", &text(&library), "--volume", &text(&volume)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(says) && err.contains("crate-type = [\"cdylib\", \"rlib\"]"),
            "{err}"
        );
    }
    assert!(!volume.join("counter").exists(), "nothing was published");
}

#[test]
fn apps_that_keep_state_in_tables_are_dry_run_with_tables() {
    let (code, out, err) = check(&[&lib("kv_v4"), "--against", &lib("kv_v3")]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ok    no thread outlives destroy"), "{out}");
    assert!(
        out.contains(
            "ok    a record conversion for the upgrade: table schema 1 → 2: the new version converts"
        ),
        "{out}"
    );
    assert!(
        out.contains("3.0.0 → 4.0.0 (schema 3) → 3.0.0 (schema 3): identical"),
        "{out}"
    );
}

#[test]
fn a_library_with_two_apps_linked_in_is_refused_before_it_is_opened() {
    let (code, out, err) = check(&[&lib("fixture_two_apps")]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("it exports several entry symbols (molt_app_descriptor_fixture_two_apps, molt_app_descriptor_counter_v1)")
            && err.contains("outside [dev-dependencies]"),
        "{err}"
    );
}

#[test]
fn a_refusal_names_its_cause_once() {
    // The loader's error carries the pre-check's as its cause and also says it in its own
    // message; the command line prints the chain without saying a cause twice.
    let (code, out, err) = check(&[&lib("fixture_bogus_entry")]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("not a function: not a molt app"), "{err}");
    assert_eq!(
        err.matches("not a molt app").count(),
        1,
        "the cause is said twice: {err}"
    );
}

#[test]
fn a_thread_local_with_a_destructor_keeps_the_library_mapped() {
    // No thread of its own, but `handle` registered a TLS destructor on the thread that
    // served the request: glibc keeps the library until that thread exits.
    let (code, out, err) = check(&[&lib("fixture_leak_tls")]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("ok    no thread outlives destroy"), "{out}");
    assert!(
        out.contains("FAIL  the library unloads after its last instance: still mapped after dlclose"),
        "{out}"
    );
}
