//! The snapshot decoder (the checks every snapshot file passes before its state is imported).
//! Properties: nothing panics; what decodes encodes to bytes that decode to the same snapshot.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_supervisor::snapshot::{decode_snapshot, encode_snapshot};

fuzz_target!(|data: &[u8]| {
    if let Ok(snap) = decode_snapshot(data) {
        let again = decode_snapshot(&encode_snapshot(&snap)).expect("an encoded snapshot decodes");
        assert_eq!(again, snap, "a snapshot changed in an encode and decode");
    }
});
