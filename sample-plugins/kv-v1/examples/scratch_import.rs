use molt_abi::{App, StateBuf};
use std::time::Instant;
fn main() {
    let keys: u64 = std::env::args().nth(1).map_or(1_000_000, |s| s.parse().unwrap());
    let size: usize = std::env::args().nth(2).map_or(100, |s| s.parse().unwrap());
    let rounds: usize = std::env::args().nth(3).map_or(6, |s| s.parse().unwrap());
    let kv = kv_v1::Kv::create().unwrap();
    kv.preload(keys, size);
    let bytes = kv.export_state(1).unwrap();
    let mut keep = Vec::new();
    let (mut ti, mut te) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let tables = molt_abi::testing::TestTables::new();
        let t = Instant::now();
        let shared =
            kv_v1::Kv::import_shared(tables.handle(0), 1, StateBuf::from_vec(bytes.clone())).unwrap();
        ti.push(t.elapsed());
        let t = Instant::now();
        let again = shared.export_state(1).unwrap();
        te.push(t.elapsed());
        drop(again);
        keep.push(shared);
        if keep.len() > 1 {
            keep.remove(0);
        }
    }
    ti.sort();
    te.sort();
    println!(
        "import p50 {:?} export p50 {:?}",
        ti[ti.len() / 2],
        te[te.len() / 2]
    );
}
