//! Support for molt's integration and end-to-end tests, and for its benchmark.
//!
//! - [`artifacts`]: builds the sample plugins, the faulty fixture plugins and the `molt` binary
//!   from source, once per process, into their own target directory.
//! - [`dir`]: a fresh directory per test, removed afterwards.
//! - [`drive`]: loading plugins and calling an [`molt_supervisor::engine::Engine`] in-process.
//! - [`process`]: a real `molt run` process on ephemeral ports, and the `molt` CLI.

pub mod artifacts;
pub mod dir;
pub mod docker;
pub mod drive;
pub mod process;
