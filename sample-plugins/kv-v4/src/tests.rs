use super::*;
use molt_abi::testing::{call, TestTables};

#[test]
fn counts_writes_atomically() {
    let tables = TestTables::new();
    let kv: Kv = tables.create().unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..250 {
                    call(&kv, "PUT", "/kv/hot", b"v");
                }
            });
        }
    });
    assert_eq!(call(&kv, "GET", "/kv/hot/writes", b"").text(), "1000");
    assert_eq!(call(&kv, "GET", "/kv/hot", b"").text(), "v");
    assert_eq!(
        call(&kv, "GET", "/stats", b"").text(),
        "{\"keys\":1,\"key_bytes\":3,\"value_bytes\":1,\"bytes\":4,\"writes\":1000}\n"
    );
}

#[test]
fn upgrade_from_v3_and_roll_back_through_the_record_hooks() {
    let tables = TestTables::new();
    let v3: kv_v3::Kv = tables.create().unwrap();
    call(&v3, "PUT", "/kv/a", b"alpha");
    call(&v3, "PUT", "/kv/b", b"beta");
    // Before the records are converted, v4 cannot read them (the supervisor converts them).
    let v4: Kv = tables.create().unwrap();
    assert_eq!(call(&v4, "GET", "/kv/a", b"").status, 500);

    tables.migrate::<kv_v3::Kv, Kv>().unwrap();
    assert_eq!(call(&v4, "GET", "/kv/a", b"").text(), "alpha");
    assert_eq!(call(&v4, "GET", "/kv/a/writes", b"").text(), "1");
    call(&v4, "PUT", "/kv/a", b"alpha2");
    assert_eq!(call(&v4, "GET", "/kv/a/writes", b"").text(), "2");
    assert_eq!(tables.records("kv")[0], (b"a".to_vec(), 2, record(2, b"alpha2")));

    // Rollback: v4's downgrade hook drops the counters; v3 reads the values.
    tables.migrate::<Kv, kv_v3::Kv>().unwrap();
    let back: kv_v3::Kv = tables.create().unwrap();
    assert_eq!(call(&back, "GET", "/kv/a", b"").text(), "alpha2");
    assert_eq!(call(&back, "GET", "/kv/b", b"").text(), "beta");
}

#[test]
fn the_hooks_convert_one_record_and_refuse_a_malformed_one() {
    assert_eq!(Kv::upgrade_record("kv", 1, b"k", b"v").unwrap(), record(1, b"v"));
    assert_eq!(
        Kv::downgrade_record("kv", 1, b"k", &record(9, b"v")).unwrap(),
        b"v"
    );
    let err = Kv::downgrade_record("kv", 1, b"k", b"short").unwrap_err();
    assert!(err.0.contains("at least 8 bytes"), "{err}");
}
