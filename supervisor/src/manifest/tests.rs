use super::*;
use std::fs;

const LIB: &[u8] = b"\x7fELF pretend library bytes";

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn manifest(library: &str, sha256: String) -> Manifest {
    Manifest {
        app: "counter".into(),
        version: "1.0.0".into(),
        abi: 1,
        state_schema: 1,
        library: library.into(),
        sha256,
        signature: None,
    }
}

/// A release directory holding `libcounter.so` and its manifest.
fn release() -> (tempfile::TempDir, PathBuf, Manifest) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("1.0.0");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("libcounter.so"), LIB).unwrap();
    let m = manifest("libcounter.so", digest(LIB));
    fs::write(dir.join(MANIFEST_FILE), m.to_toml()).unwrap();
    (tmp, dir, m)
}

#[test]
fn round_trip_and_verify() {
    let (_tmp, dir, m) = release();
    let read = Manifest::read(&dir).unwrap();
    assert_eq!(read, m);
    assert_eq!(read.verify(&dir).unwrap(), dir.join("libcounter.so"));
    assert_eq!(sha256_file(&dir.join("libcounter.so")).unwrap(), digest(LIB));
    assert!(!m.to_toml().contains("signature"));
}

#[test]
fn tampered_library_names_both_digests() {
    let (_tmp, dir, m) = release();
    fs::write(dir.join("libcounter.so"), b"evil bytes").unwrap();
    let err = m.verify(&dir).unwrap_err();
    assert!(matches!(err, ManifestError::ChecksumMismatch { .. }), "{err}");
    let msg = err.to_string();
    let (good, evil) = (digest(LIB), digest(b"evil bytes"));
    for needle in [
        good.as_str(),
        evil.as_str(),
        "counter 1.0.0",
        "libcounter.so",
        "sha256",
    ] {
        assert!(msg.contains(needle), "{msg} lacks {needle}");
    }
}

#[test]
fn library_outside_the_release_is_refused() {
    let (tmp, dir, _) = release();
    fs::write(tmp.path().join("x"), LIB).unwrap();
    for bad in [
        "../x",
        "/etc/passwd",
        "a/b",
        "..",
        ".",
        "",
        "a\\b",
        "lib counter.so",
    ] {
        let err = manifest(bad, digest(LIB)).verify(&dir).unwrap_err();
        assert!(matches!(err, ManifestError::LibraryPath { .. }), "{bad:?}: {err}");
        assert!(err.to_string().contains(&dir.display().to_string()), "{err}");
    }
}

#[test]
fn symlink_leaving_the_release_is_refused() {
    let (tmp, dir, _) = release();
    fs::write(tmp.path().join("outside.so"), LIB).unwrap();
    std::os::unix::fs::symlink("../outside.so", dir.join("link.so")).unwrap();
    let err = manifest("link.so", digest(LIB)).verify(&dir).unwrap_err();
    assert!(err.to_string().contains("outside the release directory"), "{err}");
    // A symlink that stays inside is fine.
    std::os::unix::fs::symlink("libcounter.so", dir.join("inside.so")).unwrap();
    manifest("inside.so", digest(LIB)).verify(&dir).unwrap();
}

#[test]
fn missing_library_is_refused() {
    let (_tmp, dir, _) = release();
    let err = manifest("nope.so", digest(LIB)).verify(&dir).unwrap_err();
    assert!(matches!(err, ManifestError::LibraryMissing { .. }), "{err}");
}

#[test]
fn unknown_field_is_refused() {
    let (_tmp, dir, m) = release();
    fs::write(dir.join(MANIFEST_FILE), format!("{}extra = 1\n", m.to_toml())).unwrap();
    let err = Manifest::read(&dir).unwrap_err();
    assert!(matches!(err, ManifestError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("extra"), "{err}");
}

#[test]
fn malformed_fields_are_refused() {
    let (_tmp, dir, m) = release();
    type Spoil = fn(&mut Manifest);
    let cases: [(&str, Spoil); 5] = [
        ("sha256", |m| m.sha256 = "abc".into()),
        ("app", |m| m.app = "../etc".into()),
        ("version", |m| m.version = "..".into()),
        ("version", |m| m.version = "1.0\n".into()),
        ("signature", |m| m.signature = Some("xyz".into())),
    ];
    for (field, spoil) in cases {
        let mut bad = m.clone();
        spoil(&mut bad);
        let err = bad.verify(&dir).unwrap_err();
        assert!(
            matches!(&err, ManifestError::InvalidField { field: f, .. } if *f == field),
            "{field}: {err}"
        );
    }
}

#[test]
fn identity_must_match_the_volume_path() {
    let (_tmp, dir, m) = release();
    m.check_identity(&dir, "counter", "1.0.0").unwrap();
    let err = m.check_identity(&dir, "counter", "2.0.0").unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
}

#[test]
fn missing_manifest_names_the_release() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Manifest::read(tmp.path()).unwrap_err();
    assert!(
        err.to_string().contains(&tmp.path().display().to_string()),
        "{err}"
    );
}
