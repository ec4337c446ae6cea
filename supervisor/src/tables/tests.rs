use super::*;

fn upgrade(fail_on: Option<&'static [u8]>) -> Arc<Conversion> {
    Arc::new(Conversion {
        from: 1,
        to: 2,
        hook: Arc::new(move |_table: &str, key: &[u8], value: &[u8]| {
            if Some(key) == fail_on {
                return Err("refused by the test hook".to_owned());
            }
            let mut v = b"v2:".to_vec();
            v.extend_from_slice(value);
            Ok(v)
        }),
        by: "test upgrade".to_owned(),
    })
}

fn filled(n: usize) -> TableStore {
    let store = TableStore::new();
    store.set_schema(1);
    let t = store.open("kv");
    for i in 0..n {
        t.put(format!("k{i:04}").as_bytes(), 1, format!("{i}").as_bytes());
    }
    store
}

fn value(t: &Table, key: &str, schema: u32) -> Option<String> {
    t.get(key.as_bytes(), schema, |v| String::from_utf8(v.to_vec()).unwrap())
        .unwrap()
}

#[test]
fn get_put_delete_update_count() {
    let store = TableStore::new();
    let t = store.open("a");
    assert!(Arc::ptr_eq(&t, &store.open("a")), "open finds the same table");
    assert!(t.put(b"x", 1, b"1"));
    assert!(!t.put(b"x", 1, b"2"));
    assert_eq!(value(&t, "x", 1).as_deref(), Some("2"));
    assert_eq!(t.count(), 1);
    assert_eq!(t.bytes(), 2);
    let existed = t
        .update(b"x", 1, |old| {
            let n: u32 = std::str::from_utf8(old.unwrap()).unwrap().parse().unwrap();
            Change::Set((n + 40).to_string().into_bytes())
        })
        .unwrap();
    assert!(existed);
    assert_eq!(value(&t, "x", 1).as_deref(), Some("42"));
    assert!(!t
        .update(b"y", 1, |old| {
            assert!(old.is_none());
            Change::Keep
        })
        .unwrap());
    assert!(t.update(b"x", 1, |_| Change::Delete).unwrap());
    assert!(!t.delete(b"x"));
    assert_eq!((t.count(), store.records(), store.bytes()), (0, 0, 0));
}

#[test]
fn concurrent_updates_of_one_key_lose_nothing() {
    let store = Arc::new(TableStore::new());
    let t = store.open("counters");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..2000u64 {
                    t.update(b"hot", 1, |old| {
                        let n = old.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
                        Change::Set((n + 1).to_le_bytes().to_vec())
                    })
                    .unwrap();
                    t.put(format!("cold{}", i % 100).as_bytes(), 1, b"x");
                }
            });
        }
    });
    let n = t
        .get(b"hot", 1, |v| u64::from_le_bytes(v.try_into().unwrap()))
        .unwrap();
    assert_eq!(n, Some(8000));
    assert_eq!(t.count(), 101);
}

#[test]
fn scans_see_every_record_ordered_or_not() {
    let store = filled(1000);
    let t = store.open("kv");
    let mut keys = Vec::new();
    t.scan(1, true, |k, _| {
        keys.push(k.to_vec());
        false
    })
    .unwrap();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys.len(), 1000);
    assert_eq!(keys, sorted, "ordered scan is in key order");
    let mut n = 0;
    t.scan(1, false, |_, _| {
        n += 1;
        n == 10
    })
    .unwrap();
    assert_eq!(n, 10, "a scan stops when asked");
}

#[test]
fn a_schema_change_validates_tracks_flips_and_converts_lazily() {
    let store = filled(500);
    let t = store.open("kv");
    let conversion = upgrade(None);
    assert_eq!(store.validate(&conversion).unwrap(), 500);
    // Writes while the change is validated are tracked.
    t.put(b"k0001", 1, b"written meanwhile");
    t.put(b"new", 1, b"n");
    assert_eq!(store.validate_written(&conversion).unwrap(), 2);
    assert_eq!(store.validate_written(&conversion).unwrap(), 0);
    assert_eq!(
        value(&t, "k0002", 1).as_deref(),
        Some("2"),
        "nothing converted yet"
    );
    store.flip(Arc::clone(&conversion));
    assert_eq!(store.schema(), 2);
    // The new version reads schema 2: converted on first read, in place.
    assert_eq!(value(&t, "k0001", 2).as_deref(), Some("v2:written meanwhile"));
    assert_eq!(value(&t, "k0001", 2).as_deref(), Some("v2:written meanwhile"));
    t.put(b"fresh", 2, b"already v2");
    let converted = store.finish_pending(None).unwrap();
    assert_eq!(converted, 500, "501 old records, one read already");
    assert!(store.pending().is_none());
    assert_eq!(value(&t, "fresh", 2).as_deref(), Some("already v2"));
    assert_eq!(value(&t, "k0499", 2).as_deref(), Some("v2:499"));
    assert_eq!(t.count(), 502);
    // Nothing is left in schema 1: reading it now has no conversion.
    assert!(t.get(b"k0001", 1, |_| ()).is_err());
}

#[test]
fn a_failing_record_names_its_key_and_changes_nothing() {
    let store = filled(300);
    let t = store.open("kv");
    let err = store.validate(&upgrade(Some(b"k0123"))).unwrap_err();
    assert_eq!((err.table.as_str(), err.key.as_str()), ("kv", "\"k0123\""));
    assert!(err.to_string().contains("refused by the test hook"), "{err}");
    assert_eq!(store.schema(), 1);
    assert!(store.pending().is_none());
    assert_eq!(value(&t, "k0123", 1).as_deref(), Some("123"));
    // Tracking stopped with the refusal.
    t.put(b"k0000", 1, b"x");
    assert!(t.take_dirty().is_empty());

    // A key written during validation that the hook refuses is caught too.
    let conversion = upgrade(Some(b"poison"));
    store.validate(&conversion).unwrap();
    t.put(b"poison", 1, b"x");
    let err = store.validate_written(&conversion).unwrap_err();
    assert_eq!(err.key, "\"poison\"");
}

#[test]
fn snapshot_sections_round_trip() {
    let store = filled(2000);
    let other = store.open("other");
    other.put(&[0, 1, 2], 7, b"binary key");
    let mut bytes = Vec::new();
    let written = snapshot::write(&store, &mut bytes).unwrap();
    assert_eq!((written.tables, written.records), (2, 2001));
    let (back, read) = snapshot::read(&mut &bytes[..], 1).unwrap();
    assert_eq!(read, written);
    assert_eq!(back.schema(), 1);
    assert_eq!(value(&back.open("kv"), "k1999", 1).as_deref(), Some("1999"));
    let record = back.open("other").record(&[0, 1, 2]).unwrap();
    assert_eq!(record.schema, 7);
    for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(snapshot::read(&mut &bytes[..cut], 1).is_err(), "cut at {cut}");
    }
}
