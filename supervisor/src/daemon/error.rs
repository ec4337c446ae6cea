//! Why the supervisor could not start or stopped with an error.

use std::net::SocketAddr;

/// Why the supervisor could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// A control address other than loopback needs a token.
    #[error(
        "refusing to expose the control API on {addr} without a token: mutating calls would be \
         open to anyone who can reach it; pass --token-file, or bind --control to 127.0.0.1"
    )]
    ControlWithoutToken {
        /// The address.
        addr: SocketAddr,
    },
    /// The token is too short to resist guessing.
    #[error(
        "refusing a control API token of {len} bytes: tokens must be at least {min} bytes \
         (e.g. `head -c 24 /dev/urandom | base64 > token`); nothing was started"
    )]
    ShortToken {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A socket could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `app traffic` or `control API`.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another supervisor holds the state directory.
    #[error(transparent)]
    Locked(crate::snapshot::LockError),
    /// The state could not be restored or saved.
    #[error("{0}")]
    State(String),
    /// Another I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The volume watcher could not start.
    #[error(transparent)]
    Watch(#[from] crate::watcher::WatchError),
}

pub(super) fn io(what: impl Into<String>, source: std::io::Error) -> DaemonError {
    DaemonError::Io {
        what: what.into(),
        source,
    }
}
