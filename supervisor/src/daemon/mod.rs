//! `molt run`: the long-lived supervisor process.
//!
//! It serves the app on `--listen`, the control API on `--control`, watches the volume's
//! `current` pointer, swaps when it changes, writes state snapshots periodically and on
//! SIGTERM/SIGINT (after draining), and on start restores the latest snapshot through the
//! running release's import hook.
//!
//! One concept a file: `config` (what `molt run` is told), `error`, `run` (sockets, tasks and
//! shutdown), `supervisor` (the shared state and start-up), `reconcile` (the one path every
//! version change takes), `refused` (the one refusal type) and `refusal` (recording one),
//! `boot` (boot that always serves something), `activation` (activate, rollback),
//! `presence` (this supervisor's report on the volume), `probation`,
//! `report` (`/status`, snapshots), `upload`, `traffic` (app requests), `control_api`
//! (the supervisor behind [`crate::control::ControlApi`]), and the two sides of a handoff
//! (docs/DESIGN.md, "Handoff"): `handoff` (departing: unready, seal, export, commit or abort)
//! and `absorb` (receiving: merge once per handoff id, fence), `lease` (a sealed handoff whose coordinator is gone) and `on_stop` (`--handoff-on-stop`).

mod absorb;
mod activation;
mod boot;
mod config;
mod control_api;
mod error;
mod handoff;
mod lease;
mod leftovers;
mod on_stop;
mod presence;
mod probation;
mod reconcile;
mod refusal;
mod refused;
mod report;
mod run;
mod supervisor;
mod tick;
mod traffic;
mod upload;

pub use boot::BOOT_MARKER;
pub use config::{BoundAddrs, RunConfig, MIN_TOKEN_LEN};
pub use error::DaemonError;
pub use presence::{HEARTBEAT, STALE_AFTER};
pub use refused::Refused;
pub use run::{run, shutdown_signal};
pub use supervisor::Supervisor;
