//! Several versions of an app linked into one test binary: this integration test links the
//! rlibs of counter v1, v2 and v3 (none compiled as a test), links their entry symbols and
//! migrates v1 → v2 → v3 and back, the worked example of docs/authoring.md.

use molt_abi::testing::{call, migrate};
use molt_abi::App;

#[test]
fn three_versions_link_into_one_binary_and_migrate() {
    // Both entry symbols are really linked in (their addresses are taken): each crate
    // exports its own name, so they do not clash.
    let entries = std::hint::black_box([
        counter_v1::molt_app_descriptor as *const () as usize,
        counter_v2::molt_app_descriptor as *const () as usize,
        counter_v3::molt_app_descriptor as *const () as usize,
    ]);
    assert!(entries[0] != entries[1] && entries[1] != entries[2]);

    let v1 = counter_v1::Counter::create().unwrap();
    for _ in 0..3 {
        call(&v1, "POST", "/incr", b"");
    }
    let v2: counter_v2::Counter = migrate(&v1).unwrap();
    assert_eq!(call(&v2, "POST", "/incr/a", b"").text(), "1");
    assert_eq!(call(&v2, "GET", "/count", b"").text(), "4");
    let back: counter_v1::Counter = migrate(&v2).unwrap();
    assert_eq!(call(&back, "GET", "/count", b"").text(), "4");

    // On to v3, which imports only schema 2: v1's state goes through v2 first.
    assert!(migrate::<counter_v1::Counter, counter_v3::Counter>(&back).is_err());
    let v3: counter_v3::Counter = migrate(&v2).unwrap();
    assert_eq!(
        call(&v3, "GET", "/updates/a", b"").text(),
        "1",
        "updates start at the value"
    );
    assert_eq!(call(&v3, "POST", "/incr/a/10", b"").text(), "11");
    assert_eq!(call(&v3, "GET", "/updates/a", b"").text(), "2");
    // The rollback keeps the values and gives up the update counts, which v2 cannot hold.
    let v2_again: counter_v2::Counter = migrate(&v3).unwrap();
    assert_eq!(call(&v2_again, "GET", "/count/a", b"").text(), "11");
    assert_eq!(call(&v2_again, "GET", "/count", b"").text(), "14");
}
