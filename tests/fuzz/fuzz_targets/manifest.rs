//! `release.toml`: the parser, the field checks, the signed payload and the trust check.
//! Properties: nothing panics; a manifest that parses and validates writes back to TOML that
//! parses to the same manifest; the trust check of an unsigned or foreign-signed manifest
//! never passes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_supervisor::manifest::Manifest;
use molt_supervisor::signing::{payload, SecretKey, TrustedKeys};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = Path::new("/fuzz/releases/1.0.0");
    let Ok(manifest) = Manifest::parse(text, dir) else {
        return;
    };
    let valid = manifest.validate(dir).is_ok();
    let _ = manifest.check_identity(dir, "counter", "1.0.0");
    let _ = payload(&manifest);
    // A key nobody used to make the fuzzer's inputs: nothing it writes can verify.
    let trusted = TrustedKeys::new([SecretKey::from_seed(&[0x42; 32]).public()]);
    assert!(
        trusted.check(&manifest).is_err(),
        "a fuzzed manifest passed the trust check"
    );
    assert_eq!(TrustedKeys::default().check(&manifest), Ok(None));
    if valid {
        let again = Manifest::parse(&manifest.to_toml(), dir).expect("a written manifest parses");
        assert_eq!(again, manifest, "a manifest changed in a write and read");
        again.validate(dir).expect("a written valid manifest validates");
    }
});
