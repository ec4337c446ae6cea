//! Record conversions between table schemas: the hook that converts one record, and the
//! conversion a schema change leaves pending until every record is converted.

use std::fmt;
use std::sync::Arc;

/// Converts one record of a table from one table schema to another: a plugin's upgrade or
/// downgrade hook (see `crate::engine`), or any pure function in tests.
pub trait RecordHook: Send + Sync {
    /// The converted value of `key` in `table`, or why it cannot be converted.
    fn convert(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Vec<u8>, String>;
}

impl<F> RecordHook for F
where
    F: Fn(&str, &[u8], &[u8]) -> Result<Vec<u8>, String> + Send + Sync,
{
    fn convert(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Vec<u8>, String> {
        self(table, key, value)
    }
}

/// A conversion of records from schema `from` to schema `to` through `hook`.
#[derive(Clone)]
pub struct Conversion {
    /// The schema records are converted from.
    pub from: u32,
    /// The schema they are converted to.
    pub to: u32,
    /// How one record is converted.
    pub hook: Arc<dyn RecordHook>,
    /// Who converts, for messages (e.g. `kv 4.0.0 (libkv_v4.so) upgrade_record`).
    pub by: String,
}

impl fmt::Debug for Conversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conversion")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("by", &self.by)
            .finish_non_exhaustive()
    }
}

/// A record a conversion failed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {key} of table {table} fails to convert from table schema {from} to {to} ({by}): {message}")]
pub struct RecordFailure {
    /// The table.
    pub table: String,
    /// The key, as text when it is UTF-8, else as hex.
    pub key: String,
    /// The schema the record is in.
    pub from: u32,
    /// The schema it was to be converted to.
    pub to: u32,
    /// Who converted.
    pub by: String,
    /// What the hook said.
    pub message: String,
}

/// How a key is named in messages: as text when it is printable UTF-8, else `0x…`.
pub fn key_text(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => format!("0x{}", hex::encode(key)),
    }
}

impl Conversion {
    /// Converts one record, naming it on failure.
    pub(crate) fn run(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Vec<u8>, RecordFailure> {
        self.hook
            .convert(table, key, value)
            .map_err(|message| RecordFailure {
                table: table.to_owned(),
                key: key_text(key),
                from: self.from,
                to: self.to,
                by: self.by.clone(),
                message,
            })
    }
}
