//! The signature envelope (`signature = "ed25519 <key> <sig>"`) and the key-file line parser.
//! Properties: nothing panics; a parsed envelope prints to the text it was parsed from (up to
//! hex case) and parses back to itself; verification of an arbitrary envelope against a fixed
//! manifest only ever fails (the fuzzer cannot forge a signature), and trusting the envelope's
//! own key then refuses it as a mismatch, never as something else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_supervisor::manifest::Manifest;
use molt_supervisor::signing::{Envelope, PublicKey, SignatureError, TrustedKeys};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = PublicKey::parse(text);
    let Ok(envelope) = Envelope::parse(text) else {
        return;
    };
    let printed = envelope.to_string();
    assert_eq!(
        printed,
        text.to_ascii_lowercase(),
        "an envelope printed differently"
    );
    assert_eq!(Envelope::parse(&printed).as_ref(), Ok(&envelope));
    let manifest = Manifest {
        app: "counter".into(),
        version: "2.0.0".into(),
        abi: 2,
        state_schema: 2,
        library: "libcounter_v2.so".into(),
        sha256: "ab".repeat(32),
        signature: Some(printed),
    };
    assert!(!envelope.verifies(&manifest), "a fuzzed envelope verified");
    let verdict = TrustedKeys::new([envelope.key]).check(&manifest);
    assert!(
        matches!(verdict, Err(SignatureError::Mismatch { .. })),
        "{verdict:?}"
    );
});
