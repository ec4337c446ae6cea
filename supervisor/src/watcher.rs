//! Notices when an app's `current` pointer changes on the release volume.
//!
//! inotify (through `notify`) sees a local volume change at once. On network filesystems
//! (NFS, most ReadWriteMany volumes) inotify sees nothing, so `--poll-interval` adds a timer
//! that wakes the supervisor regularly as well. Either way the watcher only says "look again":
//! the supervisor reads `current` itself and compares it with what runs, so a missed, doubled
//! or spurious wake-up is harmless.

use notify::{RecursiveMode, Watcher as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// inotify could not watch the app directory.
    #[error("cannot watch {dir}: {source}")]
    Notify {
        /// The directory.
        dir: PathBuf,
        /// What notify said.
        #[source]
        source: notify::Error,
    },
}

/// A running watch; dropping it stops the watch.
pub struct Watch {
    _inotify: notify::RecommendedWatcher,
    poller: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(poller) = &self.poller {
            poller.abort();
        }
    }
}

/// Watches `app_dir` (the directory holding `current`) and sends `()` on `wake` whenever it
/// may have changed, and every `poll` interval when one is given. Wake-ups coalesce: the
/// channel should have capacity 1. Must be called inside a tokio runtime.
pub fn watch(app_dir: &Path, poll: Option<Duration>, wake: mpsc::Sender<()>) -> Result<Watch, WatchError> {
    let notify_wake = wake.clone();
    let mut inotify = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            // `current` and `previous` are replaced by rename; anything else in the directory
            // (a new release being pushed, the state dir) does not matter here.
            Ok(event) => event
                .paths
                .iter()
                .any(|p| p.file_name().is_some_and(|n| n == "current")),
            Err(_) => true,
        };
        if relevant {
            let _ = notify_wake.try_send(());
        }
    })
    .map_err(|source| WatchError::Notify {
        dir: app_dir.to_owned(),
        source,
    })?;
    inotify
        .watch(app_dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Notify {
            dir: app_dir.to_owned(),
            source,
        })?;
    let poller = poll.map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if wake.is_closed() {
                    break;
                }
                let _ = wake.try_send(());
            }
        })
    });
    Ok(Watch {
        _inotify: inotify,
        poller,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_renamed_current_wakes_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let _watch = watch(dir.path(), None, tx).unwrap();
        std::fs::write(dir.path().join(".current.tmp"), "2.0.0").unwrap();
        std::fs::rename(dir.path().join(".current.tmp"), dir.path().join("current")).unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("inotify should report the rename")
            .unwrap();
    }

    #[tokio::test]
    async fn polling_wakes_without_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let _watch = watch(dir.path(), Some(Duration::from_millis(20)), tx).unwrap();
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("poll tick")
                .unwrap();
        }
    }
}
