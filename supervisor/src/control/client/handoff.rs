//! The handoff calls of the control client (see [`crate::handoff::wire`]). Each call has its
//! own deadline, and a failure says whether the request can have reached the supervisor: a
//! refused connection cannot, a cut or timed-out one may have (the coordinator then asks).

use super::ControlClient;
use crate::handoff::wire::{AbsorbQuery, Absorbed, Begun, Done, HandoffInfo, Refused, StateHeaders};
use reqwest::blocking::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Why a handoff call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The supervisor answered with a refusal: a definite no.
    #[error("{url}: {refused}")]
    Refused {
        /// The URL called.
        url: String,
        /// The refusal.
        refused: Refused,
    },
    /// No connection could be made: the request never reached the supervisor.
    #[error("{url}: unreachable: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The request was sent (or may have been) and no answer came: cut, timed out, or the
    /// supervisor restarted meanwhile. Whether it acted is unknown.
    #[error("{url}: no answer: {source}")]
    NoAnswer {
        /// The URL called.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The supervisor wants a token (`--token-file`).
    #[error("{url}: 401 unauthorized: this supervisor requires a bearer token (--token-file)")]
    Unauthorized {
        /// The URL called.
        url: String,
    },
    /// Any other answer (no such route on an older molt, a body that is not the expected JSON).
    #[error("{url}: unexpected answer {status}: {body}")]
    Unexpected {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body (first 300 bytes).
        body: String,
    },
}

impl CallError {
    /// Whether the supervisor certainly did not act on the call.
    pub fn certainly_not_applied(&self) -> bool {
        !matches!(self, CallError::NoAnswer { .. })
    }
}

impl ControlClient {
    /// `GET /handoff`.
    pub fn handoff_info(&self, timeout: Duration) -> Result<HandoffInfo, CallError> {
        let url = format!("{}/handoff", self.base);
        self.call_json(self.http.get(&url).timeout(timeout), url)
    }

    /// `POST /handoff/begin`: unready, seal, export; the departing supervisor settles the
    /// handoff itself after `lease` without a commit or an abort. `timeout` must cover the
    /// unready wait and the drain.
    #[allow(clippy::too_many_arguments)]
    pub fn handoff_begin(
        &self,
        id: &str,
        to: &str,
        schema: u32,
        unready: Duration,
        drain: Duration,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Begun, CallError> {
        let url = format!("{}/handoff/begin", self.base);
        let query = [
            ("id", id.to_owned()),
            ("to", to.to_owned()),
            ("schema", schema.to_string()),
            ("unready_ms", unready.as_millis().to_string()),
            ("drain_ms", drain.as_millis().to_string()),
            ("lease_ms", lease.as_millis().to_string()),
        ];
        self.call_json(self.http.post(&url).query(&query).timeout(timeout), url)
    }

    /// `GET /handoff/state`: (app, schema, bytes).
    pub fn handoff_state(&self, id: &str, timeout: Duration) -> Result<(String, u32, Vec<u8>), CallError> {
        let url = format!("{}/handoff/state", self.base);
        let resp = self.send(self.http.get(&url).query(&[("id", id)]).timeout(timeout), &url)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (app, schema) = (header(StateHeaders::APP), header(StateHeaders::SCHEMA));
        let Ok(schema) = schema.parse::<u32>() else {
            return Err(CallError::Unexpected {
                url,
                status: resp.status().as_u16(),
                body: format!("no {} header", StateHeaders::SCHEMA),
            });
        };
        let bytes = resp
            .bytes()
            .map_err(|source| CallError::NoAnswer { url, source })?;
        Ok((app, schema, bytes.to_vec()))
    }

    /// `POST /handoff/commit`.
    pub fn handoff_commit(&self, id: &str, timeout: Duration) -> Result<Done, CallError> {
        let url = format!("{}/handoff/commit", self.base);
        self.call_json(self.http.post(&url).query(&[("id", id)]).timeout(timeout), url)
    }

    /// `POST /handoff/abort`.
    pub fn handoff_abort(&self, id: &str, timeout: Duration) -> Result<Done, CallError> {
        let url = format!("{}/handoff/abort", self.base);
        self.call_json(self.http.post(&url).query(&[("id", id)]).timeout(timeout), url)
    }

    /// `POST /absorb`: merge `state` into the supervisor's state, once per `id`.
    pub fn absorb(
        &self,
        id: &str,
        from: &str,
        app: &str,
        schema: u32,
        state: Vec<u8>,
        timeout: Duration,
    ) -> Result<Absorbed, CallError> {
        let url = format!("{}/absorb", self.base);
        let schema = schema.to_string();
        let query = [
            ("id", id),
            ("from", from),
            ("app", app),
            ("schema", schema.as_str()),
        ];
        let req = self.http.post(&url).query(&query).body(state).timeout(timeout);
        self.call_json(req, url)
    }

    /// `POST /absorb/query`: whether `id` was absorbed; `fence` makes a "no" final.
    pub fn absorb_query(&self, id: &str, fence: bool, timeout: Duration) -> Result<AbsorbQuery, CallError> {
        let url = format!("{}/absorb/query", self.base);
        let query = [("id", id), ("fence", if fence { "true" } else { "false" })];
        self.call_json(self.http.post(&url).query(&query).timeout(timeout), url)
    }

    fn call_json<T: DeserializeOwned>(&self, req: RequestBuilder, url: String) -> Result<T, CallError> {
        let resp = self.send(req, &url)?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|source| CallError::NoAnswer {
            url: url.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|_| CallError::Unexpected {
            url,
            status,
            body: text.chars().take(300).collect(),
        })
    }

    /// Sends with the token; a success status, or the refusal the body carries.
    fn send(&self, mut req: RequestBuilder, url: &str) -> Result<Response, CallError> {
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().map_err(|source| {
            let url = url.to_owned();
            if source.is_connect() {
                CallError::Unreachable { url, source }
            } else {
                CallError::NoAnswer { url, source }
            }
        })?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(resp),
            401 => Err(CallError::Unauthorized { url: url.to_owned() }),
            _ => {
                let text = resp.text().unwrap_or_default();
                match serde_json::from_str::<Refused>(&text) {
                    Ok(refused) => Err(CallError::Refused {
                        url: url.to_owned(),
                        refused,
                    }),
                    Err(_) => Err(CallError::Unexpected {
                        url: url.to_owned(),
                        status,
                        body: text.chars().take(300).collect(),
                    }),
                }
            }
        }
    }
}
