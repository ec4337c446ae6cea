//! Choosing the peer a stopping supervisor hands its state to (`molt run --handoff-on-stop
//! dns+http://NAME:PORT`): every address NAME resolves to (a headless Service lists every
//! pod), asked in turn; the first that is another supervisor (its boot id differs from ours),
//! of the same app, serving, idle and with a merge hook, is the one.

use super::wire::Phase;
use crate::control::ControlClient;
use std::net::ToSocketAddrs;
use std::time::Duration;

/// Why no peer was chosen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The target is not `http://HOST:PORT` or `dns+http://NAME:PORT`.
    #[error("{0:?}: expected http://HOST:PORT or dns+http://NAME:PORT")]
    BadTarget(String),
    /// NAME did not resolve.
    #[error("cannot resolve {target}: {source}")]
    Resolve {
        /// The target.
        target: String,
        /// Why.
        source: std::io::Error,
    },
    /// No candidate qualified; each one's reason.
    #[error("no live peer of app {app} behind {target}: {}", if .tried.is_empty() { "it resolves to no address".to_owned() } else { .tried.join("; ") })]
    NoneLive {
        /// The target.
        target: String,
        /// The app.
        app: String,
        /// Each candidate and why it was passed over.
        tried: Vec<String>,
    },
}

/// The control URLs `target` names: itself for `http://`, one per address for `dns+http://`
/// (sorted, so every pod asks in the same order).
pub fn candidates(target: &str) -> Result<Vec<String>, PeerError> {
    if target.starts_with("http://") {
        return Ok(vec![target.trim_end_matches('/').to_owned()]);
    }
    let Some(rest) = target.strip_prefix("dns+http://") else {
        return Err(PeerError::BadTarget(target.to_owned()));
    };
    let host_port = rest.trim_end_matches('/');
    let mut addrs: Vec<_> = host_port
        .to_socket_addrs()
        .map_err(|source| PeerError::Resolve {
            target: target.to_owned(),
            source,
        })?
        .collect();
    addrs.sort();
    addrs.dedup();
    Ok(addrs.into_iter().map(|a| format!("http://{a}")).collect())
}

/// The first candidate behind `target` that can absorb this supervisor's state (module docs).
/// `boot_id` is this supervisor's own, to pass itself over.
pub fn choose(
    target: &str,
    app: &str,
    boot_id: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<ControlClient, PeerError> {
    let mut tried = Vec::new();
    for url in candidates(target)? {
        let client = ControlClient::new(&url, token.map(str::to_owned));
        let why = match client.handoff_info(timeout) {
            Err(e) => e.to_string(),
            Ok(info) if info.boot_id == boot_id => "itself".to_owned(),
            Ok(info) if info.app != app => format!("runs app {:?}", info.app),
            Ok(info) if info.version.is_none() => "serves nothing".to_owned(),
            Ok(info) if info.phase != Phase::Serving => format!("is not idle ({:?})", info.phase),
            Ok(info) if info.merges.is_empty() => "its version has no merge hook".to_owned(),
            Ok(_) => return Ok(client),
        };
        tried.push(format!("{url}: {why}"));
    }
    Err(PeerError::NoneLive {
        target: target.to_owned(),
        app: app.to_owned(),
        tried,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_expand() {
        assert_eq!(candidates("http://a:1/").unwrap(), ["http://a:1"]);
        assert_eq!(
            candidates("dns+http://127.0.0.1:7070").unwrap(),
            ["http://127.0.0.1:7070"]
        );
        assert!(matches!(candidates("ftp://x"), Err(PeerError::BadTarget(_))));
    }
}
