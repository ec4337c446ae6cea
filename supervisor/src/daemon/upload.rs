//! `POST /releases`: an uploaded library becomes a release on the volume.

use super::refusal::Refusing;
use super::refused::Refused;
use super::Supervisor;
use crate::control::{Outcome, UploadInfo};
use crate::loader::Expect;
use crate::volume::PushOutcome;

impl Supervisor {
    /// Stores an uploaded library as a release on the volume (not activated). The bytes must
    /// match the announced sha256, and the library must load and say it is what the upload
    /// claims, before anything is written.
    pub fn upload(&self, bytes: &[u8], info: &UploadInfo) -> Outcome {
        let release = format!("{} {}", info.app, info.version);
        let refuse = |refused: Refused| {
            // An upload does not change what is desired: it blocks no later activation and
            // marks nothing bad.
            let refusal = self.refuse_as(Refusing::Request, &info.version, refused);
            self.outcome(false, refusal.error.clone(), Some(refusal))
        };
        if info.app != self.config.app {
            return refuse(Refused::WrongApp {
                release,
                app: self.config.app.clone(),
            });
        }
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        if sha != info.sha256 {
            return refuse(Refused::UploadDigest {
                release,
                got: sha,
                announced: info.sha256.clone(),
            });
        }
        if let Err(reason) = crate::manifest::check_component(&info.file) {
            return refuse(Refused::UploadName {
                release,
                file: info.file.clone(),
                reason,
            });
        }
        // The signature before anything is written or loaded (see crate::signing).
        let push = info.release_info();
        if let Err(e) = self
            .volume
            .trust()
            .check(&push.manifest(&info.file, &info.sha256))
        {
            return refuse(Refused::Volume(crate::volume::VolumeError::Signature(e)));
        }
        let scratch = match tempfile::tempdir_in(self.run_dir.path()) {
            Ok(dir) => dir,
            Err(source) => {
                return refuse(Refused::UploadIo {
                    release,
                    what: "cannot create a scratch directory".to_owned(),
                    source,
                })
            }
        };
        let path = scratch.path().join(&info.file);
        if let Err(source) = std::fs::write(&path, bytes) {
            return refuse(Refused::UploadIo {
                release,
                what: format!("cannot write {}", path.display()),
                source,
            });
        }
        let expect = Expect {
            name: Some(info.app.clone()),
            version: Some(info.version.clone()),
            state_schema: Some(info.state_schema),
            sha256: Some(info.sha256.clone()),
        };
        // Only stored, not run: opened in a child process, so a constructor that exits,
        // crashes or hangs is a refusal, not an outage.
        if let Err(source) = self.inspector.inspect(&path, scratch.path(), &expect) {
            return refuse(Refused::Inspect { release, source });
        }
        match self.volume.push(&path, &push, false) {
            Ok(outcome) => {
                let how = match outcome {
                    PushOutcome::Created(_) => "stored",
                    PushOutcome::AlreadyPresent(_) => "already present (same sha256)",
                };
                self.outcome(true, format!("release {release} {how}"), None)
            }
            Err(e) => refuse(e.into()),
        }
    }
}
