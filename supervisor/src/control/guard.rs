//! What every control call passes before its handler runs: the bearer token (mutating calls)
//! and the route's body limit, both checked on the request's head alone, before a byte of its
//! body is read.

use super::{Api, Outcome};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The body limit of every call but the upload: they carry no body worth reading.
pub const SMALL_BODY: u64 = 16 * 1024;

/// A refusal as the control API answers it: the status and an [`Outcome`] that names what
/// was refused, why, and what still serves.
pub(super) fn refusal(api: &Api, code: StatusCode, message: String) -> Response {
    let outcome = Outcome {
        ok: false,
        // It may quote the request (a path, a query that did not parse): cut short.
        message: crate::untrusted::note(&message),
        version: api.running_version(),
        swap: None,
        refusal: None,
    };
    (code, Json(outcome)).into_response()
}

/// Route layer of the mutating calls: a 401 unless the request carries the configured token.
/// It runs before the handler's extractors, so an unauthenticated body is never read.
pub(super) async fn authenticate(State(api): State<Api>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if api.token_matches(given) {
        return next.run(req).await;
    }
    let what = format!("{} {}", req.method(), req.uri().path());
    discard_small_body(req).await;
    let still = match api.running_version() {
        Some(v) => format!("version {v} still serving"),
        None => "nothing is serving".to_owned(),
    };
    refusal(
        &api,
        StatusCode::UNAUTHORIZED,
        format!("unauthorized: {what} needs `Authorization: Bearer <token>`; nothing was read or changed; {still}"),
    )
}

/// A refused request's body, when it is small, is read and thrown away (never kept) before
/// the answer, up to [`DISCARD_MAX`] bytes within [`DISCARD_TIME`]: a client that sends its
/// body before reading the answer then gets the 401 rather than a reset connection. A larger
/// body is not read at all: the connection is closed after the answer.
pub const DISCARD_MAX: u64 = 32 * 1024 * 1024;
/// How long a refused body is discarded for, at most.
pub const DISCARD_TIME: std::time::Duration = std::time::Duration::from_secs(5);

async fn discard_small_body(req: Request) {
    use http_body_util::BodyExt;
    if !matches!(content_length(&req), Some(len) if len <= DISCARD_MAX) {
        return;
    }
    let mut body = req.into_body();
    let mut seen = 0u64;
    let _ = tokio::time::timeout(DISCARD_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > DISCARD_MAX {
                break;
            }
        }
    })
    .await;
}

/// Layer (with state `(api, limit)`) that answers 413 at once to a request whose
/// `Content-Length` is over `limit`, before its body is read.
pub(super) async fn limit_body(State((api, limit)): State<(Api, u64)>, req: Request, next: Next) -> Response {
    match content_length(&req) {
        Some(len) if len > limit => {
            let what = format!("{} {}", req.method(), req.uri().path());
            too_large(&api, &what, len, limit)
        }
        _ => next.run(req).await,
    }
}

/// The 413 answer.
pub(super) fn too_large(api: &Api, what: &str, len: u64, limit: u64) -> Response {
    let still = match api.running_version() {
        Some(v) => format!("version {v} still serving"),
        None => "nothing is serving".to_owned(),
    };
    refusal(
        api,
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "{what} refused: its body of {len} bytes or more is over the {limit}-byte limit of this call; \
             nothing was stored; {still}"
        ),
    )
}

/// The request's `Content-Length`, when it has a readable one.
fn content_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
