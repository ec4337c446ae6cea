//! What the control API needs from the process it controls. The control module depends only
//! on this trait; `molt run`'s supervisor implements it (see `crate::daemon`), so the control
//! API does not import the daemon.

use super::{Outcome, Status, UploadInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The operations behind the control API's routes. Mutating calls block (they stage, load and
/// swap releases): the router runs them off the async runtime.
/// The handoff routes' operations come with it ([`super::HandoffApi`]).
pub trait ControlApi: super::HandoffApi + Send + Sync + 'static {
    /// `GET /readyz`: `Ok` when a version serves and its state is being persisted; otherwise
    /// why not (no version yet, or snapshot writes failing).
    fn readiness(&self) -> Result<(), String>;
    /// What `GET /status` shows.
    fn status(&self) -> Status;
    /// The Prometheus text of `GET /metrics`.
    fn metrics_text(&self) -> String;
    /// Whether a mutating call's bearer token is acceptable (`given` is `None` when the call
    /// carries none).
    fn token_matches(&self, given: Option<&str>) -> bool;
    /// The version that serves, if any.
    fn running_version(&self) -> Option<String>;
    /// Where `POST /releases` streams a body to (a temporary directory is made inside): a
    /// directory on the release volume, so storing the release is a rename away.
    fn upload_dir(&self) -> PathBuf;
    /// `POST /releases`: store the uploaded library, streamed to `library`, as a release (not
    /// activated). The file is removed after this returns.
    fn upload(self: Arc<Self>, library: &Path, info: &UploadInfo) -> Outcome;
    /// `POST /activate?version=V[&force=true]`: point `current` at `version` and swap to it
    /// (`force`: even a release marked bad).
    fn activate(self: Arc<Self>, version: &str, force: bool) -> Outcome;
    /// `POST /rollback`: back to the version that served before.
    fn rollback(self: Arc<Self>) -> Outcome;
}
