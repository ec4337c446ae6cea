//! A blocking client of the control API, used by `molt push --to`, `activate`, `rollback` and
//! `status`.

mod handoff;

pub use handoff::CallError;

use super::status::{Outcome, Status};
use std::path::Path;
use std::time::Duration;

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The supervisor could not be reached or answered garbage.
    #[error("{url}: {source}")]
    Http {
        /// The URL called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The supervisor wants a token (`--token-file`).
    #[error("{url}: 401 unauthorized: this supervisor requires a bearer token (--token-file)")]
    Unauthorized {
        /// The URL called.
        url: String,
    },
    /// The supervisor refused; the message says why and what still runs.
    #[error("{url}: refused ({status}): {message}")]
    Refused {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The supervisor's explanation.
        message: String,
        /// The structured answer, when there was one.
        outcome: Option<Box<Outcome>>,
    },
    /// The library to upload could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What an upload says about the release (the server checks it against the bytes).
#[derive(Debug, Clone)]
pub struct UploadInfo {
    /// App name.
    pub app: String,
    /// Version.
    pub version: String,
    /// State schema.
    pub state_schema: u32,
    /// ABI version.
    pub abi: u32,
    /// The library's file name.
    pub file: String,
    /// The sha256 of its bytes.
    pub sha256: String,
    /// The signature envelope for the release's manifest (`molt push --sign-key`).
    pub signature: Option<String>,
}

impl UploadInfo {
    /// What the volume records about this release (the manifest's fields but the library's).
    pub fn release_info(&self) -> crate::volume::ReleaseInfo {
        crate::volume::ReleaseInfo {
            app: self.app.clone(),
            version: self.version.clone(),
            abi: self.abi,
            state_schema: self.state_schema,
            signature: self.signature.clone(),
        }
    }
}

/// A client of one supervisor's control API.
pub struct ControlClient {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl ControlClient {
    /// A client of the supervisor at `base` (e.g. `http://127.0.0.1:7070`).
    pub fn new(base: &str, token: Option<String>) -> Self {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_else(|_| reqwest::blocking::Client::new());
        ControlClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /status`.
    pub fn status(&self) -> Result<Status, ClientError> {
        let url = format!("{}/status", self.base);
        let resp = self.http.get(&url).send().map_err(|source| ClientError::Http {
            url: url.clone(),
            source,
        })?;
        resp.error_for_status()
            .and_then(|r| r.json::<Status>())
            .map_err(|source| ClientError::Http { url, source })
    }

    /// `POST /releases`: stores a release on the supervisor's volume without activating it.
    pub fn upload(&self, library: &Path, info: &UploadInfo) -> Result<Outcome, ClientError> {
        let read_err = |source| ClientError::Read {
            path: library.display().to_string(),
            source,
        };
        // Streamed from the file with its length, never read whole into memory.
        let file = std::fs::File::open(library).map_err(read_err)?;
        let len = file.metadata().map_err(read_err)?.len();
        let bytes = reqwest::blocking::Body::sized(file, len);
        let url = format!("{}/releases", self.base);
        let schema = info.state_schema.to_string();
        let abi = info.abi.to_string();
        let query = [
            ("app", info.app.as_str()),
            ("version", info.version.as_str()),
            ("schema", schema.as_str()),
            ("abi", abi.as_str()),
            ("file", info.file.as_str()),
            ("sha256", info.sha256.as_str()),
        ];
        let mut req = self.http.post(&url).query(&query);
        if let Some(signature) = &info.signature {
            req = req.query(&[("signature", signature.as_str())]);
        }
        self.mutate(req.body(bytes), url)
    }

    /// `POST /activate?version=V`: makes `version` current and swaps to it.
    pub fn activate(&self, version: &str) -> Result<Outcome, ClientError> {
        self.activate_with(version, false)
    }

    /// `POST /activate?version=V&force=true` when `force`: even a release marked bad.
    pub fn activate_with(&self, version: &str, force: bool) -> Result<Outcome, ClientError> {
        let url = format!("{}/activate", self.base);
        let force = if force { "true" } else { "false" };
        self.mutate(
            self.http
                .post(&url)
                .query(&[("version", version), ("force", force)]),
            url,
        )
    }

    /// `POST /rollback`: back to the previously active version.
    pub fn rollback(&self) -> Result<Outcome, ClientError> {
        let url = format!("{}/rollback", self.base);
        self.mutate(self.http.post(&url), url)
    }

    fn mutate(
        &self,
        mut req: reqwest::blocking::RequestBuilder,
        url: String,
    ) -> Result<Outcome, ClientError> {
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().map_err(|source| ClientError::Http {
            url: url.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        if status == 401 {
            return Err(ClientError::Unauthorized { url });
        }
        let text = resp.text().map_err(|source| ClientError::Http {
            url: url.clone(),
            source,
        })?;
        let outcome: Option<Outcome> = serde_json::from_str(&text).ok();
        match outcome {
            Some(outcome) if outcome.ok && status < 300 => Ok(outcome),
            outcome => Err(ClientError::Refused {
                url,
                status,
                message: outcome
                    .as_ref()
                    .map_or_else(|| text.trim().to_owned(), |o| o.message.clone()),
                outcome: outcome.map(Box::new),
            }),
        }
    }
}
