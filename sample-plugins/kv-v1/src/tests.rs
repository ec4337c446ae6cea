//! Routes, schemas, malformed state and concurrency.

use super::*;
use molt_abi::testing::{call, round_trip};

/// Builds schema 1 bytes by hand.
fn encode(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = (entries.len() as u64).to_le_bytes().to_vec();
    for (k, v) in entries {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

#[test]
fn put_get_delete_stats() {
    let app = Kv::create().unwrap();
    assert_eq!(call(&app, "GET", "/kv/a", b"").status, 404);
    assert_eq!(call(&app, "PUT", "/kv/a", b"hello").status, 201);
    assert_eq!(call(&app, "PUT", "/kv/a", b"hello!").status, 200);
    assert_eq!(call(&app, "PUT", "/kv/b", b"").status, 201);
    let got = call(&app, "GET", "/kv/a", b"");
    assert_eq!((got.status, got.body.as_slice()), (200, &b"hello!"[..]));
    assert_eq!(
        call(&app, "GET", "/stats", b"").text(),
        "{\"keys\":2,\"key_bytes\":2,\"value_bytes\":6,\"bytes\":8}\n"
    );
    assert_eq!(call(&app, "DELETE", "/kv/a", b"").status, 204);
    assert_eq!(call(&app, "DELETE", "/kv/a", b"").status, 404);
    assert_eq!(call(&app, "GET", "/kv/a", b"").status, 404);
    assert_eq!(call(&app, "POST", "/kv/a", b"").status, 405);
    assert_eq!(call(&app, "GET", "/kv/a/b", b"").status, 404);
    assert_eq!(call(&app, "GET", "/nope", b"").status, 404);
    assert_eq!(
        app.stats(),
        Stats {
            keys: 1,
            key_bytes: 1,
            value_bytes: 0
        }
    );
}

#[test]
fn preload_is_deterministic_and_sized() {
    let app = Kv::create().unwrap();
    call(&app, "PUT", "/kv/k3", b"old");
    let resp = call(&app, "POST", "/preload?keys=1000&size=100", b"");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let stats = app.stats();
    assert_eq!((stats.keys, stats.value_bytes), (1000, 100_000));
    assert_eq!(stats.key_bytes, 10 * 2 + 90 * 3 + 900 * 4);
    assert_eq!(app.get("k3").unwrap(), preload_value(3, 100));
    assert_eq!(&app.get("k27").unwrap()[..3], b"bcd");
    // A second preload replaces the same keys.
    call(&app, "POST", "/preload?keys=10&size=5", b"");
    assert_eq!(app.stats().keys, 1000);
    assert_eq!(app.get("k0").unwrap(), b"abcde");
    for bad in [
        "/preload?keys=x&size=1",
        "/preload?size=1",
        "/preload?keys=1&size=-1",
    ] {
        assert_eq!(call(&app, "POST", bad, b"").status, 400, "{bad}");
    }
    assert_eq!(
        call(&app, "POST", "/preload?keys=1&size=5000000000", b"").status,
        413
    );
    assert_eq!(
        call(&app, "POST", "/preload?keys=18446744073709551615&size=1", b"").status,
        413
    );
}

#[test]
fn state_round_trips() {
    let app = Kv::create().unwrap();
    app.preload(500, 33);
    call(&app, "PUT", "/kv/ünïcode", b"\x00\xff");
    call(&app, "PUT", "/kv/empty", b"");
    let restored = round_trip(&app).unwrap();
    assert_eq!(restored.stats(), app.stats());
    assert_eq!(restored.get("ünïcode").unwrap(), b"\x00\xff");
    assert_eq!(restored.get("k499").unwrap(), preload_value(499, 33));
    let empty = round_trip(&Kv::create().unwrap()).unwrap();
    assert_eq!(empty.stats().keys, 0);
}

#[test]
fn export_matches_hand_encoding() {
    let app = Kv::create().unwrap();
    call(&app, "PUT", "/kv/x", b"42");
    assert_eq!(app.export_state(1).unwrap(), encode(&[(b"x", b"42")]));
    let app = Kv::import_state(1, &encode(&[(b"a", b"1"), (b"b", b"22")])).unwrap();
    assert_eq!(app.get("b").unwrap(), b"22");
}

#[test]
fn malformed_state_is_an_error() {
    let good = encode(&[(b"a", b"1"), (b"bb", b"22")]);
    for cut in 0..good.len() {
        assert!(Kv::import_state(1, &good[..cut]).is_err(), "cut at {cut}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(Kv::import_state(1, &trailing).unwrap_err().0.contains("trailing"));
    let huge = u64::MAX.to_le_bytes();
    assert!(Kv::import_state(1, &huge).unwrap_err().0.contains("cannot fit"));
    let mut huge_len = 1u64.to_le_bytes().to_vec();
    huge_len.extend_from_slice(&u32::MAX.to_le_bytes());
    huge_len.extend_from_slice(b"abcd");
    assert!(Kv::import_state(1, &huge_len)
        .unwrap_err()
        .0
        .contains("truncated"));
    let bad_utf8 = encode(&[(b"\xff", b"1")]);
    assert!(Kv::import_state(1, &bad_utf8).unwrap_err().0.contains("UTF-8"));
    let dup = encode(&[(b"a", b"1"), (b"a", b"2")]);
    assert!(Kv::import_state(1, &dup).unwrap_err().0.contains("duplicate"));
}

#[test]
fn concurrent_writers_and_readers() {
    let app = Kv::create().unwrap();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let app = &app;
            scope.spawn(move || {
                for i in 0..500 {
                    let target = format!("/kv/t{t}-{i}");
                    assert_eq!(call(app, "PUT", &target, b"v").status, 201);
                    assert_eq!(call(app, "GET", &target, b"").body, b"v");
                    call(app, "GET", "/stats", b"");
                }
            });
        }
    });
    assert_eq!(app.stats().keys, 8 * 500);
}

/// `cargo test --release -p kv-v1 -- --ignored --nocapture`: times a 100 MB state.
#[test]
#[ignore = "timing, run by hand in release mode"]
fn large_state_timing() {
    let app = Kv::create().unwrap();
    let t = std::time::Instant::now();
    app.preload(100_000, 1000);
    println!("preload 100 MB: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let bytes = app.export_state(1).unwrap();
    println!("export {} bytes: {:?}", bytes.len(), t.elapsed());
    let t = std::time::Instant::now();
    let restored = Kv::import_state(1, &bytes).unwrap();
    println!("import: {:?}", t.elapsed());
    assert_eq!(restored.stats(), app.stats());
}

#[test]
fn merge_takes_the_union_and_keeps_the_live_value_on_a_conflict() {
    let live = Kv::create().unwrap();
    live.put("a", b"live-a".to_vec());
    live.put("both", b"live".to_vec());
    let peer = Kv::create().unwrap();
    peer.put("b", b"peer-b".to_vec());
    peer.put("both", b"peer".to_vec());
    let merged = molt_abi::testing::merge(&live, &peer).unwrap();
    assert_eq!(merged.get("a").as_deref(), Some(&b"live-a"[..]));
    assert_eq!(merged.get("b").as_deref(), Some(&b"peer-b"[..]));
    assert_eq!(merged.get("both").as_deref(), Some(&b"live"[..]));
    assert_eq!(merged.stats().keys, 3);
    assert_eq!(merged.stats().value_bytes, 6 + 6 + 4);
    assert_eq!(live.stats().keys, 2, "the running instance is untouched");

    let mut copy = molt_abi::testing::round_trip(&live).unwrap();
    let mut truncated = peer.export_state(1).unwrap();
    truncated.pop();
    assert!(copy.merge_state(1, &truncated).is_err());
    assert_eq!(copy.stats(), live.stats(), "a refused merge changed nothing");
}
