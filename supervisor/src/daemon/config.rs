//! What `molt run` is told, and what it tells back (the bound addresses).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The shortest bearer token `molt run` accepts, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// Everything `molt run` is told.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The release volume.
    pub volume: PathBuf,
    /// The app to serve.
    pub app: String,
    /// App traffic address (port 0 picks a free port; see `addr_file`).
    pub listen: SocketAddr,
    /// Control API address.
    pub control: SocketAddr,
    /// Where snapshots go (default `<volume>/<app>/state/<hostname>`).
    pub state_dir: Option<PathBuf>,
    /// How often to snapshot the state (zero: only on shutdown).
    pub snapshot_interval: Duration,
    /// Also look at `current` this often (for network filesystems, where inotify sees nothing).
    pub poll_interval: Option<Duration>,
    /// Watch the volume at all (off: only the control API changes the version).
    pub watch: bool,
    /// Bearer token for mutating control calls.
    pub token: Option<String>,
    /// How long a swap waits for in-flight requests.
    pub drain_timeout: Duration,
    /// How long export and import hooks may take.
    pub hook_timeout: Duration,
    /// How long a swapped-in version is watched before it is committed (zero: no probation).
    pub probation: Duration,
    /// Start fresh when the latest snapshot is corrupt (it is kept aside either way).
    pub discard_corrupt_state: bool,
    /// Write the bound addresses here as JSON once listening.
    pub addr_file: Option<PathBuf>,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Where private copies of libraries are loaded from (default: the system temp dir). Must
    /// allow executable mappings: not a `noexec` mount.
    pub run_dir: Option<PathBuf>,
    /// How long opening an uploaded library in the inspecting child process may take.
    pub inspect_timeout: Duration,
    /// How long a request's body may take to arrive on the traffic listener.
    pub body_timeout: Duration,
    /// The keys releases must be signed by (empty: signatures not required).
    pub trusted_keys: crate::signing::TrustedKeys,
    /// On SIGTERM, hand the state to a live peer behind this target first
    /// (`dns+http://NAME:PORT` or `http://HOST:PORT`; docs/DESIGN.md, "Handoff").
    pub handoff_on_stop: Option<String>,
    /// How a handoff on stop runs (its grace period is the pod's).
    pub handoff: crate::handoff::HandoffOptions,
}

impl RunConfig {
    /// A configuration with molt's defaults for `app` on `volume`.
    pub fn new(volume: impl Into<PathBuf>, app: impl Into<String>) -> Self {
        RunConfig {
            volume: volume.into(),
            app: app.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            control: SocketAddr::from(([127, 0, 0, 1], 7070)),
            state_dir: None,
            snapshot_interval: Duration::from_secs(10),
            poll_interval: None,
            watch: true,
            token: None,
            drain_timeout: Duration::from_secs(5),
            hook_timeout: Duration::from_secs(30),
            probation: Duration::ZERO,
            discard_corrupt_state: false,
            addr_file: None,
            shutdown_grace: Duration::from_secs(5),
            run_dir: None,
            inspect_timeout: crate::inspect::DEFAULT_DEADLINE,
            body_timeout: Duration::from_secs(30),
            trusted_keys: crate::signing::TrustedKeys::default(),
            handoff_on_stop: None,
            handoff: crate::handoff::HandoffOptions::default(),
        }
    }
}

/// The addresses a running supervisor bound, as written to `--addr-file`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BoundAddrs {
    /// App traffic.
    pub listen: SocketAddr,
    /// Control API.
    pub control: SocketAddr,
    /// The supervisor's process id.
    pub pid: u32,
}
