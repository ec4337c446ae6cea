//! Helpers to test an app and its upgrade hooks without a supervisor.
//!
//! ```ignore
//! use molt_abi::testing::{call, migrate};
//! let v1 = counter_v1::Counter::create().unwrap();
//! call(&v1, "POST", "/incr", b"");
//! let v2: counter_v2::Counter = migrate(&v1).unwrap();      // the upgrade a swap performs
//! assert_eq!(call(&v2, "GET", "/count", b"").text(), "1");
//! let back: counter_v1::Counter = migrate(&v2).unwrap();    // the rollback
//! ```
//!
//! Apps that keep state in tables (ABI version 2) are tested on a [`TestTables`].

mod tables;

pub use tables::TestTables;

use crate::app::{choose_schema, App, AppError};
use crate::request::{Request, Response};

/// Calls `app.handle` with a request built from a method, a target (`/path?query`) and a body.
pub fn call<A: App>(app: &A, method: &str, target: &str, body: &[u8]) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    app.handle(&Request::new(method, path, query, &[], body))
}

/// Moves the state of `from` into a new `To` exactly as a swap would: the schema is chosen by
/// [`choose_schema`], `From` exports in it, `To` imports it.
pub fn migrate<From: App, To: App>(from: &From) -> Result<To, AppError> {
    let schema = choose_schema(From::SCHEMA, From::EXPORTS, To::SCHEMA, To::IMPORTS).ok_or_else(|| {
        AppError(format!(
            "no shared schema: {} v{} exports {:?}, {} v{} imports {:?}",
            From::NAME,
            From::SCHEMA,
            From::EXPORTS,
            To::NAME,
            To::SCHEMA,
            To::IMPORTS
        ))
    })?;
    let bytes = from.export_state(schema)?;
    To::import_state(schema, &bytes)
}

/// Exports in the app's own schema and imports the bytes again: the path a snapshot takes
/// across a pod restart.
pub fn round_trip<A: App>(app: &A) -> Result<A, AppError> {
    A::import_state(A::SCHEMA, &app.export_state(A::SCHEMA)?)
}
