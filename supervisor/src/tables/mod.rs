//! Tables: app state the supervisor owns (ABI version 2; see docs/DESIGN.md, "Tables").
//!
//! A [`TableStore`] holds an app's named [`Table`]s: maps from byte keys to byte records in
//! the supervisor's memory, which outlive every version of the app's code, as Erlang's ETS
//! tables outlive module reloads. A version reaches them through the host functions the
//! loader hands its instances (`crate::loader`); a swap that keeps the record encoding moves
//! nothing, and one that changes it converts records one at a time:
//!
//! - [`shard`]: a table is [`SHARDS`] shards, each an ordered map behind its own lock, so a
//!   hot key never serialises the rest. Every record carries the table schema it is in.
//! - [`key`]: a record's key, kept inline in the map's nodes when short.
//! - [`table`]: get (borrowed, in place), put, delete, atomic update, scan (unordered or
//!   ordered, a batch at a time), count; a record in an older schema is converted the first
//!   time it is read, in place.
//! - [`convert`]: the record hook and the conversion a schema change leaves pending.
//! - [`migrate`]: validating a schema change while traffic flows, tracking the keys written
//!   meanwhile, and the background pass that converts what was not read.
//! - [`watch`]: following a pass's record hook calls, to hold each to the hook deadline.
//! - [`snapshot`]: the tables section of a snapshot file, written shard by shard while traffic
//!   flows.

pub mod convert;
pub mod key;
pub mod migrate;
pub mod shard;
pub mod snapshot;
pub mod table;
pub mod watch;

pub use convert::{key_text, Conversion, RecordFailure, RecordHook};
pub use key::Key;
pub use shard::{Record, SHARDS};
pub use table::{Change, Table};
pub use watch::{HookWatch, Overdue};

use parking_lot::RwLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use table::Pending;

/// An app's tables. Shared (`Arc`) by the engine, every instance's host context, snapshots.
pub struct TableStore {
    /// Tables are never dropped while the store lives: a plugin holds raw handles to them.
    tables: RwLock<Vec<Arc<Table>>>,
    pending: Arc<Pending>,
    /// Whether written keys are tracked (a schema change is being validated).
    tracking: RwLock<bool>,
    /// The table schema of the version serving (0 before any version kept tables).
    schema: AtomicU32,
    /// Passes given up on the hook deadline, with the call they overran.
    abandoned: parking_lot::Mutex<Vec<(Arc<HookWatch>, Overdue)>>,
}

impl Default for TableStore {
    fn default() -> Self {
        TableStore::new()
    }
}

impl TableStore {
    /// An empty store.
    pub fn new() -> TableStore {
        TableStore {
            tables: RwLock::new(Vec::new()),
            pending: Arc::new(RwLock::new(None)),
            tracking: RwLock::new(false),
            schema: AtomicU32::new(0),
            abandoned: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// The table `name`, created empty when it does not exist.
    pub fn open(&self, name: &str) -> Arc<Table> {
        if let Some(table) = self.table(name) {
            return table;
        }
        let tracking = self.tracking.read();
        let mut tables = self.tables.write();
        if let Some(table) = tables.iter().find(|t| t.name() == name) {
            return Arc::clone(table);
        }
        let table = Arc::new(Table::new(name, Arc::clone(&self.pending), *tracking));
        tables.push(Arc::clone(&table));
        table
    }

    /// The table `name`, if it exists.
    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables.read().iter().find(|t| t.name() == name).cloned()
    }

    /// Every table, in the order they were created.
    pub fn tables(&self) -> Vec<Arc<Table>> {
        self.tables.read().clone()
    }

    /// Records in all tables.
    pub fn records(&self) -> u64 {
        self.tables().iter().map(|t| t.count()).sum()
    }

    /// Key and value bytes in all tables.
    pub fn bytes(&self) -> u64 {
        self.tables().iter().map(|t| t.bytes()).sum()
    }

    /// The table schema of the version serving.
    pub fn schema(&self) -> u32 {
        self.schema.load(Ordering::SeqCst)
    }

    /// Records that the version serving keeps records in `schema`.
    pub fn set_schema(&self, schema: u32) {
        self.schema.store(schema, Ordering::SeqCst);
    }

    /// The conversion a schema change left pending, if its background pass has not finished.
    pub fn pending(&self) -> Option<Arc<Conversion>> {
        self.pending.read().clone()
    }
}

impl std::fmt::Debug for TableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableStore")
            .field("schema", &self.schema())
            .field("tables", &self.tables())
            .field("pending", &self.pending())
            .finish()
    }
}

#[cfg(test)]
mod tests;
