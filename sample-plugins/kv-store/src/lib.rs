//! The sharded in-memory store both versions of the sample kv app are built on.
//!
//! kv v1 keeps a plain value per key, kv v2 a value and a write counter: the store is generic
//! over the entry type ([`Entry`]), and each app keeps only its routes, its schema encoding
//! and its `App` impl. This crate exports no app entry symbol; only the app crates do.
//!
//! - [`blob`]: a key or a value, owned or pointing into the state buffer a swap handed over
//! - [`hasher`]: the seeded word hasher the shards' maps use
//! - [`shard`]: [`SHARDS`], the FNV-1a [`shard_of`] hash (with a finaliser), one [`Shard`] and the [`Entry`] trait
//! - [`store`]: the [`Store`] of poison-tolerant locked shards, with the one-pass export and
//!   import skeletons the schemas share
//! - [`preload`]: `POST /preload` ([`PRELOAD_LIMIT`], [`preload_value`], parallel fill)
//! - [`reader`]: the little-endian [`Reader`] import uses
//! - `route`: [`Store::handle_key`], the `/kv/{key}` routes every version answers alike
//! - [`tabled`]: the same app on host-owned tables (kv v3 and v4, molt ABI version 2)

pub mod blob;
pub mod hasher;
mod lock;
pub mod preload;
pub mod reader;
mod route;
pub mod shard;
pub mod store;
pub mod tabled;

pub use blob::Blob;
pub use preload::{preload_value, PRELOAD_LIMIT};
pub use reader::Reader;
pub use shard::{shard_of, Entry, Shard, SHARDS};
pub use store::Store;

use molt_abi::Response;

/// What `GET /stats` reports, common to every version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of keys.
    pub keys: usize,
    /// Sum of the key lengths.
    pub key_bytes: usize,
    /// Sum of the value lengths.
    pub value_bytes: usize,
}

impl Stats {
    /// The stats as a JSON object with a trailing newline.
    pub fn json(&self) -> String {
        self.json_with("")
    }

    /// The stats as a JSON object, `extra` (such as `,"writes":4`) appended to its fields.
    pub fn json_with(&self, extra: &str) -> String {
        format!(
            "{{\"keys\":{},\"key_bytes\":{},\"value_bytes\":{},\"bytes\":{}{extra}}}\n",
            self.keys,
            self.key_bytes,
            self.value_bytes,
            self.key_bytes + self.value_bytes
        )
    }
}

/// A response with a JSON body.
pub fn json(status: u16, body: String) -> Response {
    Response::new(status, body).with_header("content-type", "application/json")
}
