//! A table schema change, in the order a swap runs it (see `crate::engine`):
//!
//! 1. [`TableStore::finish_pending`]: finish the conversion an earlier change left pending, so
//!    every record is in the running schema;
//! 2. [`TableStore::validate`], traffic flowing: start tracking written keys, then run the
//!    hook on every record and discard the result (memory stays at one copy of the state); an
//!    error refuses the swap, naming the key;
//! 3. [`TableStore::validate_written`] a few times, still flowing: the keys written meanwhile,
//!    until few are left;
//! 4. in the pause: the last written keys, then [`TableStore::flip`]: the conversion becomes
//!    pending and the new version reads every record through it;
//! 5. [`TableStore::finish_pending`] on a background thread converts what nobody read.

use super::convert::{Conversion, RecordFailure};
use super::shard::Record;
use super::watch::{HookWatch, Overdue};
use super::TableStore;
use std::sync::Arc;

impl TableStore {
    /// Starts tracking written keys (for [`TableStore::validate_written`]), in every table.
    fn track(&self, on: bool) {
        let mut tracking = self.tracking.write();
        *tracking = on;
        for table in self.tables() {
            table.track(on);
        }
    }

    /// Runs `conversion` on every record in its `from` schema and discards the results; tracks
    /// the keys written from the start. On failure tracking stops and nothing changed.
    pub fn validate(&self, conversion: &Conversion) -> Result<u64, RecordFailure> {
        self.track(true);
        let mut checked = 0;
        let mut outcome = Ok(());
        for table in self.tables() {
            table.batches(|batch| {
                for (key, record) in &batch {
                    match check(conversion, table.name(), key, record) {
                        Ok(true) => checked += 1,
                        Ok(false) => {}
                        Err(e) => {
                            outcome = Err(e);
                            return true;
                        }
                    }
                }
                false
            });
            if outcome.is_err() {
                break;
            }
        }
        if let Err(e) = outcome {
            self.track(false);
            return Err(e);
        }
        Ok(checked)
    }

    /// Validates the records written since the last call (or since [`TableStore::validate`]);
    /// returns how many keys were written. On failure tracking stops.
    pub fn validate_written(&self, conversion: &Conversion) -> Result<usize, RecordFailure> {
        let mut written = 0;
        for table in self.tables() {
            let keys = table.take_dirty();
            written += keys.len();
            for key in keys {
                if let Some(record) = table.record(&key) {
                    if let Err(e) = check(conversion, table.name(), &key, &record) {
                        self.track(false);
                        return Err(e);
                    }
                }
            }
        }
        Ok(written)
    }

    /// Stops tracking: the change was refused, or is being flipped.
    pub fn stop_tracking(&self) {
        self.track(false);
    }

    /// Makes `conversion` pending and its `to` schema the serving one: from now on a record
    /// in `from` is converted the first time it is read. Called in the pause, after the last
    /// [`TableStore::validate_written`].
    pub fn flip(&self, conversion: Arc<Conversion>) {
        self.track(false);
        self.set_schema(conversion.to);
        *self.pending.write() = Some(conversion);
    }

    /// Converts every record still in the pending conversion's `from` schema, a batch at a
    /// time (each record under its shard's write lock only while it is replaced), then clears
    /// the pending conversion. Returns how many records it converted. A record that fails
    /// (only possible when a hook is not the pure function the ABI asks for) stays as it was,
    /// the conversion stays pending, and the failure is returned.
    ///
    /// With a `watch`, every hook call is followed by it (see [`HookWatch`]).
    pub fn finish_pending(&self, watch: Option<&Arc<HookWatch>>) -> Result<u64, RecordFailure> {
        let Some(pending) = self.pending() else {
            return Ok(0);
        };
        let conversion = match watch {
            Some(watch) => pending.watched(watch),
            None => (*pending).clone(),
        };
        let mut converted = 0;
        let mut outcome = Ok(());
        for table in self.tables() {
            table.batches(|batch| {
                for (key, record) in &batch {
                    if record.schema != conversion.from {
                        continue;
                    }
                    match conversion.run(table.name(), key, &record.value) {
                        Ok(value) => {
                            let new = Record {
                                schema: conversion.to,
                                value: value.into(),
                            };
                            table.replace_if(key, record, new);
                            converted += 1;
                        }
                        Err(e) => {
                            outcome = Err(e);
                            return true;
                        }
                    }
                }
                false
            });
            outcome.clone()?;
        }
        let mut slot = self.pending.write();
        if slot.as_ref().is_some_and(|p| Arc::ptr_eq(p, &pending)) {
            *slot = None;
        }
        Ok(converted)
    }

    /// Remembers a pass given up on its hook deadline, until its overrunning call returns.
    pub fn abandoned(&self, watch: Arc<HookWatch>, overdue: Overdue) {
        let mut abandoned = self.abandoned.lock();
        abandoned.retain(|(watch, _)| Arc::strong_count(watch) > 1);
        abandoned.push((watch, overdue));
    }

    /// A pass given up earlier that is still in its overrunning hook call (the pass's worker
    /// holds the other references to its watch until the pass ends), if any: another pass
    /// waits for it to end, so that the two never run at once.
    pub fn abandoned_running(&self) -> Option<Overdue> {
        let mut abandoned = self.abandoned.lock();
        abandoned.retain(|(watch, _)| Arc::strong_count(watch) > 1);
        abandoned.first().map(|(_, overdue)| overdue.clone())
    }
}

/// Converts `record` and discards the result; `Ok(false)` when it is not in `from`. A record
/// in neither schema of the conversion fails too.
fn check(conversion: &Conversion, table: &str, key: &[u8], record: &Record) -> Result<bool, RecordFailure> {
    if record.schema == conversion.to {
        return Ok(false);
    }
    if record.schema != conversion.from {
        return Err(RecordFailure {
            table: table.to_owned(),
            key: super::key_text(key),
            from: record.schema,
            to: conversion.to,
            by: conversion.by.clone(),
            message: format!(
                "the record is in table schema {}, not {}",
                record.schema, conversion.from
            ),
        });
    }
    conversion.run(table, key, &record.value).map(|_| true)
}
