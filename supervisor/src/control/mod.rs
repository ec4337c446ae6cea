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
//!
//! Mutating calls need `Authorization: Bearer <token>` when a token is configured; the
//! supervisor refuses to start on a non-loopback control address without one.

mod api;
pub mod client;
pub mod status;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;

pub use api::ControlApi;
pub use client::{ControlClient, UploadInfo};
pub use status::{Outcome, Probation, Refusal, SnapshotRecord, Status, SwapRecord};

/// The largest library `POST /releases` accepts.
pub const MAX_UPLOAD: usize = 1 << 30;

/// The shared handle the routes call.
type Api = Arc<dyn ControlApi>;

/// The control API's routes, bound to one supervisor.
pub fn router(supervisor: Api) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/releases", post(upload))
        .route("/activate", post(activate))
        .route("/rollback", post(rollback))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .with_state(supervisor)
}

async fn readyz(State(sup): State<Api>) -> Response {
    if sup.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no version serves yet\n").into_response()
    }
}

async fn status(State(sup): State<Api>) -> Json<Status> {
    Json(sup.status())
}

async fn metrics(State(sup): State<Api>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        sup.metrics_text(),
    )
        .into_response()
}

/// A 401 answer, unless the call carries the configured token.
fn denied(sup: &dyn ControlApi, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if sup.token_matches(given) {
        None
    } else {
        let outcome = Outcome {
            ok: false,
            message: "unauthorized: this call needs `Authorization: Bearer <token>`".to_owned(),
            version: sup.running_version(),
            swap: None,
            refusal: None,
        };
        Some((StatusCode::UNAUTHORIZED, Json(outcome)).into_response())
    }
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

/// Query of `POST /releases`.
#[derive(Debug, Deserialize)]
struct UploadQuery {
    app: String,
    version: String,
    schema: u32,
    abi: u32,
    file: String,
    sha256: String,
    signature: Option<String>,
}

async fn upload(
    State(sup): State<Api>,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> Response {
    if let Some(denied) = denied(sup.as_ref(), &headers) {
        return denied;
    }
    let info = UploadInfo {
        app: q.app,
        version: q.version,
        state_schema: q.schema,
        abi: q.abi,
        file: q.file,
        sha256: q.sha256,
        signature: q.signature,
    };
    blocking(sup, move |sup| sup.upload(&body, &info)).await
}

/// Query of `POST /activate`.
#[derive(Debug, Deserialize)]
struct ActivateQuery {
    version: String,
    #[serde(default)]
    force: bool,
}

async fn activate(State(sup): State<Api>, headers: HeaderMap, Query(q): Query<ActivateQuery>) -> Response {
    if let Some(denied) = denied(sup.as_ref(), &headers) {
        return denied;
    }
    blocking(sup, move |sup| sup.activate(&q.version, q.force)).await
}

async fn rollback(State(sup): State<Api>, headers: HeaderMap) -> Response {
    if let Some(denied) = denied(sup.as_ref(), &headers) {
        return denied;
    }
    blocking(sup, |sup| sup.rollback()).await
}
