//! # molt-abi: the contract between the molt supervisor and the apps it hot-swaps
//!
//! An app is a Rust `cdylib` that implements [`App`] and calls [`export_app!`]. The supervisor
//! `dlopen`s it, reads its [`Descriptor`] through the one exported entry symbol
//! (`molt_app_descriptor_<crate>`), and from then on calls it only through the descriptor's function
//! pointers. When a new version arrives, the supervisor pauses traffic, asks the old version to
//! [`App::export_state`], hands the bytes to the new version's [`App::import_state`], and
//! switches: the same idea as Erlang/OTP's `code_change/3`, with bytes in between because two
//! builds of a Rust type share no layout.
//!
//! ```ignore
//! use molt_abi::{App, AppError, Request, Response};
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! pub struct Counter(AtomicU64);
//!
//! impl App for Counter {
//!     const NAME: &'static str = "counter";
//!     const SCHEMA: u32 = 1;
//!     fn create() -> Result<Self, AppError> { Ok(Counter(AtomicU64::new(0))) }
//!     fn handle(&self, req: &Request<'_>) -> Response {
//!         match (req.method(), req.path()) {
//!             ("POST", "/incr") => Response::ok((self.0.fetch_add(1, Ordering::SeqCst) + 1).to_string()),
//!             _ => Response::not_found(),
//!         }
//!     }
//!     fn export_state(&self, _schema: u32) -> Result<Vec<u8>, AppError> {
//!         Ok(self.0.load(Ordering::SeqCst).to_le_bytes().to_vec())
//!     }
//!     fn import_state(_schema: u32, state: &[u8]) -> Result<Self, AppError> {
//!         let bytes: [u8; 8] = state.try_into().map_err(|_| AppError::new("want 8 bytes"))?;
//!         Ok(Counter(AtomicU64::new(u64::from_le_bytes(bytes))))
//!     }
//! }
//!
//! molt_abi::export_app!(Counter);
//! ```
//!
//! ## The rules an author must know
//! - **State crosses as bytes, never as Rust values.** Old and new versions are different
//!   builds: a `HashMap` from one is not a `HashMap` to the other. Pick an encoding you can
//!   read in every later version (and, for rollback, write in every earlier schema you list in
//!   [`App::EXPORTS`]). Bump [`App::SCHEMA`] whenever the encoding changes.
//! - **Borrowed means borrowed.** A [`Request`] lives for one `handle` call. Copy what you keep.
//! - **Your buffers are yours.** Responses and messages are allocated by your plugin and
//!   freed by it (the host calls the descriptor's `free_buffer`); the generated shims do this.
//! - **The state's buffer is the host's.** A swap or a snapshot calls [`App::export_into`]
//!   with a [`StateWriter`] over a buffer the supervisor owns, sized and pre-faulted from the
//!   last export; a large state is written straight into it. The new version's
//!   [`App::import_shared`] gets that same buffer for keeps as a [`StateBuf`]: keep it (in an
//!   `Arc`) and point into it rather than copying every value out; dropping it gives the
//!   memory back. Both default to the plain [`App::export_state`] / [`App::import_in`].
//! - **`handle` runs on many threads at once**: the app is `Send + Sync`; use locks or atomics.
//!   It may run on the supervisor's async workers: a handler that blocks for long is
//!   tolerated (others are served meanwhile) but costs a worker while it blocks.
//! - **`export_state` runs beside `handle` for snapshots**: periodic snapshots do not pause
//!   traffic, so the export reads the state under the locks `handle` uses, and should hold
//!   each only briefly ([`App::export_state`]).
//! - **Panics stay inside.** Each shim catches panics: a panic in `handle` answers that
//!   request with a 500 carrying only a request id (the panic text goes to the supervisor's
//!   log); a panic in a hook makes the swap fail and the old version keep serving. No
//!   backtrace is captured, even with `RUST_BACKTRACE` set: hooks run while traffic is paused.
//!   Build with `panic = "unwind"` (the default): with `abort` a panic kills the pod.
//! - **The schema lists are checked when you compile.** [`export_app!`] refuses an
//!   [`App::IMPORTS`] or [`App::EXPORTS`] without [`App::SCHEMA`], and duplicates
//!   ([`check_app`]).
//! - **Versions test together.** A crate's tests may depend on earlier versions (rlibs) and
//!   call [`testing::migrate`] between them: each crate's entry symbol has its own name
//!   (`molt_app_descriptor_<crate>`), so any number of versions link into one test binary.
//!   Build apps as `crate-type = ["cdylib", "rlib"]`, and earlier versions go in
//!   `[dev-dependencies]` (a library with two entry symbols is refused).
//! - **Nothing may outlive `destroy`.** No background threads, no thread-locals with
//!   destructors, no global state the next version would expect to find: an old version's
//!   library is unloaded once no call can reach it. Everything the next version needs goes
//!   through `export_state`. Periodic work goes in [`App::tick`], which the supervisor calls
//!   from its own thread every [`App::TICK_INTERVAL_MS`], never during a swap's pause.
//! - **A segfault is not caught.** Memory errors in a plugin take the whole process down;
//!   molt's state snapshots are how the state comes back after a restart.
//!
//! ## The host contract
//! The supervisor promises every shim: instance pointers are ones this plugin built and has
//! not destroyed; each instance is destroyed exactly once, after its last call; every out
//! pointer is valid for writes; borrowed inputs stay alive for the call; each [`OwnedBuf`]
//! handed out is given back to `free_buffer` exactly once.
//!
//! ## ABI versions
//! - **1**: the state crosses a swap as bytes ([`App::export_state`], [`App::import_state`]).
//! - **2** (this build, [`ABI_VERSION`]): adds **tables**, state the supervisor owns
//!   ([`Tables`], [`Table`]): named maps of byte keys to byte values in the supervisor's memory,
//!   handed to every version as it is built ([`App::create_in`], [`App::import_in`]). A swap that
//!   keeps the record encoding ([`App::TABLE_SCHEMA`]) moves nothing; one that changes it
//!   converts records one at a time through [`App::upgrade_record`] (and
//!   [`App::downgrade_record`] for rollback). Plugins built against version 1 keep loading.
//!
//! ## Tables: the rules
//! - **Where**: [`App::create_in`] and [`App::import_in`] get a [`Tables`]; open tables there
//!   and keep the [`Table`] handles in the instance (never in a global: the next version gets
//!   its own handles on the same tables). They are valid for the instance's life.
//! - **What**: keys and values are bytes, encoded as you choose; [`App::TABLE_SCHEMA`] names the
//!   encoding of a record. Same schema in the next version: the tables are handed over, nothing
//!   moves. New schema: list the old one in [`App::TABLE_UPGRADES`] and convert one record in
//!   [`App::upgrade_record`]; to allow rollback, list it in [`App::TABLE_DOWNGRADES`] and write
//!   [`App::downgrade_record`].
//! - **Record hooks are pure** functions of (table, key, value): the host runs them to check
//!   every record before the swap and again to convert after it. An error refuses the swap and
//!   names the key.
//! - **Callbacks hold a lock**: the closures of [`Table::get`] and [`Table::update`] run with the
//!   record's shard locked; they must not call the table. [`Table::scan`]'s closure runs with no
//!   lock held, a batch at a time (a scan is not a snapshot).
//! - **Costs**: every call is a host call (a shard lock, an ordered-map lookup; a write copies
//!   the key and value into the host). `get` lends the value in place; `update` is an atomic
//!   read-modify-write of one key.
//! - **When**: tables for large, keyed, long-lived state; export/import bytes for small or
//!   unkeyed state. An app may use both (the bytes part crosses every swap as before).
//! - **Tests**: [`testing::TestTables`] serves the same calls in-process.
//!
//! Appended since, without a version bump (a host reads them only when a plugin's
//! descriptor covers them): the merge hook, and `export_into` / `import_shared` (the state's
//! bytes in host memory; see [`HostBuf`], [`SharedBytes`]).
//!
//! The [`Descriptor`] only grows: fields are appended, and a host reads an appended field only
//! when the plugin's `size` covers it (see [`DESCRIPTOR_V1_SIZE`]).
//!
//! ## Testing hooks
//! [`testing`] calls `handle` and runs migrations between two app types in one test binary,
//! with the same schema choice the supervisor makes ([`choose_schema`]).

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod app;
mod checks;
mod export;
mod export_state_buf;
mod export_tables;
mod ffi;
mod host;
mod panic;
mod request;
mod state;
mod tables;
pub mod testing;

pub use app::{choose_schema, App, AppError};
pub use checks::check_app;
pub use export::{descriptor, panic_message};
pub use ffi::*;
pub use host::*;
pub use state::{ExportIntoFn, HostBuf, ImportSharedFn, SharedBytes, StateBuf, StateWriter};

/// The version of this crate (`molt-abi`), for messages that say what to build against.
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");
pub use request::{decode_headers, encode_headers, Request, Response};
pub use tables::{Order, Table, TableError, Tables, Update};
