//! Notices when an app's `current` pointer changes on the release volume.
//!
//! inotify sees a local volume change at once. The watch asks the kernel only for events that
//! change the directory's entries or a file's contents: creation, close after writing, rename
//! (either side) and deletion. Opening or reading `current` — which the supervisor itself does
//! on every reconcile and every `GET /status` — produces no event at all, so an idle supervisor
//! is never woken by its own reads (the `notify` crate cannot leave `IN_OPEN` out of its mask;
//! molt once re-read `current` about a thousand times a second because each read woke it again).
//! The inotify descriptor sits on tokio's reactor: no thread, no timer, nothing runs between
//! changes.
//!
//! On network filesystems (NFS, most ReadWriteMany volumes) inotify sees nothing, so
//! `--poll-interval` adds a timer that wakes the supervisor regularly as well. Either way the
//! watcher only says "look again": the supervisor reads `current` itself and compares it with
//! what runs, so a missed, doubled or spurious wake-up is harmless. Every wake-up is counted in
//! `molt_watch_wakeups_total` (by source), which is how a test shows reads wake nothing.

use crate::metrics::{Metrics, WakeSource};
use futures_util::StreamExt;
use inotify::{EventMask, EventStream, Inotify, WatchMask};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The pointer file whose changes matter.
const CURRENT: &str = "current";

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// inotify could not watch the app directory.
    #[error("cannot watch {dir}: {source}")]
    Inotify {
        /// The directory.
        dir: PathBuf,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
}

/// A running watch; dropping it stops the watch.
pub struct Watch {
    inotify: tokio::task::JoinHandle<()>,
    poller: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.inotify.abort();
        if let Some(poller) = &self.poller {
            poller.abort();
        }
    }
}

/// The events that can change what `current` says: a new file, a write finished, a rename to or
/// from the name, a deletion; and the directory itself going away. Never `IN_OPEN`,
/// `IN_ACCESS` or `IN_CLOSE_NOWRITE`.
fn change_mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
}

/// Watches `app_dir` (the directory holding `current`) and sends `()` on `wake` whenever
/// `current` may have changed, and every `poll` interval when one is given; each wake-up is
/// counted in `metrics`. Wake-ups coalesce: the channel should have capacity 1. Must be called
/// inside a tokio runtime.
pub fn watch(
    app_dir: &Path,
    poll: Option<Duration>,
    wake: mpsc::Sender<()>,
    metrics: Arc<Metrics>,
) -> Result<Watch, WatchError> {
    let failed = |source| WatchError::Inotify {
        dir: app_dir.to_owned(),
        source,
    };
    let inotify = Inotify::init().map_err(failed)?;
    inotify.watches().add(app_dir, change_mask()).map_err(failed)?;
    // Room for many events of the longest name at once.
    let events = inotify.into_event_stream(vec![0u8; 64 * 1024]).map_err(failed)?;
    let inotify = tokio::spawn(read_changes(
        events,
        app_dir.to_owned(),
        wake.clone(),
        Arc::clone(&metrics),
    ));
    let poller = poll.map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if wake.is_closed() {
                    break;
                }
                metrics.record_wakeup(WakeSource::Poll);
                let _ = wake.try_send(());
            }
        })
    });
    Ok(Watch { inotify, poller })
}

/// Reads inotify events as they come and wakes the supervisor for those that touch `current`
/// (or that mean events may have been lost: a queue overflow, the directory removed).
async fn read_changes(
    mut events: EventStream<Vec<u8>>,
    dir: PathBuf,
    wake: mpsc::Sender<()>,
    metrics: Arc<Metrics>,
) {
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "reading the volume watch failed; only polling (if any) remains");
                return;
            }
        };
        let relevant = event
            .mask
            .intersects(EventMask::Q_OVERFLOW | EventMask::DELETE_SELF | EventMask::MOVE_SELF)
            || event.name.as_deref().is_some_and(|name| name == CURRENT);
        if relevant {
            metrics.record_wakeup(WakeSource::Change);
            if wake.try_send(()).is_err() && wake.is_closed() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn replace_current(dir: &Path, version: &str) {
        std::fs::write(dir.join(".current.tmp"), version).unwrap();
        std::fs::rename(dir.join(".current.tmp"), dir.join(CURRENT)).unwrap();
    }

    #[tokio::test]
    async fn a_renamed_current_wakes_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::new());
        let _watch = watch(dir.path(), None, tx, Arc::clone(&metrics)).unwrap();
        replace_current(dir.path(), "2.0.0");
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("inotify should report the rename")
            .unwrap();
        assert_eq!(metrics.wakeups(WakeSource::Change), 1);
    }

    #[tokio::test]
    async fn reads_of_current_wake_nothing() {
        let dir = tempfile::tempdir().unwrap();
        replace_current(dir.path(), "1.0.0");
        std::fs::create_dir(dir.path().join("releases")).unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::new());
        let _watch = watch(dir.path(), None, tx, Arc::clone(&metrics)).unwrap();
        // What the supervisor does on every reconcile and `GET /status`: open and read
        // `current`, list the directory.
        for _ in 0..500 {
            let mut text = String::new();
            std::fs::File::open(dir.path().join(CURRENT))
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, "1.0.0");
            let _ = std::fs::read_dir(dir.path()).unwrap().count();
            let _ = std::fs::metadata(dir.path().join(CURRENT)).unwrap();
        }
        // Writing elsewhere in the directory (a push staging a release) is not about `current`.
        std::fs::write(dir.path().join("releases").join("x"), "x").unwrap();
        std::fs::write(dir.path().join("previous"), "0.9.0").unwrap();
        // inotify delivers events in order: once this rename's wake-up has arrived, any event
        // the reads above caused would have been counted before it.
        replace_current(dir.path(), "2.0.0");
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("inotify should report the rename")
            .unwrap();
        assert_eq!(
            metrics.wakeups(WakeSource::Change),
            1,
            "only the rename of `current` may wake the watcher"
        );
    }

    #[tokio::test]
    async fn a_deleted_current_wakes_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        replace_current(dir.path(), "1.0.0");
        let (tx, mut rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::new());
        let _watch = watch(dir.path(), None, tx, Arc::clone(&metrics)).unwrap();
        std::fs::remove_file(dir.path().join(CURRENT)).unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("inotify should report the deletion")
            .unwrap();
    }

    #[tokio::test]
    async fn polling_wakes_without_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::new());
        let _watch = watch(
            dir.path(),
            Some(Duration::from_millis(20)),
            tx,
            Arc::clone(&metrics),
        )
        .unwrap();
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("poll tick")
                .unwrap();
        }
        assert!(metrics.wakeups(WakeSource::Poll) >= 3);
        assert_eq!(metrics.wakeups(WakeSource::Change), 0);
    }
}
