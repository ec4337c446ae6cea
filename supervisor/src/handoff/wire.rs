//! What the handoff control calls carry, as JSON (and one byte body, the state).
//!
//! | call | side | answer |
//! |---|---|---|
//! | `GET /handoff` | both | [`HandoffInfo`] |
//! | `POST /handoff/begin?id&to&schema&unready_ms&drain_ms` | departing | [`Begun`] |
//! | `GET /handoff/state?id` | departing | the exported state (bytes), [`StateHeaders`] |
//! | `POST /handoff/commit?id` | departing | [`Done`] |
//! | `POST /handoff/abort?id` | departing | [`Done`] |
//! | `POST /absorb?id&from&app&schema` + state | receiving | [`Absorbed`] |
//! | `POST /absorb/query?id&fence` | receiving | [`AbsorbQuery`] |
//!
//! Every call needs the bearer token when one is configured (`GET /handoff/state` too: it is
//! the whole state). A refusal is a `409` with a [`Refused`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// The steps of a handoff, in order; a failure names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HandoffStep {
    /// Checks before anything stops: both reachable, same app, a merge hook, a shared schema,
    /// the grace period.
    Check,
    /// Readiness false, then the wait for the Service to stop routing.
    Unready,
    /// In-flight requests finish; later ones are answered 503.
    Drain,
    /// The departing state is exported (and kept by the departing supervisor).
    Export,
    /// The state travels from the departing supervisor to the receiver.
    Transfer,
    /// The receiver merges it through the merge hook and records the handoff id.
    Merge,
    /// The departing supervisor records the handoff in a snapshot.
    Commit,
}

impl fmt::Display for HandoffStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandoffStep::Check => "check",
            HandoffStep::Unready => "unready",
            HandoffStep::Drain => "drain",
            HandoffStep::Export => "export",
            HandoffStep::Transfer => "transfer",
            HandoffStep::Merge => "merge",
            HandoffStep::Commit => "commit",
        })
    }
}

/// A refused handoff call: the step and why (the message says what still runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{step} failed: {message}")]
pub struct Refused {
    /// The step refused.
    pub step: HandoffStep,
    /// Why, and what still runs.
    pub message: String,
}

impl Refused {
    /// A refusal at `step`.
    pub fn new(step: HandoffStep, message: impl Into<String>) -> Refused {
        Refused {
            step,
            message: message.into(),
        }
    }
}

/// Where a supervisor is in a handoff of its own state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Serving, no handoff under way.
    Serving,
    /// Readiness is false for handoff `id`; traffic is still served.
    Unready {
        /// The handoff.
        id: String,
        /// The receiver.
        to: String,
    },
    /// Traffic is sealed (503) and the state exported for handoff `id`, awaiting commit or
    /// abort.
    Sealed {
        /// The handoff.
        id: String,
        /// The receiver.
        to: String,
    },
    /// The state went to `to`; this supervisor serves nothing until it restarts.
    HandedOff {
        /// The handoff.
        id: String,
        /// The receiver.
        to: String,
    },
}

/// `GET /handoff`: what a handoff needs to know about a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffInfo {
    /// A random id this supervisor process drew at start: how a supervisor recognises itself
    /// among the addresses of a Service.
    pub boot_id: String,
    /// The app.
    pub app: String,
    /// The serving version, if any.
    pub version: Option<String>,
    /// Its state schema.
    pub state_schema: Option<u32>,
    /// Schemas it can export.
    pub exports: Vec<u32>,
    /// Schemas its merge hook takes (empty: no merge hook).
    pub merges: Vec<u32>,
    /// Where it is in a handoff of its own state.
    pub phase: Phase,
    /// The size of its last snapshot's state (what the grace-period check estimates from).
    pub last_snapshot_bytes: Option<u64>,
    /// How many handoffs it has absorbed (and remembers).
    pub absorbed: usize,
}

/// `POST /handoff/begin`: the departing supervisor is unready, sealed, and holds its export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begun {
    /// The handoff.
    pub id: String,
    /// The app.
    pub app: String,
    /// The version that exported.
    pub version: String,
    /// The schema of the exported state.
    pub schema: u32,
    /// Its size.
    pub state_bytes: u64,
    /// The wait after readiness went false (µs).
    pub unready_us: u64,
    /// Draining in-flight requests (µs).
    pub drain_us: u64,
    /// The export (µs).
    pub export_us: u64,
    /// Writing the snapshot that records the handoff as pending, after the export (µs).
    #[serde(default)]
    pub record_us: u64,
}

/// The headers `GET /handoff/state` answers with.
pub struct StateHeaders;

impl StateHeaders {
    /// The app.
    pub const APP: &'static str = "x-molt-app";
    /// The schema of the bytes.
    pub const SCHEMA: &'static str = "x-molt-schema";
    /// The handoff id.
    pub const ID: &'static str = "x-molt-handoff";
}

/// `POST /handoff/commit` or `/handoff/abort`: done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The handoff.
    pub id: String,
    /// What happened, in words.
    pub message: String,
}

/// `POST /absorb`: the receiver merged the state (or had already).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absorbed {
    /// The handoff.
    pub id: String,
    /// `true` when this id had been absorbed before: nothing was applied this time.
    pub already: bool,
    /// The version that merged.
    pub version: String,
    /// The schema of the merged state.
    pub schema: u32,
    /// Its size.
    pub peer_bytes: u64,
    /// The receiver's pause (µs): drain, export, import, merge, switch.
    pub pause_us: u64,
    /// The merge hook alone (µs).
    pub merge_us: u64,
    /// The snapshot that records the merged state and the id, when it was written.
    pub snapshot: Option<String>,
    /// Why no snapshot was written, when none was (the merge stands; the next snapshot, at
    /// the latest the one at shutdown, records it).
    pub snapshot_error: Option<String>,
}

/// `POST /absorb/query`: whether the receiver absorbed a handoff id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsorbQuery {
    /// The handoff.
    pub id: String,
    /// Whether it was absorbed.
    pub absorbed: bool,
    /// Whether it is fenced: refused from now on (asked with `fence` and not absorbed).
    pub fenced: bool,
}
