//! The JSON documents of the control API, shared by the server and the CLI that reads them.

use serde::{Deserialize, Serialize};

/// `GET /status`: what one supervisor runs and what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// The app this supervisor serves.
    pub app: String,
    /// The version that serves, if any.
    pub version: Option<String>,
    /// The state schema of the serving version.
    pub state_schema: Option<u32>,
    /// The supervisor's process id (unchanged across swaps).
    pub pid: u32,
    /// The instance name (its state directory's name).
    pub instance: String,
    /// When the supervisor started (RFC 3339).
    pub started_at: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Whether a version serves traffic.
    pub ready: bool,
    /// Completed swaps since start.
    pub swaps: u64,
    /// The last swap attempted.
    pub last_swap: Option<SwapRecord>,
    /// The version the volume's `current` names.
    pub desired: Option<String>,
    /// The last release refused, and why.
    pub last_refusal: Option<Refusal>,
    /// Probation of the last swapped-in version.
    pub probation: Option<Probation>,
    /// The versions this supervisor served before the running one, newest first: where its
    /// rollbacks go, one step each.
    pub generations: Vec<String>,
    /// The last snapshot written, if any.
    pub last_snapshot: Option<SnapshotRecord>,
    /// Set while snapshot writes fail (a full or read-only state directory…): the state
    /// changes since `last_snapshot` are then only in memory. Cleared by the next success.
    #[serde(default)]
    pub snapshot_failure: Option<SnapshotFailure>,
    /// Releases whose library is still mapped after the supervisor closed it (threads or
    /// thread-local destructors of theirs keep it loaded); each costs memory until they end.
    #[serde(default)]
    pub libraries_left_mapped: Vec<String>,
}

/// One swap as `/status` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SwapRecord {
    /// The version that served before.
    pub from: Option<String>,
    /// The version swapped to.
    pub to: String,
    /// Microseconds traffic was paused (drain, export, import, switch).
    pub pause_us: u64,
    /// Microseconds the swap waited, before staging and with traffic flowing, for a snapshot's
    /// export to finish (not part of the pause).
    #[serde(default)]
    pub waited_for_snapshot_us: u64,
    /// Whether the swap completed.
    pub ok: bool,
    /// Why it did not.
    pub error: Option<String>,
    /// Bytes of state migrated.
    pub state_bytes: u64,
    /// The schema the state moved in.
    pub schema: Option<u32>,
    /// When (RFC 3339).
    pub at: String,
}

/// A release the supervisor refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Refusal {
    /// The release, e.g. `counter 2.0.0`.
    pub release: String,
    /// The check that failed: `manifest`, `sha256`, `load`, `stage`, `drain`, `export`, `import`, …
    pub step: String,
    /// The whole error.
    pub error: String,
    /// What still serves, e.g. `counter 1.0.0`.
    pub still_running: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// The probation of a freshly swapped-in version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Probation {
    /// The version on probation.
    pub version: String,
    /// `running`, `passed`, `failed` (rolled back) or `failed_stuck` (could not roll back).
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
}

/// Snapshot writes that keep failing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotFailure {
    /// The last attempt's error.
    pub error: String,
    /// When the first failure in this row happened (RFC 3339).
    pub since: String,
    /// When the last one happened (RFC 3339).
    pub at: String,
    /// Failed attempts in a row.
    pub consecutive: u64,
}

/// The last snapshot written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotRecord {
    /// The file.
    pub path: String,
    /// Payload bytes.
    pub bytes: u64,
    /// When (RFC 3339).
    pub at: String,
    /// Microseconds it waited for a swap in progress before exporting.
    #[serde(default)]
    pub waited_for_swap_us: u64,
    /// Microseconds the app's export took (traffic flowed meanwhile).
    #[serde(default)]
    pub export_us: u64,
    /// Microseconds writing the file took.
    #[serde(default)]
    pub write_us: u64,
}

/// The answer to a mutating control call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    /// Whether the call did what it asked.
    pub ok: bool,
    /// A readable summary.
    pub message: String,
    /// The version that serves after the call.
    pub version: Option<String>,
    /// The swap it caused, if any.
    pub swap: Option<SwapRecord>,
    /// The refusal, if refused.
    pub refusal: Option<Refusal>,
}

/// The current time in RFC 3339, seconds precision.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
