//! The snapshot decoder (the checks every snapshot file passes before its state is imported),
//! formats 1 and 2 (with the tables section and its trailer).
//! Properties: nothing panics; what decodes encodes to bytes that decode to the same snapshot
//! (the same fields, and tables exactly when the original had them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_supervisor::snapshot::{decode_snapshot, encode_snapshot};

fuzz_target!(|data: &[u8]| {
    if let Ok(snap) = decode_snapshot(data) {
        let again = decode_snapshot(&encode_snapshot(&snap)).expect("an encoded snapshot decodes");
        assert_eq!(
            (
                &again.app,
                &again.version,
                again.schema,
                &again.bytes,
                again.written_at
            ),
            (
                &snap.app,
                &snap.version,
                snap.schema,
                &snap.bytes,
                snap.written_at
            ),
            "a snapshot changed in an encode and decode"
        );
        assert_eq!(again.tables.is_some(), snap.tables.is_some());
    }
});
