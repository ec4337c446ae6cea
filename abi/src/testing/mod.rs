//! Helpers to test an app and its upgrade hooks without a supervisor.
//!
//! ```ignore
//! use molt_abi::testing::{call, merge, migrate};
//! let v1 = counter_v1::Counter::create().unwrap();
//! call(&v1, "POST", "/incr", b"");
//! let v2: counter_v2::Counter = migrate(&v1).unwrap();      // the upgrade a swap performs
//! assert_eq!(call(&v2, "GET", "/count", b"").text(), "1");
//! let back: counter_v1::Counter = migrate(&v2).unwrap();    // the rollback
//! let both: counter_v2::Counter = merge(&v2, &v1).unwrap(); // a handoff: v1's total added
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

/// Absorbs the state of `peer` into a copy of `into` exactly as a handoff would: `into`'s
/// state is exported and imported again (the copy the supervisor merges into), the schema is
/// chosen by [`choose_schema`] between what `Peer` exports and what `Into` merges, `Peer`
/// exports in it and the copy's [`App::merge_state`] absorbs it. `into` itself is untouched,
/// as the running instance is when a merge fails.
pub fn merge<Into: App, Peer: App>(into: &Into, peer: &Peer) -> Result<Into, AppError> {
    let schema = choose_schema(Peer::SCHEMA, Peer::EXPORTS, Into::SCHEMA, Into::MERGES).ok_or_else(|| {
        AppError(format!(
            "no schema to merge in: {} v{} exports {:?}, {} v{} merges {:?}",
            Peer::NAME,
            Peer::SCHEMA,
            Peer::EXPORTS,
            Into::NAME,
            Into::SCHEMA,
            Into::MERGES
        ))
    })?;
    let mut copy = round_trip(into)?;
    copy.merge_state(schema, &peer.export_state(schema)?)?;
    Ok(copy)
}
