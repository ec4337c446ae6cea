//! Releases made by hand on the volume that must be refused, while v1 keeps serving its count.

use super::*;
use molt_supervisor::control::{Refusal, Status};

/// Writes `<volume>/counter/releases/<version>/` with `library` (its bytes, under `file`) and a
/// `release.toml` whose `library` and `sha256` fields are given.
fn hand_made_release(env: &Env, version: &str, file: &str, bytes: &[u8], library_field: &str, sha256: &str) {
    let dir = env.app_dir().join("releases").join(version);
    std::fs::create_dir_all(&dir).expect("creating the release directory");
    std::fs::write(dir.join(file), bytes).expect("writing the library");
    let manifest = format!(
        "app = \"{APP}\"\nversion = \"{version}\"\nabi = {}\nstate_schema = 2\nlibrary = \"{library_field}\"\nsha256 = \"{sha256}\"\n",
        molt_abi::ABI_VERSION
    );
    std::fs::write(dir.join("release.toml"), manifest).expect("writing release.toml");
}

/// Waits until `/status` reports a refusal of `counter <version>`.
fn refusal_of(molt: &MoltProcess, version: &str) -> (Status, Refusal) {
    let release = format!("{APP} {version}");
    let status = molt.wait_status(SHOW_TIMEOUT, &format!("a refusal of {release}"), |s| {
        s.last_refusal.as_ref().is_some_and(|r| r.release == release)
    });
    let refusal = status.last_refusal.clone().expect("just checked");
    (status, refusal)
}

/// Asserts `refusal` failed at `step` and says counter 1.0.0 still serves; then that 1.0.0
/// still serves `total` and still counts.
fn refused_at(
    molt: &MoltProcess,
    http: &reqwest::blocking::Client,
    (status, refusal): (Status, Refusal),
    step: &str,
    total: u64,
) -> u64 {
    assert_eq!(refusal.step, step, "{refusal:#?}\n{}", molt.log());
    assert!(
        refusal.error.contains("counter 1.0.0") && refusal.error.contains("still serving"),
        "the refusal does not say what still serves: {refusal:#?}"
    );
    assert!(
        refusal
            .still_running
            .as_deref()
            .is_some_and(|r| r.starts_with("counter 1.0.0")),
        "{refusal:#?}"
    );
    assert_eq!(status.version.as_deref(), Some("1.0.0"), "{status:#?}");
    assert_eq!(status.swaps, 0, "{status:#?}");
    assert_eq!(count(http, molt), (total, "1.0.0".to_owned()));
    let now = incr(http, molt, 1, "1.0.0");
    assert_eq!(now, total + 1, "1.0.0 stopped counting after the refusal");
    now
}

#[test]
fn a_release_whose_library_does_not_match_its_sha256_is_refused() {
    let env = Env::new("tampered");
    env.push(&plugin("counter_v1"));
    let molt = env.start(std::iter::empty::<String>());
    molt.wait_for_version("1.0.0");
    let http = http();
    let total = incr(&http, &molt, 10, "1.0.0");

    // v2's real library, but a manifest that promises other bytes.
    let v2 = std::fs::read(plugin("counter_v2")).expect("reading libcounter_v2.so");
    let wrong = "ab".repeat(32);
    hand_made_release(&env, "2.0.0", "libcounter_v2.so", &v2, "libcounter_v2.so", &wrong);
    env.point_current_at("2.0.0");

    let refusal = refusal_of(&molt, "2.0.0");
    assert!(
        refusal.1.error.contains(&wrong),
        "the refusal does not quote the expected digest: {:#?}",
        refusal.1
    );
    assert_eq!(refusal.0.desired.as_deref(), Some("2.0.0"), "{:#?}", refusal.0);
    refused_at(&molt, &http, refusal, "sha256", total);
}

#[test]
fn a_library_path_outside_the_release_and_a_non_elf_library_are_refused() {
    let env = Env::new("bad-releases");
    env.push(&plugin("counter_v1"));
    let molt = env.start(std::iter::empty::<String>());
    molt.wait_for_version("1.0.0");
    let http = http();
    let mut total = incr(&http, &molt, 5, "1.0.0");

    // `library = "../x.so"`: a real, matching library one directory up. Refused unread.
    let v2 = std::fs::read(plugin("counter_v2")).expect("reading libcounter_v2.so");
    let escaped = env.write_releases_file("x.so", &v2);
    let sha = molt_supervisor::manifest::sha256_file(&escaped).expect("hashing x.so");
    hand_made_release(&env, "2.0.1", "libcounter_v2.so", &v2, "../x.so", &sha);
    env.point_current_at("2.0.1");
    total = refused_at(&molt, &http, refusal_of(&molt, "2.0.1"), "manifest", total);

    // A `.so` that is no ELF file, with its correct sha256: passes the volume, fails to load.
    let junk = b"this is not a shared library\n".repeat(64);
    let sha = molt_supervisor::manifest::sha256_file(&env.dir.write("junk.so", &junk)).expect("hashing");
    hand_made_release(&env, "2.0.2", "libcounter_v2.so", &junk, "libcounter_v2.so", &sha);
    env.point_current_at("2.0.2");
    refused_at(&molt, &http, refusal_of(&molt, "2.0.2"), "load", total);
}

impl Env {
    /// Writes a file into `<volume>/counter/releases/` (beside the release directories).
    fn write_releases_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.app_dir().join("releases").join(name);
        std::fs::write(&p, bytes).expect("writing into releases/");
        p
    }
}

#[test]
fn a_release_marked_bad_is_not_followed_when_current_names_it_again() {
    let env = Env::new("known-bad");
    env.push(&plugin("counter_v1"));
    let molt = env.start(std::iter::empty::<String>());
    molt.wait_for_version("1.0.0");
    let http = http();
    incr(&http, &molt, 3, "1.0.0");

    // v3 cannot import v1's state: its push is refused and the release is marked bad. From
    // v2 it would import fine, so only the mark can keep a supervisor off it below.
    let (stdout, stderr) = fails(1, &["push", &lib("counter_v3"), "--volume", &path(&env.volume)]);
    assert!(
        format!("{stdout}{stderr}").contains("no shared state schema"),
        "{stdout}{stderr}"
    );
    env.push(&plugin("counter_v2"));
    molt.wait_for_version("2.0.0");
    let total = incr(&http, &molt, 2, "2.0.0");
    assert_eq!(total, 5);

    // An operator's script (or a stale writer) points `current` at the bad release.
    env.point_current_at("3.0.0");
    let (status, refusal) = refusal_of(&molt, "3.0.0");
    assert_eq!(refusal.step, "known bad", "{refusal:#?}\n{}", molt.log());
    assert!(
        refusal.error.contains("marked bad")
            && refusal.error.contains("--force")
            && refusal.error.contains("counter 2.0.0"),
        "the refusal does not name the mark, the way past it and what serves: {refusal:#?}"
    );
    assert_eq!(status.version.as_deref(), Some("2.0.0"), "{status:#?}");
    assert_eq!(incr(&http, &molt, 1, "2.0.0"), total + 1, "{}", molt.log());

    // `activate --force` is the way to try it again: it clears the mark, and v3 imports v2.
    ok(&[
        "activate",
        "3.0.0",
        "--force",
        "--volume",
        &path(&env.volume),
        "--app",
        APP,
    ]);
    molt.wait_for_version("3.0.0");
    assert_eq!(count(&http, &molt), (total + 1, "3.0.0".to_owned()));
}
