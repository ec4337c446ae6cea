//! What must hold after every kill, checked on the disk and on the restarted process.

use super::writer::Ack;
use molt_supervisor::snapshot::{read_snapshot, Snapshot};
use molt_supervisor::volume::Volume;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The newest snapshot file in `state` (by its name), decoded: `None` when there is none. Every
/// snapshot file must decode (a corrupt one is a failure) and none may have been set aside.
pub fn newest_snapshot(state: &Path) -> Result<Option<(PathBuf, Snapshot)>, String> {
    let mut names: Vec<String> = std::fs::read_dir(state)
        .map_err(|e| format!("listing {}: {e}", state.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if let Some(aside) = names.iter().find(|n| n.contains(".corrupt-")) {
        return Err(format!("a snapshot was set aside as corrupt: {aside}"));
    }
    let mut newest = None;
    for name in names
        .iter()
        .filter(|n| n.starts_with("snapshot-") && n.ends_with(".molt"))
    {
        let path = state.join(name);
        let snap = read_snapshot(&path).map_err(|e| format!("corrupt snapshot file: {e}"))?;
        newest = Some((path, snap));
    }
    Ok(newest)
}

/// A kv state (schema 1 or 2, see the kv plugins' docs) as key → value.
pub fn kv_state(snap: &Snapshot) -> Result<HashMap<String, Vec<u8>>, String> {
    let bytes = &snap.bytes;
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let out = bytes.get(at..at + n).ok_or("the kv state is truncated")?;
        at += n;
        Ok(out)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize;
    let count = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
    let mut map = HashMap::new();
    for _ in 0..count {
        let klen = u32_at(take(4)?);
        let key = String::from_utf8(take(klen)?.to_vec()).map_err(|e| e.to_string())?;
        let vlen = u32_at(take(4)?);
        let value = take(vlen)?.to_vec();
        if snap.schema == 2 {
            take(8)?; // the write counter
        }
        map.insert(key, value);
    }
    Ok(map)
}

/// `keys`, `key_bytes`, `value_bytes` of a kv state, as its `GET /stats` reports them.
pub fn stats(map: &HashMap<String, Vec<u8>>) -> (u64, u64, u64) {
    let keys = map.len() as u64;
    let key_bytes = map.keys().map(|k| k.len() as u64).sum();
    let value_bytes = map.values().map(|v| v.len() as u64).sum();
    (keys, key_bytes, value_bytes)
}

/// Every write acknowledged before the snapshot's export began is in it, with its value.
/// Returns how many were checked.
pub fn acked_writes_present(
    acks: &[Ack],
    snap: &Snapshot,
    map: &HashMap<String, Vec<u8>>,
) -> Result<usize, String> {
    let mut checked = 0;
    for ack in acks.iter().filter(|a| a.at < snap.written_at) {
        let key = format!("w{}", ack.n);
        match map.get(&key) {
            Some(v) if v == ack.n.to_string().as_bytes() => checked += 1,
            Some(v) => {
                return Err(format!(
                    "{key} = {:?} in the snapshot, {} was acknowledged",
                    String::from_utf8_lossy(v),
                    ack.n
                ))
            }
            None => {
                return Err(format!(
                    "{key}, acknowledged before the snapshot, is missing from it"
                ))
            }
        }
    }
    Ok(checked)
}

/// `current` names a release that passes every check the supervisor runs before loading.
pub fn current_verifies(volume: &Path, app: &str) -> Result<String, String> {
    let volume = Volume::new(volume);
    let current = volume
        .current(app)
        .map_err(|e| e.to_string())?
        .ok_or("no current release")?;
    volume
        .verify_release(app, &current)
        .map_err(|e| format!("current names {current}, which does not verify: {e}"))?;
    Ok(current)
}

/// Temporaries nobody holds (a writer's lock marks one in use): leftovers of a killed write.
pub fn abandoned_temporaries(dirs: &[&Path]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let temporary = name.contains(".tmp-") || name.starts_with("molt-run-");
            if !temporary {
                continue;
            }
            let held = File::open(entry.path()).is_ok_and(|f| f.try_lock().is_err());
            if !held {
                out.push(entry.path());
            }
        }
    }
    out
}
