//! Retention: `molt prune --keep N` (and `molt push --keep N`) removes old releases, never the
//! ones something still needs.

use super::{check_name, Volume, VolumeError};
use std::collections::BTreeSet;

/// What a prune removed and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The versions removed, oldest first.
    pub removed: Vec<String>,
    /// The versions kept only because something needs them (beyond the newest N), with why.
    pub protected: Vec<(String, String)>,
}

impl Volume {
    /// Removes the releases of `app` beyond the newest `keep`, except: the current and previous
    /// releases, the newest good release, and every release a live supervisor runs or keeps for
    /// rollback (its history). Each removal renames the release to a `.tmp-*` name first
    /// (atomic: no half-removed release is ever listed), then deletes it; its verdict goes too.
    /// Holds the app's writer lock meanwhile.
    pub fn prune(
        &self,
        app: &str,
        keep: usize,
        lock_wait: std::time::Duration,
    ) -> Result<Pruned, VolumeError> {
        check_name("app", app)?;
        // Taking the lock would create the app's directory: a typo must not.
        let dir = self.app_dir(app);
        if !dir.is_dir() {
            return Err(VolumeError::NoApp {
                app: app.to_owned(),
                dir,
            });
        }
        let _lock = self.lock_app(app, lock_wait)?;
        let releases = self.releases(app)?;
        let verdicts = self.verdicts(app)?;
        let mut needed: Vec<(String, String)> = Vec::new();
        let mut need = |v: Option<String>, why: String| {
            if let Some(v) = v {
                needed.push((v, why));
            }
        };
        need(self.current(app).ok().flatten(), "current".to_owned());
        need(self.previous(app).ok().flatten(), "previous".to_owned());
        need(
            releases
                .iter()
                .rev()
                .find(|r| verdicts.get(&r.version).is_some_and(|v| !v.is_bad()))
                .map(|r| r.version.clone()),
            "newest good".to_owned(),
        );
        for sup in self.live_supervisors(app)? {
            need(sup.running.clone(), format!("runs on {}", sup.instance));
            for v in &sup.history {
                need(Some(v.clone()), format!("rollback target on {}", sup.instance));
            }
        }
        let newest: BTreeSet<&str> = releases
            .iter()
            .rev()
            .take(keep)
            .map(|r| r.version.as_str())
            .collect();
        let mut out = Pruned::default();
        for r in &releases {
            if newest.contains(r.version.as_str()) {
                continue;
            }
            let why: Vec<&str> = needed
                .iter()
                .filter(|(v, _)| *v == r.version)
                .map(|(_, why)| why.as_str())
                .collect();
            if !why.is_empty() {
                out.protected.push((r.version.clone(), why.join(", ")));
                continue;
            }
            let doomed = tempfile::Builder::new()
                .prefix(super::TEMP_PREFIX)
                .tempdir_in(self.releases_dir(app))
                .map_err(|source| VolumeError::Io {
                    action: "create a temporary directory in",
                    path: self.releases_dir(app),
                    source,
                })?;
            let target = doomed.path().join(&r.version);
            std::fs::rename(&r.dir, &target).map_err(|source| VolumeError::Io {
                action: "remove release",
                path: r.dir.clone(),
                source,
            })?;
            drop(doomed); // deletes the directory and the release inside it
            self.clear_verdict(app, &r.version)?;
            tracing::info!(app, version = %r.version, "release pruned");
            out.removed.push(r.version.clone());
        }
        Ok(out)
    }
}
