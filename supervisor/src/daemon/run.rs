//! The process around the supervisor: sockets, the volume watcher, the snapshot timer, the
//! app front and the control API, and an orderly shutdown.

use super::error::io;
use super::{BoundAddrs, DaemonError, RunConfig, Supervisor};
use crate::front::Front;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Runs a supervisor until `shutdown` completes; then drains, snapshots and returns.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    // Polled once now, so that signal handlers it installs on its first poll (see
    // `shutdown_signal`) are in place before anyone learns where we listen: a SIGTERM sent
    // right after the address file appears must drain and snapshot, not kill the process.
    let mut shutdown = std::pin::pin!(shutdown);
    let mut signalled = false;
    std::future::poll_fn(|cx| {
        signalled = shutdown.as_mut().poll(cx).is_ready();
        std::task::Poll::Ready(())
    })
    .await;
    if !config.control.ip().is_loopback() && config.token.is_none() {
        return Err(DaemonError::ControlWithoutToken { addr: config.control });
    }
    if let Some(token) = &config.token {
        if token.len() < super::config::MIN_TOKEN_LEN {
            return Err(DaemonError::ShortToken {
                len: token.len(),
                min: super::config::MIN_TOKEN_LEN,
            });
        }
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
            sup.metrics_arc(),
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
    // This supervisor's report on the volume, kept fresh (see `presence.rs`).
    let heartbeat = tokio::spawn({
        let sup = Arc::clone(&sup);
        async move {
            let mut tick = tokio::time::interval(super::HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let sup = Arc::clone(&sup);
                let _ = tokio::task::spawn_blocking(move || sup.publish()).await;
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

    // A sealed handoff past its lease is settled by this supervisor itself (see `lease`).
    let lease_watch = tokio::spawn({
        let sup = Arc::clone(&sup);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let sup = Arc::clone(&sup);
                let _ = tokio::task::spawn_blocking(move || sup.settle_expired_handoff()).await;
            }
        }
    });

    let ticker = super::tick::Ticker::spawn(Arc::clone(&sup))
        .map_err(|source| io("starting the tick thread", source))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let limits = crate::front::Limits {
        body_timeout: config.body_timeout,
        ..Default::default()
    };
    let front = Front::new(Arc::clone(&sup) as Arc<dyn crate::front::Service>)
        .with_metrics(sup.metrics_arc())
        .with_limits(limits);
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
        let app = crate::control::router(Arc::clone(&sup) as Arc<dyn crate::control::ControlApi>);
        let grace = config.shutdown_grace;
        crate::control::serve::serve(
            control,
            app,
            crate::control::Limits::default(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
            grace,
        )
    });

    if !signalled {
        shutdown.await;
    }
    if let Some(target) = config.handoff_on_stop.clone() {
        // Before anything stops: the handoff needs the traffic front (to drain it) and the
        // control API (the coordinator talks to it like any other).
        let sup = Arc::clone(&sup);
        let (control, opts) = (addrs.control, config.handoff.clone());
        let _ = tokio::task::spawn_blocking(move || sup.hand_off_on_stop(control, &target, &opts)).await;
    }
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    let _ = front_task.await;
    reconciler.abort();
    lease_watch.abort();
    if let Some(task) = snapshotter {
        task.abort();
    }
    // No tick after the final snapshot: it is the last word on the state.
    tokio::task::spawn_blocking(move || drop(ticker))
        .await
        .map_err(|e| DaemonError::State(format!("stopping the tick thread failed: {e}")))?;
    // Traffic has drained: the snapshot holds every acknowledged request. A handoff still
    // sealed is settled first when the receiver answers (see `lease`).
    let last = Arc::clone(&sup);
    let saved = tokio::task::spawn_blocking(move || {
        last.settle_handoff_on_stop();
        last.final_snapshot()
    })
    .await
    .map_err(|e| DaemonError::State(format!("final snapshot task failed: {e}")))?;
    let _ = tokio::time::timeout(Duration::from_secs(2), control_task).await;
    heartbeat.abort();
    let last = Arc::clone(&sup);
    let _ = tokio::task::spawn_blocking(move || last.withdraw()).await;
    match saved {
        Ok(Some(path)) => tracing::info!(snapshot = %path.display(), "final snapshot written"),
        Ok(None) => tracing::info!("no version ran: no snapshot to write"),
        Err(e) => {
            tracing::error!(error = %e, "final snapshot lost");
            return Err(e);
        }
    }
    Ok(())
}

/// Completes on SIGTERM, SIGINT or SIGHUP (a graceful stop with the final snapshot each).
/// SIGUSR1 and SIGUSR2, whose default action would kill the process with no final snapshot,
/// are logged and otherwise ignored.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    // Each handler is installed here, on the first poll (see `run`).
    let mut streams = [
        (SignalKind::terminate(), "SIGTERM", true),
        (SignalKind::interrupt(), "SIGINT", true),
        (SignalKind::hangup(), "SIGHUP", true),
        (SignalKind::user_defined1(), "SIGUSR1", false),
        (SignalKind::user_defined2(), "SIGUSR2", false),
    ]
    .map(|(kind, name, stops)| {
        let stream = signal(kind)
            .map_err(|e| tracing::warn!(signal = name, error = %e, "cannot handle the signal"))
            .ok();
        (stream, name, stops)
    });
    loop {
        let (name, stops) = std::future::poll_fn(|cx| {
            for (slot, name, stops) in streams.iter_mut() {
                if let Some(stream) = slot {
                    match stream.poll_recv(cx) {
                        std::task::Poll::Ready(Some(())) => return std::task::Poll::Ready((*name, *stops)),
                        // The runtime is going away: nothing more arrives on it.
                        std::task::Poll::Ready(None) => *slot = None,
                        std::task::Poll::Pending => {}
                    }
                }
            }
            std::task::Poll::Pending
        })
        .await;
        if stops {
            tracing::info!(signal = name, "{name} received: stopping");
            return;
        }
        tracing::warn!(
            signal = name,
            "{name} received and ignored (SIGTERM, SIGINT or SIGHUP stop molt)"
        );
    }
}
