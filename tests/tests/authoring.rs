//! The authoring kit end to end, with the real `molt` binary and a real `cargo`:
//! - `new`: `molt new` writes a crate that tests, builds and passes `molt check` as it is, and
//!   `molt new --next-of` starts its next version with a migration test that passes.

#[path = "authoring/new.rs"]
mod new;
