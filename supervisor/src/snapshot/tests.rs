use super::*;
use std::fs;
use std::path::Path;

fn store() -> (tempfile::TempDir, SnapshotStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(tmp.path().join("state").join("pod-0"));
    (tmp, store)
}

fn snap(bytes: &[u8]) -> Snapshot {
    Snapshot::new("counter", "1.2.0", 2, bytes.to_vec())
}

/// Names in the state directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Writes a good snapshot, spoils its file, and checks `latest()` refuses it naming `check`,
/// every time (never the older one silently), until it is set aside (same bytes, not
/// deleted); then the older snapshot is read.
fn assert_refused(spoil: impl FnOnce(&mut Vec<u8>), check: &str) {
    let (_tmp, store) = store();
    store.write(&snap(b"older")).unwrap();
    let path = store.write(&snap(b"newest state")).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    spoil(&mut bytes);
    fs::write(&path, &bytes).unwrap();

    let err = store.latest().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(check), "{msg} lacks {check:?}");
    assert!(
        matches!(err, SnapshotError::Corrupt { moved_to: None, .. }),
        "{err:?}"
    );
    assert!(
        msg.contains("refused on every start until it is set aside"),
        "{msg}"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes, "left in place, unchanged");
    let again = store.latest().unwrap_err();
    assert!(
        matches!(again, SnapshotError::Corrupt { .. }),
        "refused again: {again:?}"
    );
    let aside = store.set_aside(&path).unwrap();
    assert!(!path.exists());
    assert_eq!(fs::read(&aside).unwrap(), bytes, "set aside unchanged");
    assert!(aside
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .contains(".molt.corrupt-"));

    let older = store.latest().unwrap().unwrap();
    assert_eq!(older.bytes, b"older");
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn round_trip() {
    let (_tmp, store) = store();
    assert_eq!(store.latest().unwrap(), None);
    let written = snap(&[0, 1, 2, 255, b'\n', 7]);
    let path = store.write(&written).unwrap();
    assert!(path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("snapshot-"));
    let read = store.latest().unwrap().unwrap();
    let ms = |t: std::time::SystemTime| format::unix_ms(t);
    assert_eq!(
        (read.app.as_str(), read.version.as_str(), read.schema),
        ("counter", "1.2.0", 2)
    );
    assert_eq!(read.bytes, written.bytes);
    assert_eq!(ms(read.written_at), ms(written.written_at));
    assert_eq!(read_snapshot(&path).unwrap(), read);
    let head = fs::read(&path).unwrap();
    assert!(head.starts_with(b"MOLTSNAP 1 "));
    // Only the snapshot itself: no temp file left behind.
    assert_eq!(names(store.dir()).len(), 1);
}

#[test]
fn empty_payload_round_trips() {
    let (_tmp, store) = store();
    store.write(&snap(b"")).unwrap();
    assert_eq!(store.latest().unwrap().unwrap().bytes, b"");
}

#[test]
fn latest_is_the_last_written_and_pruning_keeps_n() {
    let (_tmp, store) = store();
    let store = store.with_keep(2);
    for i in 0..5u8 {
        store.write(&snap(&[i])).unwrap();
    }
    assert_eq!(store.list().unwrap().len(), 2);
    assert_eq!(names(store.dir()).len(), 2);
    assert_eq!(store.latest().unwrap().unwrap().bytes, [4]);
    let older = read_snapshot(&store.list().unwrap()[1]).unwrap();
    assert_eq!(older.bytes, [3]);
}

#[test]
fn truncated_payload_is_refused() {
    assert_refused(|b| b.truncate(b.len() - 3), "truncated");
}

#[test]
fn truncated_header_is_refused() {
    assert_refused(|b| b.truncate(100), "truncated");
}

#[test]
fn bit_flip_in_payload_is_refused() {
    assert_refused(
        |b| {
            let last = b.len() - 1;
            b[last] ^= 0x01;
        },
        "payload checksum check failed",
    );
}

#[test]
fn bit_flip_in_header_is_refused() {
    assert_refused(
        |b| {
            let at = b.iter().position(|&c| c == b'{').unwrap() + 3;
            b[at] ^= 0x01;
        },
        "header checksum check failed",
    );
}

#[test]
fn bad_magic_is_refused() {
    assert_refused(|b| b[0] = b'X', "magic check failed");
}

#[test]
fn unknown_format_is_refused() {
    assert_refused(|b| b[9] = b'9', "format check failed");
}

#[test]
fn trailing_bytes_are_refused() {
    assert_refused(|b| b.extend_from_slice(b"junk"), "trailing bytes");
}

#[test]
fn corrupt_only_snapshot_then_none() {
    let (_tmp, store) = store();
    let path = store.write(&snap(b"x")).unwrap();
    fs::write(&path, b"not a snapshot at all").unwrap();
    assert!(matches!(store.latest(), Err(SnapshotError::Corrupt { .. })));
    assert!(matches!(store.latest(), Err(SnapshotError::Corrupt { .. })));
    store.set_aside(&path).unwrap();
    assert_eq!(store.latest().unwrap(), None);
    // The set-aside file is neither listed nor pruned by later writes.
    for i in 0..5u8 {
        store.write(&snap(&[i])).unwrap();
    }
    assert_eq!(
        names(store.dir())
            .iter()
            .filter(|n| n.contains(".corrupt-"))
            .count(),
        1
    );
}

#[test]
fn read_snapshot_does_not_move_the_file() {
    let (_tmp, store) = store();
    let path = store.write(&snap(b"x")).unwrap();
    fs::write(&path, b"MOLTSNAP").unwrap();
    let err = read_snapshot(&path).unwrap_err();
    assert!(err.to_string().contains("left in place"), "{err}");
    assert!(path.exists());
}

#[test]
fn large_payload_round_trips() {
    let (_tmp, store) = store();
    let bytes: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    store.write(&snap(&bytes)).unwrap();
    assert!(store.latest().unwrap().unwrap().bytes == bytes);
}

#[test]
fn the_handoff_ledger_round_trips_and_is_absent_when_empty() {
    let (_tmp, store) = store();
    let plain = store.write(&snap(b"plain")).unwrap();
    let header = String::from_utf8_lossy(&fs::read(&plain).unwrap()).into_owned();
    assert!(!header.contains("handoff"), "no ledger, no field: {header}");

    let mut marked = snap(b"handed");
    marked.ledger = Ledger {
        handed_off: Some(HandedOff {
            id: "h-1".into(),
            to: "http://pod-0:7070".into(),
            at_ms: 1_700_000_000_000,
        }),
        absorbed: vec!["h-0".into()],
        pending: None,
    };
    store.write(&marked).unwrap();
    let back = store.latest().unwrap().unwrap();
    assert_eq!(back.ledger, marked.ledger);
    assert_eq!(back.bytes, b"handed");

    let mut pending = snap(b"sealed");
    pending.ledger.pending = Some(crate::snapshot::PendingHandoff {
        id: "h-2".into(),
        to: "http://pod-1:7070".into(),
    });
    store.write(&pending).unwrap();
    assert_eq!(store.latest().unwrap().unwrap().ledger, pending.ledger);
}

#[test]
fn a_header_the_reader_would_refuse_is_not_written_and_the_previous_snapshot_stays() {
    let (_tmp, store) = store();
    let kept = store.write(&snap(b"kept")).unwrap();
    let mut huge = snap(b"huge");
    // 21,500 control characters: each is six bytes escaped in JSON, 129 KB in all.
    huge.ledger.handed_off = Some(HandedOff {
        id: "h-1".into(),
        to: "\u{1}".repeat(21_500),
        at_ms: 1,
    });
    let err = store.write(&huge).expect_err("an oversized header is refused");
    assert!(err.to_string().contains("longer than"), "{err}");
    assert_eq!(
        store.list().unwrap(),
        vec![kept.clone()],
        "nothing else was written"
    );
    let names: Vec<_> = fs::read_dir(kept.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    assert_eq!(store.latest().unwrap().unwrap().bytes, b"kept");
}

fn with_tables(records: usize) -> Snapshot {
    let tables = std::sync::Arc::new(crate::tables::TableStore::new());
    tables.set_schema(1);
    let t = tables.open("kv");
    for i in 0..records {
        t.put(format!("k{i}").as_bytes(), 1, format!("value {i}").as_bytes());
    }
    Snapshot::new("kv", "3.0.0", 3, Vec::new()).with_tables(tables)
}

#[test]
fn tables_round_trip_in_format_2() {
    let (_tmp, store) = store();
    let path = store.write(&with_tables(5000)).unwrap();
    let text = fs::read(&path).unwrap();
    assert!(text.starts_with(b"MOLTSNAP 2 "));
    let back = store.latest().unwrap().unwrap();
    let tables = back.tables.expect("tables read back");
    assert_eq!((tables.schema(), tables.records()), (1, 5000));
    let value = tables.open("kv").get(b"k4321", 1, |v| v.to_vec()).unwrap();
    assert_eq!(value.as_deref(), Some(&b"value 4321"[..]));
    // Without tables, the format stays 1.
    let path = store.write(&snap(b"bytes only")).unwrap();
    assert!(fs::read(&path).unwrap().starts_with(b"MOLTSNAP 1 "));
    assert!(store.latest().unwrap().unwrap().tables.is_none());
}

#[test]
fn spoiled_tables_are_refused_and_set_aside() {
    let spoil = |f: &dyn Fn(&mut Vec<u8>), check: &str| {
        let (_tmp, store) = store();
        store.write(&snap(b"older")).unwrap();
        let path = store.write(&with_tables(300)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        f(&mut bytes);
        fs::write(&path, &bytes).unwrap();
        let err = store.latest().unwrap_err();
        assert!(err.to_string().contains(check), "{err} lacks {check:?}");
        assert!(path.exists(), "left in place");
        store.set_aside(&path).unwrap();
        assert_eq!(store.latest().unwrap().unwrap().bytes, b"older");
    };
    // A flipped bit inside a record.
    spoil(
        &|b| {
            let at = b.len() / 2;
            b[at] ^= 1;
        },
        "tables",
    );
    // Cut off: the trailer is gone.
    spoil(&|b| b.truncate(b.len() - 40), "tables");
    // A trailer claiming more than the file holds.
    spoil(
        &|b| {
            let at = b.len() - 97 + 11;
            b[at] = b'9';
        },
        "tables",
    );
}
