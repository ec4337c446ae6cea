//! `molt new` and `molt new --next-of`, then `cargo test`, `cargo build --release` and
//! `molt check` on what they wrote.

use molt_tests::artifacts::target_dir;
use molt_tests::dir::TestDir;
use molt_tests::process::molt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs cargo in `crate_dir`, offline, with a target directory shared by every run of these
/// tests (molt-abi is compiled once, not once per generated crate); panics with its output.
fn cargo(crate_dir: &Path, args: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(crate_dir)
        .args(args)
        .arg("--offline")
        .env("CARGO_TARGET_DIR", generated_target())
        .output()
        .unwrap_or_else(|e| panic!("running cargo {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "cargo {args:?} in {}:\n{text}",
        crate_dir.display()
    );
    text
}

fn generated_target() -> PathBuf {
    target_dir().join("generated")
}

/// `molt new ARGS`, which must succeed.
fn molt_new(args: &[&str]) {
    let out = molt(&[&["new"], args].concat());
    assert!(
        out.status.success(),
        "molt new {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_new_crate_tests_builds_and_checks_and_its_next_version_migrates() {
    let dir = TestDir::new("molt-new");
    // Inside the workspace's own tree (the test directory is under target/): the crate's
    // `[workspace]` table keeps cargo from treating it as a member of ours.
    let v1 = dir.join("notes");
    molt_new(&["notes", "--dir", v1.to_str().unwrap()]);

    let tested = cargo(&v1, &["test"]);
    assert!(tested.contains("test result: ok. 3 passed"), "{tested}");
    cargo(&v1, &["build", "--release"]);
    let lib = generated_target().join("release/libnotes.so");
    let out = molt(&["check", lib.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("app           notes") && stdout.contains("state schema  1"),
        "{stdout}"
    );

    // Version 2: its migration test runs v1 → v2 → v1 against the crate above.
    let v2 = dir.join("notes-v2");
    molt_new(&[
        "notes-v2",
        "--dir",
        v2.to_str().unwrap(),
        "--next-of",
        v1.to_str().unwrap(),
    ]);
    let tested = cargo(&v2, &["test"]);
    assert!(
        tested.contains("migration::the_rollback_returns_the_same_bytes ... ok"),
        "{tested}"
    );
    assert!(tested.contains("test result: ok. 5 passed"), "{tested}");
    cargo(&v2, &["build", "--release"]);
    let lib2 = generated_target().join("release/libnotes_v2.so");
    let out = molt(&["check", lib2.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("app           notes") && stdout.contains("state schema  2"),
        "the app keeps its name, the schema moves on: {stdout}"
    );
    // And the pair passes the dry run: upgrade in schema 1, rollback in schema 1, same bytes.
    let out = molt(&[
        "check",
        lib2.to_str().unwrap(),
        "--against",
        lib.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1.0.0 → 2.0.0 (schema 1) → 1.0.0 (schema 1): identical"),
        "{stdout}"
    );
}

#[test]
fn molt_new_refuses_what_it_cannot_write() {
    let dir = TestDir::new("molt-new-refusals");
    let taken = dir.write("taken/file", "x");
    let taken = taken.parent().unwrap();
    let out = molt(&["new", "notes", "--dir", taken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists and is not empty"));
    let out = molt(&["new", "Notes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lower case"));
    let not_scaffold = dir.write(
        "other/Cargo.toml",
        "[package]\nname = \"other\"\nversion = \"1.0.0\"\n",
    );
    dir.write("other/src/lib.rs", "pub struct X;\n");
    dir.write("other/src/state.rs", "\n");
    let out = molt(&[
        "new",
        "other-v2",
        "--dir",
        dir.join("other-v2").to_str().unwrap(),
        "--next-of",
        not_scaffold.parent().unwrap().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("made by `molt new`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("other-v2").exists(), "nothing written");
}
