//! The control listener: the supervisor's capped acceptor ([`crate::listener::Acceptor`])
//! and hyper's timers, so slow or numerous clients cannot starve it (or the process's file
//! descriptors).
//!
//! - At most [`Limits::max_connections`] connections are served at once; one past the cap is
//!   answered at once with `503` and a message naming the cap, then closed.
//! - A client must send a request's headers within [`Limits::header_read_timeout`] of the
//!   connection opening or of its previous response (hyper's header-read timer also runs
//!   while a keep-alive connection idles), or the connection is closed.
//! - A request body (an upload) must keep arriving: see [`crate::control`]'s upload route,
//!   which waits at most [`BODY_IDLE_TIMEOUT`] for each chunk.
//! - An `accept` that fails (out of file descriptors) is retried after a back-off, never fatal.

use crate::listener::Acceptor;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a request body may pause between two chunks.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The control listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a client has to send a request's headers (and how long a keep-alive
    /// connection may idle).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    /// 64 connections; 10 s for the headers.
    fn default() -> Self {
        Limits {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting and gives open connections up to `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut acceptor = Acceptor::new(listener, "control API", limits.max_connections);
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let admitted = tokio::select! {
            admitted = acceptor.accept() => admitted,
            () = &mut shutdown => break,
        };
        let peer = admitted.peer;
        let conn = http.serve_connection(TokioIo::new(admitted), TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // The connection holds its permit (inside `admitted`) until it ends.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "control connection ended with an error");
            }
        });
    }
    drop(acceptor);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            ?grace,
            "control API: connections still open after the grace period"
        );
    }
}
