//! Core tests of molt: the loader and the swap engine, on real plugins built from source and
//! opened with a real `dlopen`, driven in-process (no HTTP).
//!
//! One test binary with modules, like ripgrep's `tests/tests.rs`:
//! - `swap`: swaps and rollbacks under concurrent load lose no call and no increment; the
//!   pause of every swap is reported;
//! - `faults`: every faulty fixture is refused with an error that names it and the failed
//!   step, and the running version keeps serving with its exact state;
//! - `merge`: a peer's state absorbed through the merge hook under load; refused, panicking
//!   and missing merge hooks leave the running state untouched;
//! - `loader`: what the loader refuses (non-ELF, truncated, wrong ABI, no entry symbol, a
//!   manifest mismatch) and how it keeps the release volume out of reach of `dlopen`;
//! - `tables`: host-owned tables across code-only swaps, record schema changes under writes,
//!   rollbacks, and a record the hook refuses.

#[path = "core/faults.rs"]
mod faults;
#[path = "core/loader.rs"]
mod loader;
#[path = "core/merge.rs"]
mod merge;
#[path = "core/swap.rs"]
mod swap;
#[path = "core/tables.rs"]
mod tables;
