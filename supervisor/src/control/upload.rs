//! `POST /releases`: the body is streamed to a temporary directory on the release volume
//! (`<volume>/<app>/releases/.tmp-upload-*`, never held in memory), at most
//! [`MAX_UPLOAD`](super::MAX_UPLOAD) bytes, each chunk within
//! [`BODY_IDLE_TIMEOUT`](super::serve::BODY_IDLE_TIMEOUT) of the last; then the supervisor
//! checks and stores it, off the async runtime, and the temporary directory is removed.

use super::guard::{refusal, too_large};
use super::serve::BODY_IDLE_TIMEOUT;
use super::{blocking, Api, UploadInfo, MAX_UPLOAD};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use http_body_util::BodyExt;
use serde::Deserialize;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Query of `POST /releases`.
#[derive(Debug, Deserialize)]
pub(super) struct UploadQuery {
    app: String,
    version: String,
    schema: u32,
    abi: u32,
    file: String,
    sha256: String,
    signature: Option<String>,
}

/// The route (authenticated and size-checked by the layers before it).
pub(super) async fn upload(
    State(api): State<Api>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Body,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return refusal(
                &api,
                StatusCode::BAD_REQUEST,
                format!("POST /releases refused: {}", e.body_text()),
            )
        }
    };
    if let Err(reason) = crate::manifest::check_component(&q.file) {
        let name = crate::untrusted::excerpt(q.file.as_bytes(), 64);
        return refusal(
            &api,
            StatusCode::BAD_REQUEST,
            format!("POST /releases refused: library file name \"{name}\": {reason}"),
        );
    }
    let staging = api.upload_dir();
    let file = q.file.clone();
    let made = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&staging)?;
        let dir = tempfile::Builder::new()
            .prefix(crate::volume::UPLOAD_PREFIX)
            .tempdir_in(&staging)?;
        // Held until the directory is removed: a supervisor starting meanwhile sees it in use
        // (see crate::volume::remove_if_abandoned).
        let in_use = std::fs::File::open(dir.path())?;
        crate::volume::hold(&in_use)?;
        let path = dir.path().join(file);
        Ok::<_, std::io::Error>((dir, path, in_use))
    })
    .await;
    let (dir, path, in_use) = match made {
        Ok(Ok(made)) => made,
        Ok(Err(e)) => {
            return refusal(
                &api,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("POST /releases failed: cannot create a temporary directory on the volume: {e}"),
            )
        }
        Err(e) => {
            return refusal(
                &api,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("POST /releases failed: {e}"),
            )
        }
    };
    let answer = match receive(&api, body, path.clone()).await {
        Err(refused) => refused,
        Ok(()) => {
            let info = UploadInfo {
                app: q.app,
                version: q.version,
                state_schema: q.schema,
                abi: q.abi,
                file: q.file,
                sha256: q.sha256,
                signature: q.signature,
            };
            blocking(api, move |api| api.upload(&path, &info)).await
        }
    };
    // Removing up to a gigabyte is file I/O too: off the runtime.
    let _ = tokio::task::spawn_blocking(move || {
        drop(dir);
        drop(in_use);
    })
    .await;
    answer
}

/// Streams `body` into a new file at `path`, or answers why not.
async fn receive(api: &Api, mut body: Body, path: PathBuf) -> Result<(), Response> {
    let failed = |e: std::io::Error| {
        refusal(
            api,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("POST /releases failed: cannot write the upload to the volume: {e}"),
        )
    };
    let mut file = tokio::fs::File::create(&path).await.map_err(failed)?;
    let mut total = 0u64;
    loop {
        let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
            Err(_) => {
                return Err(refusal(
                    api,
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "POST /releases refused: no data for {} after {total} bytes; nothing was stored",
                        humantime::format_duration(BODY_IDLE_TIMEOUT)
                    ),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(refusal(
                    api,
                    StatusCode::BAD_REQUEST,
                    format!("POST /releases refused: the body was cut off after {total} bytes: {e}"),
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(chunk) = frame.into_data() else { continue };
        total += chunk.len() as u64;
        if total > MAX_UPLOAD {
            return Err(too_large(api, "POST /releases", total, MAX_UPLOAD));
        }
        file.write_all(&chunk).await.map_err(failed)?;
    }
    file.flush().await.map_err(failed)?;
    Ok(())
}
