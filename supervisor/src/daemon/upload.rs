//! `POST /releases`: an uploaded library becomes a release on the volume.

use super::refusal::{volume_step, Refused};
use super::Supervisor;
use crate::control::{Outcome, UploadInfo};
use crate::loader::Expect;
use crate::volume::PushOutcome;

impl Supervisor {
    /// Stores an uploaded library (streamed to `library`, a temporary file on the volume) as
    /// a release on the volume (not activated). The bytes must match the announced sha256,
    /// and the library must pass the ELF pre-check and, opened in a child process (it is only
    /// stored, not run), say it is what the upload claims, before anything is written.
    pub fn upload(&self, library: &std::path::Path, info: &UploadInfo) -> Outcome {
        // Names from the query are untrusted: escaped and cut in every message.
        let release = format!(
            "{} {}",
            crate::untrusted::excerpt(info.app.as_bytes(), 64),
            crate::untrusted::excerpt(info.version.as_bytes(), 64)
        );
        tracing::trace!(target: "molt::phase", step = "upload", %release, "push");
        let refuse = |step: &str, error: String| {
            let refusal = self.refuse(
                &info.version,
                Refused {
                    release: release.clone(),
                    step: step.to_owned(),
                    error,
                },
            );
            // An upload does not change what is desired: do not block a later activation.
            self.record.lock().refused = None;
            self.outcome(false, refusal.error.clone(), Some(refusal))
        };
        if info.app != self.config.app {
            return refuse(
                "app",
                format!(
                    "release {release}: this supervisor runs app {:?}",
                    self.config.app
                ),
            );
        }
        let sha = match crate::manifest::sha256_file(library) {
            Ok(sha) => sha,
            Err(e) => {
                return refuse(
                    "upload",
                    format!("release {release}: cannot read the upload: {e}"),
                )
            }
        };
        if sha != info.sha256 {
            return refuse(
                "sha256",
                format!(
                    "release {release}: upload sha256 {sha}, announced {}",
                    info.sha256
                ),
            );
        }
        if let Err(reason) = crate::manifest::check_component(&info.file) {
            return refuse(
                "manifest",
                format!("release {release}: library file name {:?}: {reason}", info.file),
            );
        }
        // The signature before anything is written or loaded (see crate::signing).
        let push = info.release_info();
        if let Err(e) = self
            .volume
            .trust()
            .check(&push.manifest(&info.file, &info.sha256))
        {
            return refuse("signature", e.to_string());
        }
        let expect = Expect {
            name: Some(info.app.clone()),
            version: Some(info.version.clone()),
            state_schema: Some(info.state_schema),
            sha256: Some(info.sha256.clone()),
        };
        // Only stored, not run: opened in a child process, so a constructor that exits,
        // crashes or hangs is a refusal, not an outage.
        if let Err(e) = self.inspector.inspect(library, self.run_dir.path(), &expect) {
            return refuse("load", format!("release {release}: {e}"));
        }
        match self.volume.push(library, &push, false) {
            Ok(outcome) => {
                let how = match outcome {
                    PushOutcome::Created(_) => "stored",
                    PushOutcome::AlreadyPresent(_) => "already present (same sha256)",
                };
                self.outcome(true, format!("release {release} {how}"), None)
            }
            Err(e) => refuse(volume_step(&e), e.to_string()),
        }
    }
}
