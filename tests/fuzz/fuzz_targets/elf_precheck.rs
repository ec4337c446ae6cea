//! The ELF pre-check every library passes before anything opens it (`object`-based: class,
//! machine, shared object, extents of headers and segments, the entry symbol).
//! Property: it answers, never panics, on any bytes, and on every accepted file cut short by
//! one byte (the shape of a library copied half way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_supervisor::loader::precheck_bytes;

fuzz_target!(|data: &[u8]| {
    if precheck_bytes(data).is_ok() {
        let _ = precheck_bytes(&data[..data.len() - 1]);
    }
});
