use super::*;
use std::fs;

struct Fixture {
    _tmp: tempfile::TempDir,
    vol: Volume,
    src: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let vol = Volume::new(tmp.path().join("vol"));
    let src = tmp.path().join("build");
    fs::create_dir(&src).unwrap();
    Fixture { _tmp: tmp, vol, src }
}

impl Fixture {
    fn lib(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.src.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }
    fn push(&self, version: &str, bytes: &[u8], activate: bool) -> Result<PushOutcome, VolumeError> {
        let lib = self.lib(&format!("libcounter_{version}.so"), bytes);
        self.vol.push(&lib, &info(version), activate)
    }
}

fn info(version: &str) -> ReleaseInfo {
    ReleaseInfo {
        app: "counter".into(),
        version: version.into(),
        abi: 1,
        state_schema: 1,
        signature: None,
    }
}

#[test]
fn push_then_read_back() {
    let f = fixture();
    let out = f.push("1.0.0", b"v1 bytes", false).unwrap();
    assert!(matches!(out, PushOutcome::Created(_)), "{out:?}");
    let dir = f.vol.release_dir("counter", "1.0.0");
    assert_eq!(out.release().dir, dir);
    assert_eq!(fs::read(dir.join("libcounter_1.0.0.so")).unwrap(), b"v1 bytes");
    let verified = f.vol.verify_release("counter", "1.0.0").unwrap();
    assert_eq!(verified.manifest, out.release().manifest);
    assert_eq!(verified.library, dir.join("libcounter_1.0.0.so"));
    let releases = f.vol.releases("counter").unwrap();
    assert_eq!(releases.len(), 1);
    assert_eq!(
        releases[0].manifest.as_ref().unwrap().library,
        "libcounter_1.0.0.so"
    );
    assert_eq!(f.vol.current("counter").unwrap(), None);
    assert_eq!(f.vol.apps().unwrap(), ["counter"]);
}

#[test]
fn same_bytes_twice_is_already_present() {
    let f = fixture();
    f.push("1.0.0", b"v1 bytes", false).unwrap();
    let out = f.push("1.0.0", b"v1 bytes", true).unwrap();
    assert!(matches!(out, PushOutcome::AlreadyPresent(_)), "{out:?}");
    assert_eq!(out.release().activation.as_ref().unwrap().current, "1.0.0");
    assert_eq!(f.vol.current("counter").unwrap().as_deref(), Some("1.0.0"));
}

#[test]
fn same_version_different_bytes_is_refused() {
    let f = fixture();
    let first = f.push("1.0.0", b"v1 bytes", true).unwrap();
    let err = f.push("1.0.0", b"other bytes", true).unwrap_err();
    assert!(matches!(err, VolumeError::Immutable { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&first.release().manifest.sha256), "{msg}");
    assert!(
        msg.contains(&hex::encode(Sha256::digest(b"other bytes"))),
        "{msg}"
    );
    let dir = f.vol.release_dir("counter", "1.0.0");
    assert_eq!(fs::read(dir.join("libcounter_1.0.0.so")).unwrap(), b"v1 bytes");
    f.vol.verify_release("counter", "1.0.0").unwrap();
    // Same bytes, different declared schema: also refused.
    let lib = f.lib("libcounter_1.0.0.so", b"v1 bytes");
    let err = f
        .vol
        .push(
            &lib,
            &ReleaseInfo {
                state_schema: 2,
                ..info("1.0.0")
            },
            false,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            VolumeError::Conflict {
                field: "state_schema",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_names_are_refused() {
    let f = fixture();
    let lib = f.lib("lib.so", b"x");
    for version in ["..", "../x", "a/b", "", ".tmp-1"] {
        let err = f.vol.push(&lib, &info(version), false).unwrap_err();
        assert!(
            matches!(err, VolumeError::InvalidName { what: "version", .. }),
            "{version:?}: {err}"
        );
    }
    let err = f.vol.push(&f.src, &info("1.0.0"), false).unwrap_err();
    assert!(matches!(err, VolumeError::BadLibrary { .. }), "{err}");
    assert!(f.vol.releases("counter").unwrap().is_empty());
}

#[test]
fn tampered_release_does_not_activate() {
    let f = fixture();
    f.push("1.0.0", b"v1", true).unwrap();
    f.push("2.0.0", b"v2", false).unwrap();
    fs::write(
        f.vol.release_dir("counter", "2.0.0").join("libcounter_2.0.0.so"),
        b"evil",
    )
    .unwrap();
    let err = f.vol.activate("counter", "2.0.0").unwrap_err();
    assert!(err.to_string().contains("sha256"), "{err}");
    assert_eq!(f.vol.current("counter").unwrap().as_deref(), Some("1.0.0"));
}

#[test]
fn activate_previous_rollback_sequence() {
    let f = fixture();
    f.push("1.0.0", b"v1", true).unwrap();
    assert_eq!(f.vol.previous("counter").unwrap(), None);
    let err = f.vol.rollback("counter").unwrap_err();
    assert!(matches!(err, VolumeError::NoPrevious { .. }), "{err}");

    let a = f
        .push("2.0.0", b"v2", true)
        .unwrap()
        .release()
        .activation
        .clone()
        .unwrap();
    assert_eq!(
        (a.previous.as_deref(), a.current.as_str(), a.changed),
        (Some("1.0.0"), "2.0.0", true)
    );
    assert_eq!(
        fs::read_to_string(f.vol.current_path("counter")).unwrap(),
        "2.0.0\n"
    );

    // Re-activating the current version changes nothing, `previous` included.
    let a = f.vol.activate("counter", "2.0.0").unwrap();
    assert!(!a.changed);
    assert_eq!(f.vol.previous("counter").unwrap().as_deref(), Some("1.0.0"));

    let a = f.vol.rollback("counter").unwrap();
    assert_eq!(
        (a.previous.as_deref(), a.current.as_str()),
        (Some("2.0.0"), "1.0.0")
    );
    assert_eq!(f.vol.current("counter").unwrap().as_deref(), Some("1.0.0"));
    assert_eq!(f.vol.previous("counter").unwrap().as_deref(), Some("2.0.0"));
    f.vol.rollback("counter").unwrap();
    assert_eq!(f.vol.current("counter").unwrap().as_deref(), Some("2.0.0"));
}

#[test]
fn activating_a_missing_version_is_refused() {
    let f = fixture();
    f.push("1.0.0", b"v1", true).unwrap();
    let err = f.vol.activate("counter", "9.9.9").unwrap_err();
    assert!(matches!(err, VolumeError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("counter 9.9.9"), "{err}");
    assert_eq!(f.vol.current("counter").unwrap().as_deref(), Some("1.0.0"));
    assert_eq!(f.vol.previous("counter").unwrap(), None);
}

#[test]
fn leftover_temp_dir_is_invisible_and_cleaned() {
    let f = fixture();
    f.push("1.0.0", b"v1", false).unwrap();
    let stale = f.vol.releases_dir("counter").join(".tmp-abc123");
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("libcounter.so"), b"half").unwrap();
    let versions: Vec<String> = f
        .vol
        .releases("counter")
        .unwrap()
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, ["1.0.0"]);
    assert!(f
        .vol
        .clean_stale_temp("counter", Duration::from_secs(3600))
        .unwrap()
        .is_empty());
    assert_eq!(
        f.vol.clean_stale_temp("counter", Duration::ZERO).unwrap(),
        std::slice::from_ref(&stale)
    );
    assert!(!stale.exists());
    f.vol.verify_release("counter", "1.0.0").unwrap();
}

#[test]
fn releases_sorted_and_bad_manifests_listed_with_error() {
    let f = fixture();
    for v in ["1.10.0", "1.2.0", "1.9.0"] {
        f.push(v, v.as_bytes(), false).unwrap();
    }
    fs::write(
        f.vol.release_dir("counter", "1.9.0").join("release.toml"),
        "nonsense = 1\n",
    )
    .unwrap();
    let list = f.vol.releases("counter").unwrap();
    let versions: Vec<&str> = list.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(versions, ["1.2.0", "1.9.0", "1.10.0"]);
    assert!(list[1].manifest.is_err());
    assert!(list[0].manifest.is_ok() && list[2].manifest.is_ok());
}

#[test]
fn corrupt_pointer_is_reported_then_repaired_by_activate() {
    let f = fixture();
    f.push("1.0.0", b"v1", false).unwrap();
    fs::create_dir_all(f.vol.app_dir("counter")).unwrap();
    fs::write(f.vol.current_path("counter"), "../../etc\n").unwrap();
    let err = f.vol.current("counter").unwrap_err();
    assert!(matches!(err, VolumeError::BadPointer { .. }), "{err}");
    f.vol.activate("counter", "1.0.0").unwrap();
    assert_eq!(f.vol.current("counter").unwrap().as_deref(), Some("1.0.0"));
}

#[test]
fn instance_and_state_dir() {
    let f = fixture();
    let name = default_instance_name();
    assert!(check_component(&name).is_ok(), "{name:?}");
    let dir = f.vol.state_dir("counter", &name).unwrap();
    assert_eq!(dir, f.vol.root().join("counter").join("state").join(&name));
    assert!(f.vol.state_dir("counter", "..").is_err());
}

use sha2::{Digest, Sha256};

#[test]
fn signed_pushes_verify_only_under_a_trusting_volume_and_before_the_library_is_read() {
    use crate::signing::{Envelope, SecretKey, SignatureError, TrustedKeys};
    let f = fixture();
    let key = SecretKey::from_seed(&[9; 32]);
    let bytes = b"signed library bytes";
    let lib = f.lib("libcounter_1.0.0.so", bytes);
    let sha = crate::manifest::sha256_file(&lib).unwrap();
    let mut signed = info("1.0.0");
    signed.signature = Some(Envelope::sign(&signed.manifest("libcounter_1.0.0.so", &sha), &key).to_string());

    // A signature made over other library bytes is refused by the push itself.
    let mut stale = info("1.0.0");
    stale.signature =
        Some(Envelope::sign(&stale.manifest("libcounter_1.0.0.so", &"00".repeat(32)), &key).to_string());
    let err = f.vol.push(&lib, &stale, false).unwrap_err();
    assert!(matches!(err, VolumeError::BadLibrary { .. }), "{err}");
    assert!(!f.vol.release_dir("counter", "1.0.0").exists());

    f.vol.push(&lib, &signed, false).unwrap();
    f.push("2.0.0", b"unsigned", false).unwrap();
    let trusting = f.vol.clone().with_trust(TrustedKeys::new([key.public()]));
    trusting.verify_release("counter", "1.0.0").unwrap();
    // Unsigned: refused even with its library gone, so the check ran before the library was read.
    fs::remove_file(f.vol.release_dir("counter", "2.0.0").join("libcounter_2.0.0.so")).unwrap();
    let err = trusting.verify_release("counter", "2.0.0").unwrap_err();
    assert!(
        matches!(err, VolumeError::Signature(SignatureError::Unsigned { .. })),
        "{err}"
    );
    assert!(trusting.activate("counter", "2.0.0").is_err());
    assert_eq!(
        trusting.current("counter").unwrap(),
        None,
        "current moved to an unsigned release"
    );
    // The same signed release pushed again unsigned is a conflict, not a silent re-sign.
    let err = f.vol.push(&lib, &info("1.0.0"), false).unwrap_err();
    assert!(
        matches!(
            err,
            VolumeError::Conflict {
                field: "signature",
                ..
            }
        ),
        "{err}"
    );
}
