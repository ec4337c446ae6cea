use molt_abi::{App, StateBuf};
use std::time::Instant;
fn main() {
    let keys: u64 = std::env::args().nth(1).map_or(1_000_000, |s| s.parse().unwrap());
    let size: usize = std::env::args().nth(2).map_or(100, |s| s.parse().unwrap());
    let kv = kv_v1::Kv::create().unwrap();
    kv.preload(keys, size);
    let mut keep = Vec::new();
    for _ in 0..6 {
        let t = Instant::now();
        let bytes = kv.export_state(1).unwrap();
        let e = t.elapsed();
        let tables = molt_abi::testing::TestTables::new();
        let t = Instant::now();
        let shared = kv_v1::Kv::import_shared(tables.handle(0), 1, StateBuf::from_vec(bytes)).unwrap();
        let i2 = t.elapsed();
        let t = Instant::now();
        let again = shared.export_state(1).unwrap();
        let e2 = t.elapsed();
        drop(again);
        println!("export {e:?} import(shared) {i2:?} export(shared) {e2:?}");
        keep.push(shared);
        if keep.len() > 1 {
            keep.remove(0);
        }
    }
}
