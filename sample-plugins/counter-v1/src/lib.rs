//! counter v1: one shared counter. The first version of the sample app molt's demo and tests
//! upgrade from.
//!
//! - `POST /incr` → the new total, as decimal text
//! - `GET /count` → the total
//!
//! State schema 1: the total as 8 little-endian bytes.
//!
//! Merge (a handoff from a departing peer): the peer's total is added to this one.

use molt_abi::{App, AppError, Request, Response};
use std::sync::atomic::{AtomicU64, Ordering};

/// The counter: a single atomic total, so concurrent increments are never lost.
#[derive(Debug, Default)]
pub struct Counter {
    total: AtomicU64,
}

impl Counter {
    /// The current total.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }
}

impl App for Counter {
    const NAME: &'static str = "counter";
    const SCHEMA: u32 = 1;

    fn create() -> Result<Self, AppError> {
        Ok(Counter::default())
    }

    fn handle(&self, req: &Request<'_>) -> Response {
        match (req.method(), req.path()) {
            ("POST", "/incr") => Response::ok((self.total.fetch_add(1, Ordering::SeqCst) + 1).to_string()),
            ("GET", "/count") => Response::ok(self.total().to_string()),
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, _schema: u32) -> Result<Vec<u8>, AppError> {
        Ok(self.total().to_le_bytes().to_vec())
    }

    fn import_state(_schema: u32, state: &[u8]) -> Result<Self, AppError> {
        Ok(Counter {
            total: AtomicU64::new(decode(state)?),
        })
    }

    const MERGES: &'static [u32] = &[1];

    fn merge_state(&mut self, _schema: u32, state: &[u8]) -> Result<(), AppError> {
        let peer = decode(state)?;
        let total = self.total.get_mut();
        *total = total
            .checked_add(peer)
            .ok_or_else(|| AppError(format!("merging {peer} into {total} overflows a u64")))?;
        Ok(())
    }
}

/// Schema 1: the total as 8 little-endian bytes.
fn decode(state: &[u8]) -> Result<u64, AppError> {
    let bytes: [u8; 8] = state
        .try_into()
        .map_err(|_| AppError(format!("counter schema 1 is 8 bytes, got {}", state.len())))?;
    Ok(u64::from_le_bytes(bytes))
}

molt_abi::export_app!(Counter);

#[cfg(test)]
mod tests {
    use super::*;
    use molt_abi::testing::{call, merge, round_trip};

    #[test]
    fn counts_and_survives_a_snapshot() {
        let app = Counter::create().unwrap();
        assert_eq!(call(&app, "POST", "/incr", b"").text(), "1");
        assert_eq!(call(&app, "POST", "/incr", b"").text(), "2");
        let restored = round_trip(&app).unwrap();
        assert_eq!(call(&restored, "GET", "/count", b"").text(), "2");
        assert_eq!(call(&restored, "GET", "/nope", b"").status, 404);
        assert!(Counter::import_state(1, b"short").is_err());
    }

    #[test]
    fn merge_adds_the_peer_total_and_leaves_the_running_one_alone() {
        let live = Counter::import_state(1, &5u64.to_le_bytes()).unwrap();
        let departing = Counter::import_state(1, &3u64.to_le_bytes()).unwrap();
        let merged = merge(&live, &departing).unwrap();
        assert_eq!(merged.total(), 8);
        assert_eq!(live.total(), 5, "the running instance is not the one merged into");
        let mut copy = round_trip(&live).unwrap();
        assert!(copy.merge_state(1, b"short").is_err());
        assert!(
            copy.merge_state(1, &u64::MAX.to_le_bytes()).is_err(),
            "overflow refused"
        );
        assert_eq!(copy.total(), 5, "a refused merge changed nothing");
    }
}
