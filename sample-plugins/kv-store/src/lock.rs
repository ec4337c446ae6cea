//! A poison-tolerant `RwLock`.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A poison-tolerant `RwLock`: a panic in one request must not wedge every later one.
#[derive(Default)]
pub(crate) struct Lock<T>(RwLock<T>);

impl<T> Lock<T> {
    pub(crate) fn new(value: T) -> Self {
        Lock(RwLock::new(value))
    }
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    pub(crate) fn into_inner(self) -> T {
        self.0
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
