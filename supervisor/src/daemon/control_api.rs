//! The supervisor behind the control API (see `crate::control::ControlApi`).

use super::Supervisor;
use crate::control::{ControlApi, HandoffApi, Outcome, Status, UploadInfo};
use crate::handoff::wire::{AbsorbQuery, Absorbed, Begun, Done, HandoffInfo, Refused};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

impl ControlApi for Supervisor {
    fn readiness(&self) -> Result<(), String> {
        Supervisor::readiness(self)
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

impl HandoffApi for Supervisor {
    fn handoff_info(&self) -> HandoffInfo {
        Supervisor::handoff_info(self)
    }

    fn handoff_begin(
        &self,
        id: &str,
        to: &str,
        schema: Option<u32>,
        unready: Duration,
        drain: Duration,
        lease: Duration,
    ) -> Result<Begun, Refused> {
        Supervisor::handoff_begin(self, id, to, schema, unready, drain, lease)
    }

    fn handoff_state(&self, id: &str) -> Result<(String, u32, Bytes), Refused> {
        Supervisor::handoff_state(self, id)
    }

    fn handoff_commit(&self, id: &str) -> Result<Done, Refused> {
        Supervisor::handoff_commit(self, id)
    }

    fn handoff_abort(&self, id: &str) -> Result<Done, Refused> {
        Supervisor::handoff_abort(self, id)
    }

    fn absorb(
        &self,
        id: &str,
        from: &str,
        app: &str,
        schema: u32,
        state: Vec<u8>,
    ) -> Result<Absorbed, Refused> {
        Supervisor::absorb(self, id, from, app, schema, state)
    }

    fn absorb_query(&self, id: &str, fence: bool) -> AbsorbQuery {
        Supervisor::absorb_query(self, id, fence)
    }
}
