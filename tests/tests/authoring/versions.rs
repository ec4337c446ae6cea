//! Several versions of an app linked into one test binary: this integration test links the
//! rlibs of counter v1 and v2 (neither compiled as a test), links both entry symbols and
//! migrates between them.

use molt_abi::testing::{call, migrate};
use molt_abi::App;

#[test]
fn two_versions_link_into_one_binary_and_migrate() {
    // Both entry symbols are really linked in (their addresses are taken): each crate
    // exports its own name, so they do not clash.
    let entries = std::hint::black_box([
        counter_v1::molt_app_descriptor as *const () as usize,
        counter_v2::molt_app_descriptor as *const () as usize,
    ]);
    assert_ne!(entries[0], entries[1]);

    let v1 = counter_v1::Counter::create().unwrap();
    for _ in 0..3 {
        call(&v1, "POST", "/incr", b"");
    }
    let v2: counter_v2::Counter = migrate(&v1).unwrap();
    assert_eq!(call(&v2, "POST", "/incr/a", b"").text(), "1");
    assert_eq!(call(&v2, "GET", "/count", b"").text(), "4");
    let back: counter_v1::Counter = migrate(&v2).unwrap();
    assert_eq!(call(&back, "GET", "/count", b"").text(), "4");
}
