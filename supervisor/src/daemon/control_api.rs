//! The supervisor behind the control API (see `crate::control::ControlApi`).

use super::Supervisor;
use crate::control::{ControlApi, Outcome, Status, UploadInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl ControlApi for Supervisor {
    fn is_ready(&self) -> bool {
        Supervisor::is_ready(self)
    }

    fn status(&self) -> Status {
        Supervisor::status(self)
    }

    fn metrics_text(&self) -> String {
        let left = crate::loader::left_mapped().len();
        self.metrics().set_libraries_left_mapped(left);
        self.metrics().encode()
    }

    fn token_matches(&self, given: Option<&str>) -> bool {
        Supervisor::token_matches(self, given)
    }

    fn running_version(&self) -> Option<String> {
        Supervisor::running_version(self)
    }

    fn upload_dir(&self) -> PathBuf {
        self.volume.releases_dir(&self.config.app)
    }

    fn upload(self: Arc<Self>, library: &Path, info: &UploadInfo) -> Outcome {
        Supervisor::upload(&self, library, info)
    }

    fn activate(self: Arc<Self>, version: &str, force: bool) -> Outcome {
        Supervisor::activate(&self, version, force)
    }

    fn rollback(self: Arc<Self>) -> Outcome {
        Supervisor::rollback(&self)
    }
}
