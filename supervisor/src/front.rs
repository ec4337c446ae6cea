//! The traffic front: HTTP/1.1 on a socket the supervisor owns, so connections (keep-alive
//! included) live across swaps. Each request is handed to a [`Service`] — the swap engine in
//! production, a statically linked app in the benchmark's baseline.
//!
//! # Where the app runs (see docs/DESIGN.md, "The serving path")
//! The common case calls the app **inline**, on the runtime worker that read the request: no
//! thread hand-off, which is what a plain hyper or axum server does. Two things could make an
//! inline call stall other connections, and each is bounded:
//! - **A swap's pause.** [`Service::try_serve`] never waits for the gate: while a swap holds
//!   or wants it, the request goes to tokio's blocking pool, where [`Service::serve`] queues on
//!   the gate and is served by the new version once it opens. Nothing is refused, and the
//!   workers keep accepting, reading and writing meanwhile.
//! - **A handler that blocks** (sleeps, waits on a lock, computes for long). At most
//!   `workers - 1` runtime workers may be inside the app inline at once ([`Inline`]); a request
//!   that finds them all taken goes to the blocking pool instead. So however many handlers
//!   block, at least one worker is never inside the app: it keeps accepting, reading requests
//!   and sending them to the pool, and other connections keep being served. With one worker
//!   (a current-thread runtime) nothing runs inline. `molt run` starts at least two workers.
//!   One more hazard remains: tokio polls the sockets from whichever idle worker holds its
//!   I/O driver, and a worker parked without it is not woken for I/O. If the worker that polled
//!   the sockets blocks in the app, a watchdog thread notices the call within 10–20 ms and
//!   wakes a parked worker, which takes over polling ([`crate::inline`]).
//!
//! Connections are accepted through [`crate::listener::Acceptor`] (a connection cap with a
//! 503 past it, back-off on `EMFILE`), and hyper closes a connection that has not sent a
//! complete request head within [`Limits::head_timeout`] of starting to wait for one. Bodies
//! are read under a size limit, a deadline and a budget shared by all connections
//! ([`crate::body`]).

use crate::inline::Inline;
use crate::listener::Acceptor;
use crate::metrics::{Dispatch, Metrics};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use molt_abi::{Header, Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The header naming the app version that served a response.
pub const VERSION_HEADER: &str = "x-molt-version";

/// What serves one request.
pub trait Service: Send + Sync + 'static {
    /// Serves one request; called from many threads at once, on the blocking pool. May wait
    /// (for a swap's pause).
    fn serve(&self, req: &Request<'_>) -> Reply;

    /// Serves one request unless that would mean waiting for something other than the app
    /// itself (a swap's pause): then `None`, and the front calls [`Service::serve`] on the
    /// blocking pool instead. Called on runtime workers. The default serves at once, for
    /// services that never wait.
    fn try_serve(&self, req: &Request<'_>) -> Option<Reply> {
        Some(self.serve(req))
    }
}

/// The traffic listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; past it a connection is answered 503 and closed.
    pub max_connections: usize,
    /// How long a connection may take to send a complete request head, counted from when it
    /// starts waiting for one: on accept, and after each response on a keep-alive connection.
    /// It is hyper's header-read timeout, which is also the keep-alive idle timeout: an idle
    /// connection is closed after it (a slowloris client, too).
    pub head_timeout: Duration,
    /// How long a request's body may take to arrive once its head has (408 past it).
    pub body_timeout: Duration,
    /// Bytes of request bodies all connections together may hold while they arrive (503
    /// past it).
    pub max_buffered_bodies: usize,
}

impl Default for Limits {
    /// [`crate::listener::default_max_connections`], 30 s for a head, 30 s for a body, and
    /// 256 MiB of bodies in all.
    fn default() -> Self {
        Limits {
            max_connections: crate::listener::default_max_connections(),
            head_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_buffered_bodies: 256 << 20,
        }
    }
}

/// A response and the version of the app that produced it.
#[derive(Debug)]
pub struct Reply {
    /// The app's response.
    pub response: Response,
    /// The version that served it, sent as [`VERSION_HEADER`].
    pub version: Arc<str>,
}

/// How the front serves.
#[derive(Clone)]
pub struct Front {
    service: Arc<dyn Service>,
    metrics: Option<Arc<Metrics>>,
    max_body: usize,
    limits: Limits,
    /// Runtime workers that may be inside the app at once; set when serving starts.
    inline: Arc<Inline>,
    /// Bytes of bodies being received, by all connections.
    bodies: Arc<crate::body::Budget>,
}

impl Front {
    /// A front for `service`, with a 16 MiB request body limit and the default [`Limits`].
    pub fn new(service: Arc<dyn Service>) -> Self {
        Front {
            service,
            metrics: None,
            max_body: 16 << 20,
            limits: Limits::default(),
            inline: Arc::new(Inline::new(0)),
            bodies: Arc::default(),
        }
    }

    /// Sets the listener's limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Counts requests by status in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Sets the largest request body accepted (larger ones get 413).
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Accepts connections on `listener` until `shutdown` completes, then stops accepting and
    /// waits (up to `grace`) for in-flight requests to finish. Must run on the runtime whose
    /// workers serve the connections: the inline bound is its worker count minus one.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> std::io::Result<()> {
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        self.inline = Arc::new(Inline::new(workers.saturating_sub(1)));
        let _watchdog = if self.inline.max() > 0 {
            Some(self.inline.watch(tokio::runtime::Handle::current())?)
        } else {
            None
        };
        let mut acceptor = Acceptor::new(listener, "app traffic", self.limits.max_connections);
        tracing::debug!(
            workers,
            inline = self.inline.max(),
            max_connections = acceptor.max_connections(),
            head_timeout = ?self.limits.head_timeout,
            "serving app traffic"
        );
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                admitted = acceptor.accept() => {
                    let _ = admitted.stream.set_nodelay(true);
                    let front = self.clone();
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(self.limits.head_timeout)
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(admitted), service_fn(move |req| {
                            let front = front.clone();
                            async move { Ok::<_, Infallible>(front.respond(req).await) }
                        }));
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(acceptor);
        if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
            tracing::warn!(?grace, "connections still open after the grace period");
        }
        Ok(())
    }

    async fn respond(&self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let limits = crate::body::BodyLimits {
            max_body: self.max_body,
            timeout: self.limits.body_timeout,
            max_buffered: self.limits.max_buffered_bodies,
        };
        // `_held` keeps the body's bytes counted until the request has been served.
        let (body, _held) = match crate::body::read(body, limits, &self.bodies).await {
            Ok(read) => read,
            Err((status, text)) => return self.finish(Response::new(status, text), None),
        };
        if let Some(slot) = self.inline.enter() {
            let reply = with_request(&parts, &body, |request| self.service.try_serve(request));
            drop(slot);
            if let Some(reply) = reply {
                self.count(Dispatch::Inline);
                return self.finish(reply.response, Some(&reply.version));
            }
        }
        self.count(Dispatch::Pool);
        let service = Arc::clone(&self.service);
        let served = tokio::task::spawn_blocking(move || {
            with_request(&parts, &body, |request| service.serve(request))
        })
        .await;
        match served {
            Ok(reply) => self.finish(reply.response, Some(&reply.version)),
            Err(e) => self.finish(Response::new(500, format!("request task failed: {e}\n")), None),
        }
    }

    fn count(&self, dispatch: Dispatch) {
        if let Some(metrics) = &self.metrics {
            metrics.record_dispatch(dispatch);
        }
    }

    fn finish(&self, response: Response, version: Option<&str>) -> hyper::Response<Full<Bytes>> {
        if let Some(metrics) = &self.metrics {
            metrics.record_request(response.status);
        }
        let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
        *out.status_mut() =
            hyper::StatusCode::from_u16(response.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = out.headers_mut();
        for (name, value) in response.headers {
            // A header the app got wrong is dropped rather than failing the whole response.
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                headers.append(name, value);
            }
        }
        // No version (nothing serves yet): no header, rather than an empty one.
        let version = version.filter(|v| !v.is_empty());
        if let Some(version) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(VERSION_HEADER, version);
        }
        out
    }
}

/// Calls `f` with the app's view of a request: borrowed method, path, query, headers, body.
fn with_request<T>(
    parts: &hyper::http::request::Parts,
    body: &Bytes,
    f: impl FnOnce(&Request<'_>) -> T,
) -> T {
    let headers: Vec<Header<'_>> = parts
        .headers
        .iter()
        .map(|(name, value)| Header::new(name.as_str().as_bytes(), value.as_bytes()))
        .collect();
    let request = Request::new(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &headers,
        body,
    );
    f(&request)
}

/// Serves an app linked into the binary, with no ABI boundary: the benchmark's baseline.
pub struct StaticApp<A> {
    app: A,
    version: Arc<str>,
}

impl<A: molt_abi::App> StaticApp<A> {
    /// Wraps an app instance that answers as `version`.
    pub fn new(app: A, version: &str) -> Self {
        StaticApp {
            app,
            version: Arc::from(version),
        }
    }
}

impl<A: molt_abi::App> Service for StaticApp<A> {
    fn serve(&self, req: &Request<'_>) -> Reply {
        Reply {
            response: self.app.handle(req),
            version: Arc::clone(&self.version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Hello;

    impl Service for Hello {
        fn serve(&self, _req: &Request<'_>) -> Reply {
            Reply {
                response: Response::ok("hello"),
                version: Arc::from("test"),
            }
        }
    }

    async fn start(limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let front = Front::new(Arc::new(Hello)).with_limits(limits);
        tokio::spawn(front.serve(
            listener,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        (addr, stop)
    }

    async fn read_all(stream: &mut tokio::net::TcpStream) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
            .await
            .expect("the server should answer or close, not hang")
            .ok();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_finishes_its_head_is_closed() {
        let (addr, _stop) = start(Limits {
            max_connections: 16,
            head_timeout: Duration::from_millis(300),
            ..Limits::default()
        })
        .await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        let answer = read_all(&mut slow).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
        // An idle keep-alive connection is closed the same way, after its last answer.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_all(&mut idle).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_connection_cap_a_client_gets_503() {
        let (addr, _stop) = start(Limits {
            max_connections: 1,
            head_timeout: Duration::from_secs(30),
            ..Limits::default()
        })
        .await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        first
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 17];
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200 OK\r\n");
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        second
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_all(&mut second).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            answer.contains("app traffic is at its cap of 1 open connections"),
            "{answer}"
        );
        drop(first);
        // The place is free again.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
            third
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let answer = read_all(&mut third).await;
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(std::time::Instant::now() < until, "{answer}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
