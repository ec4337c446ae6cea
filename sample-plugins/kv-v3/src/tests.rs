use super::*;
use molt_abi::testing::{call, TestTables};

#[test]
fn serves_kv_routes_from_the_table() {
    let tables = TestTables::new();
    let kv: Kv = tables.create().unwrap();
    assert_eq!(call(&kv, "PUT", "/kv/a", b"one").status, 201);
    assert_eq!(call(&kv, "PUT", "/kv/a", b"uno").status, 200);
    assert_eq!(call(&kv, "PUT", "/kv/b", b"two").status, 201);
    assert_eq!(call(&kv, "GET", "/kv/a", b"").text(), "uno");
    assert_eq!(call(&kv, "DELETE", "/kv/b", b"").status, 204);
    assert_eq!(call(&kv, "GET", "/kv/b", b"").status, 404);
    assert_eq!(
        call(&kv, "GET", "/stats", b"").text(),
        "{\"keys\":1,\"key_bytes\":1,\"value_bytes\":3,\"bytes\":4}\n"
    );
    // The records are the values, in record schema 1, in the host's table.
    assert_eq!(tables.records("kv"), vec![(b"a".to_vec(), 1, b"uno".to_vec())]);
    // Another instance on the same tables (a code-only swap) sees the same state.
    let next: Kv = tables.create().unwrap();
    assert_eq!(call(&next, "GET", "/kv/a", b"").text(), "uno");
}

#[test]
fn preload_fills_deterministic_values() {
    let tables = TestTables::new();
    let kv: Kv = tables.create().unwrap();
    let resp = call(&kv, "POST", "/preload?keys=100&size=10", b"");
    assert_eq!(
        resp.text(),
        "{\"keys\":100,\"key_bytes\":290,\"value_bytes\":1000,\"bytes\":1290}\n"
    );
    assert_eq!(
        call(&kv, "GET", "/kv/k27", b"").body,
        kv_store::preload_value(27, 10)
    );
    assert_eq!(call(&kv, "POST", "/preload?keys=1", b"").status, 400);
}

#[test]
fn takes_over_kv_v2s_bytes_into_the_table() {
    let v2 = <kv_v2::Kv as App>::create().unwrap();
    call(&v2, "PUT", "/kv/x", b"1");
    call(&v2, "PUT", "/kv/x", b"22");
    call(&v2, "PUT", "/kv/y", b"3");
    let tables = TestTables::new();
    let v3: Kv = tables.import(&v2).unwrap();
    assert_eq!(call(&v3, "GET", "/kv/x", b"").text(), "22");
    assert_eq!(call(&v3, "GET", "/kv/y", b"").text(), "3");
    assert_eq!(v3.export_state(3).unwrap(), Vec::<u8>::new());
    let err = Kv::import_in(tables.handle(1), 1, &[1, 0, 0]).err().unwrap();
    assert!(err.0.contains("kv schema 1"), "{err}");
}
