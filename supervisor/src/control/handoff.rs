//! The handoff routes of the control API (docs/DESIGN.md, "Handoff"; the calls and their
//! answers: [`crate::handoff::wire`]). The router puts every one of them behind the token
//! check, which runs before any body byte is read; only `POST /absorb` has a body, the state,
//! capped at [`MAX_STATE`], the others at [`super::SMALL_BODY`].

use super::Api;
use crate::handoff::wire::{AbsorbQuery, Absorbed, Begun, Done, HandoffInfo, Refused, StateHeaders};
use crate::handoff::{valid_id, valid_peer, valid_url, HandoffStep, MAX_PEER_LEN};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;

/// The largest state `POST /absorb` accepts (bytes).
pub const MAX_STATE: u64 = 1 << 30;

/// What the handoff routes call; `molt run`'s supervisor implements it. Blocking calls run off
/// the async runtime.
pub trait HandoffApi: Send + Sync + 'static {
    /// `GET /handoff`.
    fn handoff_info(&self) -> HandoffInfo;
    /// `POST /handoff/begin`: unready, wait `unready`, seal within `drain`, export in `schema`;
    /// settle it alone after `lease` without a commit or an abort.
    fn handoff_begin(
        &self,
        id: &str,
        to: &str,
        schema: Option<u32>,
        unready: Duration,
        drain: Duration,
        lease: Duration,
    ) -> Result<Begun, Refused>;
    /// `GET /handoff/state`: (app, schema, bytes) of the export `begin` keeps.
    fn handoff_state(&self, id: &str) -> Result<(String, u32, Bytes), Refused>;
    /// `POST /handoff/commit`.
    fn handoff_commit(&self, id: &str) -> Result<Done, Refused>;
    /// `POST /handoff/abort`.
    fn handoff_abort(&self, id: &str) -> Result<Done, Refused>;
    /// `POST /absorb`.
    fn absorb(
        &self,
        id: &str,
        from: &str,
        app: &str,
        schema: u32,
        state: Vec<u8>,
    ) -> Result<Absorbed, Refused>;
    /// `POST /absorb/query`.
    fn absorb_query(&self, id: &str, fence: bool) -> AbsorbQuery;
}

/// A refusal as the client reads it: 409 and the JSON.
fn refused(r: Refused) -> Response {
    (StatusCode::CONFLICT, Json(r)).into_response()
}

/// The refusal of an id that is not `[A-Za-z0-9._-]{1,100}`; `None` for a good one.
fn bad_id(id: &str, step: HandoffStep) -> Option<Response> {
    (!valid_id(id)).then(|| {
        refused(Refused::new(
            step,
            "id: the handoff id must be 1 to 100 characters of A-Z a-z 0-9 . _ -",
        ))
    })
}

/// The refusal of a receiver URL (`to`) that [`valid_url`] refuses; `None` for a good one.
fn bad_to(to: &str) -> Option<Response> {
    (!valid_url(to)).then(|| {
        refused(Refused::new(
            HandoffStep::Check,
            format!(
                "to: the receiver must be an http:// or https:// URL of at most {MAX_PEER_LEN} bytes \
                 of visible ASCII (got {} bytes)",
                to.len()
            ),
        ))
    })
}

/// The refusal of a peer name (`from`) that [`valid_peer`] refuses; `None` for a good one.
fn bad_from(from: &str) -> Option<Response> {
    (!valid_peer(from)).then(|| {
        refused(Refused::new(
            HandoffStep::Merge,
            format!(
                "from: the peer must be 1 to {MAX_PEER_LEN} bytes with no control character (got {} bytes)",
                from.len()
            ),
        ))
    })
}

/// Runs a blocking call off the runtime; a JSON answer, or a refusal.
async fn blocking<T: serde::Serialize + Send + 'static>(
    sup: Api,
    op: impl FnOnce(Api) -> Result<T, Refused> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || op(sup)).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(r)) => refused(r),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("control task failed: {e}\n"),
        )
            .into_response(),
    }
}

pub(super) async fn info(State(sup): State<Api>) -> Response {
    Json(sup.handoff_info()).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct BeginQuery {
    id: String,
    to: String,
    schema: Option<u32>,
    #[serde(default)]
    unready_ms: u64,
    drain_ms: Option<u64>,
    lease_ms: Option<u64>,
}

pub(super) async fn begin(State(sup): State<Api>, Query(q): Query<BeginQuery>) -> Response {
    if let Some(r) = bad_id(&q.id, HandoffStep::Check).or_else(|| bad_to(&q.to)) {
        return r;
    }
    let unready = Duration::from_millis(q.unready_ms.min(600_000));
    let drain = Duration::from_millis(q.drain_ms.unwrap_or(5_000).min(600_000));
    let lease = Duration::from_millis(q.lease_ms.unwrap_or(120_000).clamp(1_000, 3_600_000));
    blocking(sup, move |sup| {
        sup.handoff_begin(&q.id, &q.to, q.schema, unready, drain, lease)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct IdQuery {
    id: String,
}

pub(super) async fn state(State(sup): State<Api>, Query(q): Query<IdQuery>) -> Response {
    match sup.handoff_state(&q.id) {
        Ok((app, schema, bytes)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::HeaderName::from_static(StateHeaders::APP), app),
                (
                    header::HeaderName::from_static(StateHeaders::SCHEMA),
                    schema.to_string(),
                ),
                (header::HeaderName::from_static(StateHeaders::ID), q.id),
            ],
            Body::from(bytes),
        )
            .into_response(),
        Err(r) => refused(r),
    }
}

pub(super) async fn commit(State(sup): State<Api>, Query(q): Query<IdQuery>) -> Response {
    blocking(sup, move |sup| sup.handoff_commit(&q.id)).await
}

pub(super) async fn abort(State(sup): State<Api>, Query(q): Query<IdQuery>) -> Response {
    blocking(sup, move |sup| sup.handoff_abort(&q.id)).await
}

#[derive(Debug, Deserialize)]
pub(super) struct AbsorbParams {
    id: String,
    from: String,
    app: String,
    schema: u32,
}

pub(super) async fn absorb(State(sup): State<Api>, Query(q): Query<AbsorbParams>, body: Body) -> Response {
    if let Some(r) = bad_id(&q.id, HandoffStep::Merge).or_else(|| bad_from(&q.from)) {
        return r;
    }
    let state = match axum::body::to_bytes(body, MAX_STATE as usize).await {
        Ok(bytes) => bytes.to_vec(),
        Err(e) => {
            return refused(Refused::new(
                HandoffStep::Transfer,
                format!("reading the state failed (at most {MAX_STATE} bytes): {e}"),
            ))
        }
    };
    blocking(sup, move |sup| {
        sup.absorb(&q.id, &q.from, &q.app, q.schema, state)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct QueryParams {
    id: String,
    #[serde(default)]
    fence: bool,
}

pub(super) async fn query(State(sup): State<Api>, Query(q): Query<QueryParams>) -> Response {
    blocking(sup, move |sup| Ok(sup.absorb_query(&q.id, q.fence))).await
}
