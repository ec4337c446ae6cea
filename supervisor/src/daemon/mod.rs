//! `molt run`: the long-lived supervisor process.
//!
//! It serves the app on `--listen`, the control API on `--control`, watches the volume's
//! `current` pointer, swaps when it changes, writes state snapshots periodically and on
//! SIGTERM/SIGINT (after draining), and on start restores the latest snapshot through the
//! running release's import hook.

mod probation;
mod supervisor;

pub use supervisor::Supervisor;

use crate::front::Front;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

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
        }
    }
}

/// Why the supervisor could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// A control address other than loopback needs a token.
    #[error(
        "refusing to expose the control API on {addr} without a token: mutating calls would be \
         open to anyone who can reach it; pass --token-file, or bind --control to 127.0.0.1"
    )]
    ControlWithoutToken {
        /// The address.
        addr: SocketAddr,
    },
    /// A socket could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `app traffic` or `control API`.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state could not be restored or saved.
    #[error("{0}")]
    State(String),
    /// Another I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The volume watcher could not start.
    #[error(transparent)]
    Watch(#[from] crate::watcher::WatchError),
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

/// Runs a supervisor until `shutdown` completes; then drains, snapshots and returns.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    if !config.control.ip().is_loopback() && config.token.is_none() {
        return Err(DaemonError::ControlWithoutToken { addr: config.control });
    }
    let sup = tokio::task::spawn_blocking({
        let config = config.clone();
        move || Supervisor::open(config)
    })
    .await
    .map_err(|e| DaemonError::State(format!("start-up task failed: {e}")))??;

    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Bind { addr, what, source })
    };
    let traffic = bind(config.listen, "app traffic").await?;
    let control = bind(config.control, "control API").await?;
    let addrs = BoundAddrs {
        listen: traffic
            .local_addr()
            .map_err(|source| io("reading the traffic address", source))?,
        control: control
            .local_addr()
            .map_err(|source| io("reading the control address", source))?,
        pid: std::process::id(),
    };
    tracing::info!(listen = %addrs.listen, control = %addrs.control, app = %config.app, "molt listening");

    // Load what `current` names (and restore the snapshot) before saying where we listen, so a
    // caller that waits for the address file finds the supervisor serving.
    let first = Arc::clone(&sup);
    let _ = tokio::task::spawn_blocking(move || first.boot()).await;
    if let Some(path) = &config.addr_file {
        let json = serde_json::to_vec(&addrs).unwrap_or_default();
        crate::volume::atomic_write(path, &json)
            .map_err(|source| io(format!("writing the address file {}", path.display()), source))?;
    }

    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    let _watch = if config.watch {
        Some(crate::watcher::watch(
            &sup.app_dir(),
            config.poll_interval,
            wake_tx.clone(),
        )?)
    } else {
        None
    };
    let reconciler = tokio::spawn({
        let sup = Arc::clone(&sup);
        async move {
            while wake_rx.recv().await.is_some() {
                let sup = Arc::clone(&sup);
                let _ = tokio::task::spawn_blocking(move || sup.reconcile(false)).await;
            }
        }
    });
    let snapshotter = (!config.snapshot_interval.is_zero()).then(|| {
        let sup = Arc::clone(&sup);
        let every = config.snapshot_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let sup = Arc::clone(&sup);
                let _ = tokio::task::spawn_blocking(move || sup.snapshot()).await;
            }
        })
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let front =
        Front::new(Arc::clone(&sup) as Arc<dyn crate::front::Service>).with_metrics(sup.metrics_arc());
    let front_task = tokio::spawn({
        let mut stop = stop_rx.clone();
        let grace = config.shutdown_grace;
        async move {
            front
                .serve(
                    traffic,
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                    grace,
                )
                .await
        }
    });
    let control_task = tokio::spawn({
        let mut stop = stop_rx.clone();
        let app = crate::control::router(Arc::clone(&sup));
        async move {
            axum::serve(control, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }
    });

    shutdown.await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    let _ = front_task.await;
    reconciler.abort();
    if let Some(task) = snapshotter {
        task.abort();
    }
    // Traffic has drained: the snapshot holds every acknowledged request.
    let last = Arc::clone(&sup);
    let saved = tokio::task::spawn_blocking(move || last.snapshot())
        .await
        .map_err(|e| DaemonError::State(format!("final snapshot task failed: {e}")))?;
    let _ = tokio::time::timeout(Duration::from_secs(2), control_task).await;
    match saved {
        Ok(Some(path)) => tracing::info!(snapshot = %path.display(), "final snapshot written"),
        Ok(None) => tracing::info!("no version ran: no snapshot to write"),
        Err(e) => return Err(e),
    }
    Ok(())
}

fn io(what: impl Into<String>, source: std::io::Error) -> DaemonError {
    DaemonError::Io {
        what: what.into(),
        source,
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
