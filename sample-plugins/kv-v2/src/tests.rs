//! Routes, schemas, malformed state and concurrency.

use super::*;
use molt_abi::testing::{call, migrate, round_trip};

/// Builds schema 1 (`writes` is `None`) or schema 2 bytes by hand.
fn encode(entries: &[(&[u8], &[u8], Option<u64>)]) -> Vec<u8> {
    let mut out = (entries.len() as u64).to_le_bytes().to_vec();
    for (k, v, writes) in entries {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
        if let Some(w) = writes {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    out
}

#[test]
fn routes_and_write_counters() {
    let app = Kv::create().unwrap();
    assert_eq!(call(&app, "GET", "/kv/a/writes", b"").status, 404);
    assert_eq!(call(&app, "PUT", "/kv/a", b"hello").status, 201);
    assert_eq!(call(&app, "PUT", "/kv/a", b"hello!").status, 200);
    assert_eq!(call(&app, "PUT", "/kv/a", b"hi").status, 200);
    assert_eq!(call(&app, "PUT", "/kv/b", b"").status, 201);
    assert_eq!(call(&app, "GET", "/kv/a", b"").body, b"hi");
    assert_eq!(call(&app, "GET", "/kv/a/writes", b"").text(), "3");
    assert_eq!(call(&app, "GET", "/kv/b/writes", b"").text(), "1");
    assert_eq!(call(&app, "PUT", "/kv/a/writes", b"").status, 405);
    assert_eq!(
        call(&app, "GET", "/stats", b"").text(),
        "{\"keys\":2,\"key_bytes\":2,\"value_bytes\":2,\"bytes\":4,\"writes\":4}\n"
    );
    assert_eq!(call(&app, "DELETE", "/kv/a", b"").status, 204);
    assert_eq!(call(&app, "DELETE", "/kv/a", b"").status, 404);
    assert_eq!(call(&app, "GET", "/kv/a/writes", b"").status, 404);
    call(&app, "PUT", "/kv/a", b"again");
    assert_eq!(app.writes("a"), Some(1), "a deleted key starts over");
    assert_eq!(call(&app, "GET", "/kv/a/writes/x", b"").status, 404);
    assert_eq!(app.stats().writes, 2);
}

#[test]
fn descriptor_publishes_schemas_for_upgrade_and_rollback() {
    let d = molt_abi::descriptor::<Kv>(env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (d.name.as_str(), d.version.as_str(), d.state_schema),
        ("kv", "2.0.0", 2)
    );
    assert_eq!(d.import_schemas.as_slice(), [1, 2]);
    assert_eq!(d.export_schemas.as_slice(), [2, 1]);
}

#[test]
fn preload_counts_writes() {
    let app = Kv::create().unwrap();
    let resp = call(&app, "POST", "/preload?keys=100&size=10", b"");
    assert_eq!(resp.status, 200, "{}", resp.text());
    call(&app, "POST", "/preload?keys=10&size=3", b"");
    assert_eq!(app.writes("k5"), Some(2));
    assert_eq!(app.writes("k50"), Some(1));
    assert_eq!(app.get("k5").unwrap(), b"fgh");
    assert_eq!(app.get("k50").unwrap(), preload_value(50, 10));
    let stats = app.stats();
    assert_eq!(
        (stats.keys, stats.value_bytes, stats.writes),
        (100, 90 * 10 + 10 * 3, 110)
    );
    assert_eq!(call(&app, "POST", "/preload?keys=1", b"").status, 400);
}

#[test]
fn state_round_trips_with_counters() {
    let app = Kv::create().unwrap();
    app.preload(300, 17);
    for _ in 0..5 {
        call(&app, "PUT", "/kv/hot", b"x");
    }
    let restored = round_trip(&app).unwrap();
    assert_eq!(restored.stats(), app.stats());
    assert_eq!(restored.writes("hot"), Some(5));
    assert_eq!(restored.get("k299").unwrap(), preload_value(299, 17));
    assert_eq!(
        Kv::create().unwrap().export_state(2).unwrap(),
        0u64.to_le_bytes(),
        "an empty store is just a zero count"
    );
}

#[test]
fn imports_hand_built_schema_1_with_one_write_each() {
    let bytes = encode(&[(b"a", b"1", None), (b"b", b"22", None)]);
    let app = Kv::import_state(1, &bytes).unwrap();
    assert_eq!(app.get("b").unwrap(), b"22");
    assert_eq!(app.writes("a"), Some(1));
    assert_eq!(app.writes("b"), Some(1));
    call(&app, "PUT", "/kv/a", b"3");
    assert_eq!(app.writes("a"), Some(2));
    // Exporting schema 1 drops the counters: the bytes are v1's again.
    let back = Kv::import_state(1, &app.export_state(1).unwrap()).unwrap();
    assert_eq!(back.writes("a"), Some(1));
    let one = Kv::import_state(2, &encode(&[(b"x", b"42", Some(7))])).unwrap();
    assert_eq!(one.export_state(2).unwrap(), encode(&[(b"x", b"42", Some(7))]));
    assert_eq!(one.export_state(1).unwrap(), encode(&[(b"x", b"42", None)]));
}

/// The upgrade a swap performs, from the real kv v1 (a dev-dependency: linked into this
/// test binary only, never into the kv v2 plugin), and the rollback back to it.
#[test]
fn migrates_from_kv_v1_and_rolls_back() {
    let v1 = kv_v1::Kv::create().unwrap();
    v1.preload(1000, 64);
    call(&v1, "PUT", "/kv/greeting", b"hello");
    let v2: Kv = migrate(&v1).unwrap();
    assert_eq!(v2.get("greeting").unwrap(), b"hello");
    assert_eq!(v2.get("k999").unwrap(), kv_v1::preload_value(999, 64));
    assert_eq!(v2.writes("greeting"), Some(1));
    let stats = v2.stats();
    let v1_stats = v1.stats();
    assert_eq!(
        (stats.keys, stats.key_bytes, stats.value_bytes, stats.writes),
        (v1_stats.keys, v1_stats.key_bytes, v1_stats.value_bytes, 1001)
    );
    call(&v2, "PUT", "/kv/greeting", b"hello again");
    call(&v2, "DELETE", "/kv/k0", b"");
    let back: kv_v1::Kv = migrate(&v2).unwrap();
    assert_eq!(back.get("greeting").unwrap(), b"hello again");
    assert_eq!(back.get("k0"), None);
    assert_eq!(back.stats().keys, 1000);
}

#[test]
fn malformed_state_is_an_error() {
    let good = encode(&[(b"a", b"1", Some(2)), (b"bb", b"22", Some(1))]);
    assert!(Kv::import_state(2, &good).is_ok());
    for cut in 0..good.len() {
        assert!(Kv::import_state(2, &good[..cut]).is_err(), "cut at {cut}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(Kv::import_state(2, &trailing).unwrap_err().0.contains("trailing"));
    // Schema 1 bytes read as schema 2 are refused, not misread.
    let v1_bytes = encode(&[(b"a", b"1", None), (b"bb", b"22", None)]);
    assert!(Kv::import_state(2, &v1_bytes).is_err());
    assert!(Kv::import_state(2, &u64::MAX.to_le_bytes())
        .unwrap_err()
        .0
        .contains("cannot fit"));
    let zero = encode(&[(b"a", b"1", Some(0))]);
    assert!(Kv::import_state(2, &zero)
        .unwrap_err()
        .0
        .contains("zero write counter"));
    let bad_utf8 = encode(&[(b"\xff", b"1", Some(1))]);
    assert!(Kv::import_state(2, &bad_utf8).unwrap_err().0.contains("UTF-8"));
    let dup = encode(&[(b"a", b"1", None), (b"a", b"2", None)]);
    assert!(Kv::import_state(1, &dup).unwrap_err().0.contains("duplicate"));
    let huge = encode(&[(b"a", b"1", Some(u64::MAX))]);
    let app = Kv::import_state(2, &huge).unwrap();
    call(&app, "PUT", "/kv/a", b"x");
    assert_eq!(
        app.writes("a"),
        Some(u64::MAX),
        "a counter saturates rather than wraps"
    );
}

#[test]
fn concurrent_writes_are_all_counted() {
    let app = Kv::create().unwrap();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let app = &app;
            scope.spawn(move || {
                for i in 0..500 {
                    call(app, "PUT", "/kv/shared", b"v");
                    call(app, "PUT", &format!("/kv/t{t}-{i}"), b"v");
                    call(app, "GET", "/kv/shared/writes", b"");
                }
            });
        }
    });
    assert_eq!(app.writes("shared"), Some(8 * 500));
    assert_eq!(app.stats().keys, 8 * 500 + 1);
}

/// `cargo test --release -p kv-v2 -- --ignored --nocapture`: times a 100 MB state.
#[test]
#[ignore = "timing, run by hand in release mode"]
fn large_state_timing() {
    let app = Kv::create().unwrap();
    let t = std::time::Instant::now();
    app.preload(100_000, 1000);
    println!("preload 100 MB: {:?}", t.elapsed());
    for schema in [2, 1] {
        let t = std::time::Instant::now();
        let bytes = app.export_state(schema).unwrap();
        println!("export schema {schema}, {} bytes: {:?}", bytes.len(), t.elapsed());
        let t = std::time::Instant::now();
        let restored = Kv::import_state(schema, &bytes).unwrap();
        println!("import schema {schema}: {:?}", t.elapsed());
        assert_eq!(restored.stats(), app.stats());
    }
}

#[test]
fn merge_keeps_the_more_written_value_and_adds_the_counters() {
    let live = Kv::create().unwrap();
    live.put("tie", b"live".to_vec());
    live.put("hot-here", b"live".to_vec());
    live.put("hot-here", b"live2".to_vec());
    let peer = Kv::create().unwrap();
    peer.put("tie", b"peer".to_vec());
    peer.put("hot-here", b"peer".to_vec());
    for _ in 0..3 {
        peer.put("hot-there", b"peer".to_vec());
    }
    live.put("hot-there", b"live".to_vec());
    peer.put("only-peer", b"p".to_vec());
    let merged = molt_abi::testing::merge(&live, &peer).unwrap();
    let entry = |key: &str| (merged.get(key).unwrap(), merged.writes(key).unwrap());
    assert_eq!(entry("tie"), (b"live".to_vec(), 2), "a tie keeps the live value");
    assert_eq!(entry("hot-here"), (b"live2".to_vec(), 3));
    assert_eq!(entry("hot-there"), (b"peer".to_vec(), 4));
    assert_eq!(entry("only-peer"), (b"p".to_vec(), 1));
    assert_eq!(merged.stats().keys, 4);
    assert_eq!(
        live.writes("hot-there"),
        Some(1),
        "the running instance is untouched"
    );

    // A kv v1 peer (schema 1): its keys count one write each.
    let mut copy = round_trip(&live).unwrap();
    copy.merge_state(1, &encode(&[(b"tie", b"v1", None), (b"new", b"v1", None)]))
        .unwrap();
    assert_eq!(
        (copy.get("tie").unwrap(), copy.writes("tie")),
        (b"live".to_vec(), Some(2))
    );
    assert_eq!(copy.writes("new"), Some(1));
    assert!(copy.merge_state(2, b"garbage").is_err());
}
