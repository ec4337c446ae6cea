//! The trust check: which keys a supervisor accepts, and the verdict on one release.

use super::{payload, Envelope, Fingerprint, KeyError, PublicKey, SecretKey};
use crate::manifest::Manifest;
use std::path::PathBuf;

/// The public keys a supervisor trusts (`molt run --trusted-key`, repeatable). Empty: releases
/// need no signature (and signatures are not checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

/// Why a release's signature was refused. Every message names the release and the keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Keys are trusted and the release carries no signature.
    #[error("release {release} is not signed; this supervisor only runs releases signed by {trusted}")]
    Unsigned {
        /// `app version`.
        release: String,
        /// The trusted keys' fingerprints.
        trusted: String,
    },
    /// The `signature` field is not a valid envelope.
    #[error("release {release}: its signature is unreadable: {reason}; trusted keys: {trusted}")]
    Malformed {
        /// `app version`.
        release: String,
        /// The parser's complaint.
        reason: String,
        /// The trusted keys' fingerprints.
        trusted: String,
    },
    /// Signed by a key that is not trusted.
    #[error("release {release} is signed by key {key}, which is not trusted (trusted keys: {trusted})")]
    UntrustedKey {
        /// `app version`.
        release: String,
        /// The signer's fingerprint.
        key: Fingerprint,
        /// The trusted keys' fingerprints.
        trusted: String,
    },
    /// The signature does not verify: the manifest was changed after signing (or the
    /// signature was damaged).
    #[error(
        "release {release}: the signature by trusted key {key} does not match the manifest: \
         the manifest was changed after it was signed"
    )]
    Mismatch {
        /// `app version`.
        release: String,
        /// The signer's fingerprint.
        key: Fingerprint,
    },
}

impl TrustedKeys {
    /// These keys (duplicates dropped).
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> TrustedKeys {
        let mut out: Vec<PublicKey> = Vec::new();
        for key in keys {
            if !out.contains(&key) {
                out.push(key);
            }
        }
        TrustedKeys { keys: out }
    }

    /// Reads public key files (`molt.pub`).
    pub fn read(paths: &[PathBuf]) -> Result<TrustedKeys, KeyError> {
        let keys = paths
            .iter()
            .map(|p| PublicKey::read(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedKeys::new(keys))
    }

    /// Whether no key is trusted (signatures not required).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The trusted keys' fingerprints, comma-separated.
    pub fn fingerprints(&self) -> String {
        let all: Vec<String> = self.keys.iter().map(|k| k.fingerprint().to_string()).collect();
        all.join(", ")
    }

    /// The verdict on a manifest: with no trusted key, `Ok(None)`; otherwise the manifest must
    /// carry an envelope by a trusted key whose signature verifies over [`payload`]. Returns
    /// the signer. Reads nothing but the manifest.
    pub fn check(&self, manifest: &Manifest) -> Result<Option<Fingerprint>, SignatureError> {
        if self.is_empty() {
            return Ok(None);
        }
        let release = format!("{} {}", manifest.app, manifest.version);
        let Some(text) = &manifest.signature else {
            return Err(SignatureError::Unsigned {
                release,
                trusted: self.fingerprints(),
            });
        };
        let envelope = Envelope::parse(text).map_err(|e| SignatureError::Malformed {
            release: release.clone(),
            reason: e.to_string(),
            trusted: self.fingerprints(),
        })?;
        let key = envelope.key.fingerprint();
        if !self.keys.contains(&envelope.key) {
            return Err(SignatureError::UntrustedKey {
                release,
                key,
                trusted: self.fingerprints(),
            });
        }
        if !envelope.key.verifies(&payload(manifest), &envelope.signature) {
            return Err(SignatureError::Mismatch { release, key });
        }
        Ok(Some(key))
    }
}

impl Envelope {
    /// Signs `manifest` (its [`payload`]) with `key`.
    pub fn sign(manifest: &Manifest, key: &SecretKey) -> Envelope {
        Envelope {
            key: key.public(),
            signature: key.sign(&payload(manifest)),
        }
    }

    /// Whether this envelope's signature verifies over `manifest` with the envelope's own key
    /// (says nothing about trust: see [`TrustedKeys::check`]).
    pub fn verifies(&self, manifest: &Manifest) -> bool {
        self.key.verifies(&payload(manifest), &self.signature)
    }
}

#[cfg(test)]
mod tests;
