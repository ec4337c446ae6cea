//! The traffic front: HTTP/1.1 on a socket the supervisor owns, so connections (keep-alive
//! included) live across swaps. Each request is handed to a [`Service`] — the swap engine in
//! production, a statically linked app in the benchmark's baseline — on the blocking pool, so
//! a slow handler or a swap's pause never stalls the runtime's workers.

use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
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
    /// Serves one request; called from many threads at once.
    fn serve(&self, req: &Request<'_>) -> Reply;
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
}

impl Front {
    /// A front for `service`, with a 16 MiB request body limit.
    pub fn new(service: Arc<dyn Service>) -> Self {
        Front {
            service,
            metrics: None,
            max_body: 16 << 20,
        }
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
    /// waits (up to `grace`) for in-flight requests to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> std::io::Result<()> {
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(conn) => conn,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let front = self.clone();
                    let conn = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service_fn(move |req| {
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
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
            tracing::warn!(?grace, "connections still open after the grace period");
        }
        Ok(())
    }

    async fn respond(&self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                let too_big = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
                let (status, text) = if too_big {
                    (413, format!("request body over {} bytes\n", self.max_body))
                } else {
                    (400, format!("could not read the request body: {e}\n"))
                };
                return self.finish(Response::new(status, text), None);
            }
        };
        let service = Arc::clone(&self.service);
        let served = tokio::task::spawn_blocking(move || {
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
                &body,
            );
            service.serve(&request)
        })
        .await;
        match served {
            // No version (nothing serves yet): no header, rather than an empty one.
            Ok(reply) => self.finish(reply.response, Some(&*reply.version).filter(|v| !v.is_empty())),
            Err(e) => self.finish(Response::new(500, format!("request task failed: {e}\n")), None),
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
        if let Some(version) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(VERSION_HEADER, version);
        }
        out
    }
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
