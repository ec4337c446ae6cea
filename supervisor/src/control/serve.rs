//! The control listener: an accept loop with a connection cap and timeouts, so slow or
//! numerous clients cannot starve it (or the process's file descriptors).
//!
//! - At most [`Limits::max_connections`] connections are served at once; one past the cap is
//!   answered at once with `503` and a message naming the cap, then closed.
//! - A client must send a request's headers within [`Limits::header_read_timeout`] of the
//!   connection opening or of its previous response (hyper's header-read timer also runs
//!   while a keep-alive connection idles), or the connection is closed.
//! - A request body (an upload) must keep arriving: see [`crate::control`]'s upload route,
//!   which waits at most [`BODY_IDLE_TIMEOUT`] for each chunk.
//! - An `accept` that fails (out of file descriptors) is retried after a pause, never fatal.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let at_cap = Arc::new(AtomicBool::new(false));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "control API: accept failed; retrying in 50 ms");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            if !at_cap.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max = limits.max_connections, %peer,
                    "control API: connection cap reached; refusing new connections with 503 until some close"
                );
            }
            tokio::spawn(refuse(stream, limits.max_connections));
            continue;
        };
        at_cap.store(false, Ordering::Relaxed);
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "control connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            ?grace,
            "control API: connections still open after the grace period"
        );
    }
}

/// Answers a connection past the cap with a 503 (without reading its request) and closes it.
async fn refuse(mut stream: tokio::net::TcpStream, max: usize) {
    let body = format!(
        "{{\"ok\":false,\"message\":\"too many control connections: at most {max} are served at once; retry later\"}}\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}
