//! Calling a plugin's record hooks (ABI version 2): one record converted between table
//! schemas, for a schema change of the tables.

use super::host::sink;
use super::instance::{failure, free};
use super::{Hook, HookError, HookErrorKind, Plugin};
use molt_abi::{Bytes, OwnedBuf, STATUS_OK};
use std::sync::Arc;

/// Which of a plugin's record hooks converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `upgrade_record`: from an older table schema to the plugin's own.
    Up,
    /// `downgrade_record`: from the plugin's own table schema to an older one.
    Down,
}

impl Plugin {
    /// Converts one record of `table` through the plugin's record hook: for [`Direction::Up`],
    /// `value` is in the older table schema `schema` and the result in the plugin's own; for
    /// [`Direction::Down`], the other way. A plugin without the hook refuses every record.
    pub fn convert_record(
        self: &Arc<Self>,
        direction: Direction,
        table: &str,
        schema: u32,
        key: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, HookError> {
        let (hook, f) = match direction {
            Direction::Up => (Hook::UpgradeRecord, self.hooks.upgrade_record),
            Direction::Down => (Hook::DowngradeRecord, self.hooks.downgrade_record),
        };
        let Some(f) = f else {
            return Err(HookError {
                hook,
                kind: HookErrorKind::Error,
                message: format!("{} has no {hook} hook (built against ABI version 1)", self.id()),
            });
        };
        let mut slot = None;
        let mut out = sink(&mut slot);
        let mut err = OwnedBuf::EMPTY;
        // SAFETY: `f` comes from this plugin's descriptor and `self` keeps its library mapped;
        // every argument is borrowed for the call; `out` and `err` are our locals.
        let status = unsafe {
            f(
                Bytes::from_str(table),
                schema,
                Bytes::new(key),
                Bytes::new(value),
                &mut out,
                &mut err,
            )
        };
        if status != STATUS_OK {
            return Err(failure(self, hook, status, err));
        }
        free(self, err);
        slot.ok_or_else(|| HookError {
            hook,
            kind: HookErrorKind::Error,
            message: "reported success but wrote no value".to_owned(),
        })
    }
}
