//! The authoring kit end to end, with the real `molt` binary and a real `cargo`:
//! - `check`: `molt check --against` on a good pair, a pair with no shared schema, a pair
//!   whose round trip loses data (on a real snapshot), and threads that outlive `destroy`;
//! - `versions`: counter v1, v2 and v3 linked into one test binary, migrating;
//! - `new`: `molt new` writes a crate that tests, builds and passes `molt check` as it is, and
//!   `molt new --next-of` starts its next version with a migration test that passes.

#[path = "authoring/check.rs"]
mod check;
#[path = "authoring/new.rs"]
mod new;
#[path = "authoring/versions.rs"]
mod versions;
