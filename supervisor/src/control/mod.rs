//! The control API, on its own socket (`--control`, default `127.0.0.1:7070`):
//!
//! | call | what |
//! |---|---|
//! | `GET /healthz` | 200 while the process lives (liveness) |
//! | `GET /readyz` | 200 once a version serves, 503 before (readiness) |
//! | `GET /status` | JSON [`Status`] |
//! | `GET /metrics` | Prometheus text ([`crate::metrics`]) |
//! | `POST /releases?app&version&schema&abi&file&sha256[&signature]` | body = the library: stores a release on the volume |
//! | `POST /activate?version=V[&force=true]` | points `current` at V and swaps to it (`force`: even a release marked bad) |
//! | `POST /rollback` | back to the version this supervisor served before |
//! | `GET /handoff`, `POST /handoff/{begin,commit,abort}`, `GET /handoff/state` | the departing side of a handoff ([`handoff`]) |
//! | `POST /absorb`, `POST /absorb/query` | the receiving side of a handoff |
//!
//! Mutating calls need `Authorization: Bearer <token>` when a token is configured (compared
//! in constant time; tokens shorter than 16 bytes are refused at start); the supervisor
//! refuses to start on a non-loopback control address without one.
//!
//! Hostile clients cannot take it down (see [`serve`] and `guard.rs`): the token is checked
//! before any body byte is read; a `Content-Length` over the route's limit ([`MAX_UPLOAD`]
//! for uploads, [`SMALL_BODY`] for the rest) is a 413 at once; uploads are streamed to a
//! temporary directory on the volume, never held in memory; the listener serves at most
//! [`Limits::max_connections`] connections and closes one that does not send its headers in
//! time.

mod api;
pub mod client;
mod guard;
pub mod handoff;
pub mod serve;
pub mod status;
mod upload;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

pub use api::ControlApi;
pub use client::{CallError, ControlClient, UploadInfo};
pub use guard::SMALL_BODY;
pub use handoff::HandoffApi;
pub use serve::Limits;
pub use status::{Outcome, Probation, Refusal, SnapshotFailure, SnapshotRecord, Status, SwapRecord};

/// The largest library `POST /releases` accepts (bytes).
pub const MAX_UPLOAD: u64 = crate::untrusted::MAX_LIBRARY;

/// The shared handle the routes call.
type Api = Arc<dyn ControlApi>;

/// The control API's routes, bound to one supervisor. Mutating calls pass the token check
/// (before any of their body is read); every call has a body limit checked on its
/// `Content-Length` before the body is read: [`MAX_UPLOAD`] for `POST /releases`,
/// [`handoff::MAX_STATE`] for `POST /absorb`, [`SMALL_BODY`] for the rest.
pub fn router(api: Api) -> Router {
    let limit = |bytes: u64| from_fn_with_state((Arc::clone(&api), bytes), guard::limit_body);
    let small = || limit(SMALL_BODY);
    Router::new()
        .route("/releases", post(upload::upload).layer(limit(MAX_UPLOAD)))
        .route("/activate", post(activate).layer(small()))
        .route("/rollback", post(rollback).layer(small()))
        .route("/handoff", get(handoff::info).layer(small()))
        .route("/handoff/begin", post(handoff::begin).layer(small()))
        .route("/handoff/state", get(handoff::state).layer(small()))
        .route("/handoff/commit", post(handoff::commit).layer(small()))
        .route("/handoff/abort", post(handoff::abort).layer(small()))
        .route("/absorb", post(handoff::absorb).layer(limit(handoff::MAX_STATE)))
        .route("/absorb/query", post(handoff::query).layer(small()))
        .route_layer(from_fn_with_state(Arc::clone(&api), guard::authenticate))
        .route("/healthz", get(|| async { "ok\n" }).layer(small()))
        .route("/readyz", get(readyz).layer(small()))
        .route("/status", get(status).layer(small()))
        .route("/metrics", get(metrics).layer(small()))
        .with_state(api)
}

async fn readyz(State(sup): State<Api>) -> Response {
    match sup.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

/// `GET /status`: built off the async runtime (it reads the volume's `current`), so a slow
/// or hostile volume never blocks traffic or the other control calls.
async fn status(State(sup): State<Api>) -> Response {
    match tokio::task::spawn_blocking(move || sup.status()).await {
        Ok(status) => Json(status).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("status task failed: {e}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(sup): State<Api>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        sup.metrics_text(),
    )
        .into_response()
}

/// Runs a blocking supervisor operation off the runtime and turns its outcome into a response.
async fn blocking(sup: Api, op: impl FnOnce(Api) -> Outcome + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(move || op(sup)).await {
        Ok(outcome) => {
            let code = if outcome.ok {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            (code, Json(outcome)).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("control task failed: {e}\n"),
        )
            .into_response(),
    }
}

/// Query of `POST /activate`.
#[derive(Debug, Deserialize)]
struct ActivateQuery {
    version: String,
    #[serde(default)]
    force: bool,
}

async fn activate(State(sup): State<Api>, Query(q): Query<ActivateQuery>) -> Response {
    blocking(sup, move |sup| sup.activate(&q.version, q.force)).await
}

async fn rollback(State(sup): State<Api>) -> Response {
    blocking(sup, |sup| sup.rollback()).await
}
