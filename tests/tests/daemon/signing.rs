//! Signed releases through the real binary: `molt keygen`, `molt push --sign-key`,
//! `molt run --trusted-key`; every refusal (unsigned, another key, a manifest changed after
//! signing) on the volume path and on the upload path, each before the library is opened, and
//! a key rotation with two trusted keys.

use super::*;

/// A key pair made by `molt keygen`: its directory and its fingerprint.
struct Key {
    dir: PathBuf,
    fingerprint: String,
}

impl Key {
    fn new(env: &Env, name: &str) -> Key {
        let dir = env.dir.join(format!("keys-{name}"));
        let out = ok(&["keygen", "--out", &path(&dir)]);
        let fingerprint = out
            .lines()
            .find_map(|l| l.strip_prefix("fingerprint "))
            .unwrap_or_else(|| panic!("no fingerprint in keygen's output:\n{out}"))
            .trim()
            .to_owned();
        assert!(fingerprint.starts_with("ed25519:"), "{fingerprint}");
        Key { dir, fingerprint }
    }

    fn secret(&self) -> String {
        path(&self.dir.join("molt.key"))
    }

    fn public(&self) -> String {
        path(&self.dir.join("molt.pub"))
    }
}

/// `molt push LIB --volume V --sign-key K [extra]`, asserting success.
fn push_signed(env: &Env, library: &str, key: &Key, extra: &[&str]) {
    let volume = path(&env.volume);
    let mut args = vec!["push", library, "--volume", &volume];
    let secret = key.secret();
    args.extend(["--sign-key", &secret]);
    args.extend(extra);
    ok(&args);
}

/// `molt activate VERSION --control URL`, which must be refused at the signature check; returns
/// the message, after checking it names the release, the key `fingerprint` and what serves.
fn activation_refused(molt: &MoltProcess, version: &str, fingerprint: &str) -> String {
    let (_, stderr) = fails(1, &["activate", version, "--control", &molt.control_base()]);
    let release = format!("{APP} {version}");
    for part in [release.as_str(), fingerprint, "counter 1.0.0", "still serving"] {
        assert!(
            stderr.contains(part),
            "the refusal does not name {part:?}:\n{stderr}"
        );
    }
    let refusal = molt.status().last_refusal.expect("a refusal in /status");
    assert_eq!(
        (refusal.release.as_str(), refusal.step.as_str()),
        (release.as_str(), "signature")
    );
    stderr
}

/// The release `version`'s directory on the volume.
fn release_dir(env: &Env, version: &str) -> PathBuf {
    env.app_dir().join("releases").join(version)
}

/// Library copies in the supervisor's private run directory: one per opened library.
fn opened_libraries(env: &Env) -> usize {
    walk(&env.dir.join("run"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .count()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn with_a_trusted_key_unsigned_foreign_and_altered_releases_are_refused_before_loading() {
    let env = Env::new("signed-volume");
    let (trusted, other) = (Key::new(&env, "trusted"), Key::new(&env, "other"));
    push_signed(&env, &lib("counter_v1"), &trusted, &[]);
    let molt = env.start(["--trusted-key".to_owned(), trusted.public()]);
    molt.wait_for_version("1.0.0");
    let http = http();
    let total = incr(&http, &molt, 7, "1.0.0");
    let opened = opened_libraries(&env);

    // 1. Unsigned, made current by a plain push: the watcher's reconcile refuses it, and the
    // push, which waits for the supervisor, says so and puts `current` back.
    let (stdout, stderr) = fails(1, &["push", &lib("counter_v2"), "--volume", &path(&env.volume)]);
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("refused at signature") && said.contains("current is back on 1.0.0"),
        "{said}"
    );
    let status = molt.wait_status(SHOW_TIMEOUT, "the refusal of unsigned 2.0.0", |s| {
        s.last_refusal
            .as_ref()
            .is_some_and(|r| r.release == "counter 2.0.0")
    });
    let refusal = status.last_refusal.expect("just waited for it");
    assert_eq!(refusal.step, "signature", "{refusal:#?}");
    for part in [
        "counter 2.0.0",
        "not signed",
        &trusted.fingerprint,
        "counter 1.0.0 (libcounter_v1.so) still serving",
    ] {
        assert!(refusal.error.contains(part), "no {part:?} in {refusal:#?}");
    }
    activation_refused(&molt, "2.0.0", &trusted.fingerprint);

    // 2. Signed by a key this supervisor does not trust: both fingerprints are named.
    std::fs::remove_dir_all(release_dir(&env, "2.0.0")).expect("removing 2.0.0");
    push_signed(&env, &lib("counter_v2"), &other, &["--no-activate"]);
    let message = activation_refused(&molt, "2.0.0", &other.fingerprint);
    assert!(
        message.contains("not trusted") && message.contains(&trusted.fingerprint),
        "{message}"
    );

    // 3. Signed by the trusted key, then changed: the schema edited in release.toml.
    std::fs::remove_dir_all(release_dir(&env, "2.0.0")).expect("removing 2.0.0");
    push_signed(&env, &lib("counter_v2"), &trusted, &["--no-activate"]);
    let manifest = release_dir(&env, "2.0.0").join("release.toml");
    let signed = read(&manifest);
    assert!(signed.contains("signature = \"ed25519 "), "{signed}");
    std::fs::write(&manifest, signed.replace("state_schema = 2", "state_schema = 1")).expect("editing");
    let message = activation_refused(&molt, "2.0.0", &trusted.fingerprint);
    assert!(message.contains("changed after it was signed"), "{message}");

    // 4. The library swapped for other bytes, and the manifest's sha256 updated to match them:
    // refused at the signature, before the (here, broken) library is hashed or opened.
    let other_bytes = b"\x7fELF not the library that was signed".to_vec();
    std::fs::write(release_dir(&env, "2.0.0").join("libcounter_v2.so"), &other_bytes).expect("swapping");
    let sha = molt_supervisor::manifest::sha256_file(&release_dir(&env, "2.0.0").join("libcounter_v2.so"))
        .expect("hashing");
    let original_sha = molt_supervisor::manifest::sha256_file(&plugin("counter_v2")).expect("hashing");
    std::fs::write(&manifest, signed.replace(&original_sha, &sha)).expect("editing");
    let message = activation_refused(&molt, "2.0.0", &trusted.fingerprint);
    assert!(message.contains("changed after it was signed"), "{message}");

    // Nothing was opened, `current` was put back, and 1.0.0 still counts from where it was.
    assert_eq!(
        opened_libraries(&env),
        opened,
        "a refused library was copied for loading"
    );
    assert_eq!(molt.status().swaps, 0);
    assert_eq!(count(&http, &molt), (total, "1.0.0".to_owned()));
    assert_eq!(incr(&http, &molt, 1, "1.0.0"), total + 1);

    // `molt releases` shows who signed what, and which signature no longer verifies.
    let listing = ok(&["releases", "--volume", &path(&env.volume), "--app", APP]);
    let line = |v: &str| {
        listing
            .lines()
            .find(|l| l.contains(v))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("1.0.0").contains(&format!("signed-by {}", trusted.fingerprint)),
        "{listing}"
    );
    assert!(
        line("2.0.0").contains(&format!("BAD-SIGNATURE {}", trusted.fingerprint)),
        "{listing}"
    );
    molt.terminate();
}

#[test]
fn the_upload_path_refuses_unsigned_and_foreign_releases_and_stores_nothing() {
    let env = Env::new("signed-upload");
    let (trusted, other) = (Key::new(&env, "trusted"), Key::new(&env, "other"));
    let molt = env.start([
        "--trusted-key".to_owned(),
        trusted.public(),
        "--no-watch".to_owned(),
    ]);
    let to = molt.control_base();
    let push = |library: &str, key: Option<&Key>| {
        let secret = key.map(Key::secret);
        let mut args = vec!["push", library, "--to", &to];
        if let Some(secret) = &secret {
            args.extend(["--sign-key", secret.as_str()]);
        }
        run(&args)
    };

    let out = push(&lib("counter_v1"), Some(&trusted));
    assert!(out.status.success(), "{:?}", texts(&out));
    molt.wait_for_version("1.0.0");
    let http = http();
    let total = incr(&http, &molt, 5, "1.0.0");
    let opened = opened_libraries(&env);

    for (key, expect) in [
        (None, trusted.fingerprint.as_str()),
        (Some(&other), other.fingerprint.as_str()),
    ] {
        let out = push(&lib("counter_v2"), key);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        for part in [
            "counter 2.0.0",
            expect,
            "counter 1.0.0 (libcounter_v1.so) still serving",
        ] {
            assert!(stderr.contains(part), "no {part:?} in:\n{stdout}{stderr}");
        }
        let refusal = molt.status().last_refusal.expect("a refusal in /status");
        assert_eq!(refusal.step, "signature", "{refusal:#?}");
        assert!(
            !release_dir(&env, "2.0.0").exists(),
            "a refused upload was stored"
        );
    }
    assert_eq!(opened_libraries(&env), opened, "a refused upload was loaded");
    assert_eq!(count(&http, &molt), (total, "1.0.0".to_owned()));

    let out = push(&lib("counter_v2"), Some(&trusted));
    assert!(out.status.success(), "{:?}", texts(&out));
    molt.wait_for_version("2.0.0");
    assert_eq!(count(&http, &molt), (total, "2.0.0".to_owned()));
    molt.terminate();
}

#[test]
fn two_trusted_keys_rotate_and_a_retired_key_is_refused() {
    let env = Env::new("signed-rotation");
    let (old, new) = (Key::new(&env, "old"), Key::new(&env, "new"));
    push_signed(&env, &lib("counter_v1"), &old, &[]);

    // During the rotation both keys are trusted: 1.0.0 (old key) serves, 2.0.0 (new key) swaps in.
    let both = [
        "--trusted-key".to_owned(),
        old.public(),
        "--trusted-key".to_owned(),
        new.public(),
    ];
    let molt = env.start(both);
    molt.wait_for_version("1.0.0");
    let http = http();
    let total = incr(&http, &molt, 4, "1.0.0");
    push_signed(&env, &lib("counter_v2"), &new, &[]);
    molt.wait_for_version("2.0.0");
    assert_eq!(count(&http, &molt).0, total);
    molt.terminate();

    // The old key retired: 2.0.0 (new key) restarts with its state; going back to 1.0.0,
    // signed only by the retired key, is refused, and 2.0.0 keeps serving.
    let molt = env.start(["--trusted-key".to_owned(), new.public()]);
    molt.wait_for_version("2.0.0");
    assert_eq!(count(&http, &molt), (total, "2.0.0".to_owned()));
    let (_, stderr) = fails(1, &["activate", "1.0.0", "--control", &molt.control_base()]);
    for part in [
        "counter 1.0.0",
        &old.fingerprint,
        "not trusted",
        &new.fingerprint,
        "counter 2.0.0 (libcounter_v2.so) still serving",
    ] {
        assert!(stderr.contains(part), "no {part:?} in:\n{stderr}");
    }
    assert_eq!(count(&http, &molt), (total, "2.0.0".to_owned()));
    molt.terminate();

    // A secret key given where a public one is expected: start-up refused, naming the file.
    let (_, stderr) = fails(
        1,
        &[
            "run",
            "--volume",
            &path(&env.volume),
            "--app",
            APP,
            "--trusted-key",
            &old.secret(),
        ],
    );
    assert!(
        stderr.contains("molt.key") && stderr.contains("public key"),
        "{stderr}"
    );
}
