use super::*;
use crate::signing::{generate, EnvelopeError, PAYLOAD_HEADER, PUBLIC_KEY_FILE, SECRET_KEY_FILE};

fn manifest() -> Manifest {
    Manifest {
        app: "counter".into(),
        version: "2.0.0".into(),
        abi: 1,
        state_schema: 2,
        library: "libcounter_v2.so".into(),
        sha256: "AB".repeat(32),
        signature: None,
    }
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

fn signed(by: &SecretKey) -> Manifest {
    let mut m = manifest();
    m.signature = Some(Envelope::sign(&m, by).to_string());
    m
}

#[test]
fn the_payload_is_the_documented_text() {
    let text = String::from_utf8(payload(&manifest())).unwrap();
    let expected = format!(
        "{PAYLOAD_HEADER}\napp counter\nversion 2.0.0\nabi 1\nstate_schema 2\nlibrary libcounter_v2.so\nsha256 {}\n",
        "ab".repeat(32)
    );
    assert_eq!(text, expected);
    // The signature field is not part of what it signs.
    assert_eq!(payload(&signed(&key(1))), payload(&manifest()));
}

#[test]
fn a_signature_by_a_trusted_key_passes_and_names_the_signer() {
    let k = key(1);
    let trusted = TrustedKeys::new([k.public()]);
    assert_eq!(trusted.check(&signed(&k)), Ok(Some(k.public().fingerprint())));
}

#[test]
fn no_trusted_key_means_no_check() {
    assert_eq!(TrustedKeys::default().check(&manifest()), Ok(None));
}

#[test]
fn unsigned_other_key_and_malformed_are_refused_naming_the_release_and_keys() {
    let (k, other) = (key(1), key(2));
    let trusted = TrustedKeys::new([k.public()]);
    let fp = k.public().fingerprint().to_string();

    let err = trusted.check(&manifest()).unwrap_err();
    assert!(matches!(err, SignatureError::Unsigned { .. }), "{err}");
    assert!(
        err.to_string().contains("counter 2.0.0") && err.to_string().contains(&fp),
        "{err}"
    );

    let err = trusted.check(&signed(&other)).unwrap_err();
    let other_fp = other.public().fingerprint();
    assert_eq!(
        err,
        SignatureError::UntrustedKey {
            release: "counter 2.0.0".into(),
            key: other_fp,
            trusted: fp.clone()
        }
    );

    let mut m = signed(&k);
    m.signature = Some("ed25519 00 11".into());
    let err = trusted.check(&m).unwrap_err();
    assert!(matches!(err, SignatureError::Malformed { .. }), "{err}");
}

#[test]
fn every_signed_field_changed_after_signing_is_refused() {
    let k = key(1);
    let trusted = TrustedKeys::new([k.public()]);
    let changes: [fn(&mut Manifest); 6] = [
        |m| m.app = "counter2".into(),
        |m| m.version = "2.0.1".into(),
        |m| m.abi = 2,
        |m| m.state_schema = 3,
        |m| m.library = "libother.so".into(),
        |m| m.sha256 = "cd".repeat(32),
    ];
    for change in changes {
        let mut m = signed(&k);
        change(&mut m);
        let err = trusted.check(&m).unwrap_err();
        assert!(matches!(err, SignatureError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains(&k.public().fingerprint().to_string()));
    }
    // The sha256's case is not significant (it is lowercased in the payload).
    let mut m = signed(&k);
    m.sha256 = m.sha256.to_ascii_lowercase();
    assert!(trusted.check(&m).is_ok());
}

#[test]
fn two_trusted_keys_accept_either_signer() {
    let (old, new) = (key(1), key(2));
    let trusted = TrustedKeys::new([old.public(), new.public(), old.public()]);
    assert_eq!(trusted.keys().len(), 2);
    assert!(trusted.check(&signed(&old)).is_ok());
    assert!(trusted.check(&signed(&new)).is_ok());
    assert!(trusted.check(&signed(&key(3))).is_err());
}

#[test]
fn envelopes_round_trip_and_reject_junk() {
    let m = signed(&key(7));
    let text = m.signature.clone().unwrap();
    let env = Envelope::parse(&text).unwrap();
    assert_eq!(env.to_string(), text);
    assert!(env.verifies(&m));
    for junk in [
        "",
        "ed25519",
        "rsa 00 00",
        &text.replacen(' ', "  ", 1),
        &format!("{text} "),
        &text[..text.len() - 2],
        &format!("{}zz", &text[..text.len() - 2]),
        &"x".repeat(600),
    ] {
        let err: EnvelopeError = Envelope::parse(junk).unwrap_err();
        assert!(err.to_string().contains("not a signature envelope"), "{err}");
    }
}

#[test]
fn generated_key_files_read_back_and_are_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let public = generate(dir.path()).unwrap();
    let secret = SecretKey::read(&dir.path().join(SECRET_KEY_FILE)).unwrap();
    assert_eq!(secret.public(), public);
    assert_eq!(
        PublicKey::read(&dir.path().join(PUBLIC_KEY_FILE)).unwrap(),
        public
    );
    let mode = std::fs::metadata(dir.path().join(SECRET_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(generate(dir.path()).is_err(), "an existing key pair is kept");
    // Each file is refused as the other kind.
    assert!(PublicKey::read(&dir.path().join(SECRET_KEY_FILE)).is_err());
    assert!(SecretKey::read(&dir.path().join(PUBLIC_KEY_FILE)).is_err());
}
