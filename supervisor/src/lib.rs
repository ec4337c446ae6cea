//! # molt-supervisor: load, serve and hot-swap molt apps
//!
//! The supervisor is the long-lived process of a molt pod. It loads an app (a `cdylib` built
//! against [`molt_abi`]), serves its traffic on sockets it owns, and swaps in new versions in
//! place, migrating the in-memory state through the app's upgrade hooks.
//!
//! # Layout
//! - [`loader`]: the only `unsafe` module (the compiler enforces it: `unsafe_code` is denied
//!   everywhere else): copies a library to a private run directory, hashing the copy,
//!   pre-checks its ELF headers, `dlopen`s it, checks its descriptor, and wraps its function
//!   pointers in a safe API.
//! - [`inspect`]: opens libraries that are only inspected in a child process, with a deadline.
//! - [`untrusted`]: the one way files from the volume and the state directory are read.
//! - [`engine`]: the swap protocol: stage, pause, drain, export, import, switch, resume;
//!   rollback to a kept generation; the measured pause.
//! - [`manifest`]: `release.toml`, checksums.
//! - [`volume`]: the release volume: releases, the `current` pointer, atomic pushes.
//! - [`signing`]: ed25519 keys, signed manifests, the trust check before a library is opened.
//! - [`snapshot`]: state snapshots that outlive the process.
//! - [`tables`]: app state the supervisor owns (ABI version 2), shared by every version.
//! - [`front`]: the HTTP/1.1 front that serves app traffic.
//! - [`inline`]: the bound on app calls made on runtime workers, and its watchdog.
//! - [`listener`]: accepting connections under a cap, backing off on accept errors.
//! - [`control`]: the control API (status, metrics, upload, activate, rollback).
//! - [`metrics`]: Prometheus metrics.
//! - [`watcher`]: notices when `current` changes on the volume (inotify, or polling).
//! - [`handoff`]: moving a departing supervisor's state into a live peer, exactly once.
//! - [`daemon`]: `molt run`: everything above wired together.
//! - [`cli`]: the `molt` command line.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod body;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod front;
pub mod handoff;
pub mod inline;
pub mod inspect;
pub mod listener;
#[allow(unsafe_code)]
pub mod loader;
pub mod manifest;
pub mod metrics;
pub mod signing;
pub mod snapshot;
pub mod tables;
pub mod untrusted;
pub mod volume;
pub mod watcher;
