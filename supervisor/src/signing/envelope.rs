//! The signature envelope: the `signature` field of `release.toml`.
//!
//! ```toml
//! signature = "ed25519 <64 hex digits: the signer's public key> <128 hex digits: the signature>"
//! ```
//! The public key travels with the signature so that a refusal can name the signer's
//! fingerprint; whether that key is trusted is decided by the supervisor ([`super::TrustedKeys`]),
//! never by the envelope.

use super::keys::{hex32, PublicKey};
use std::fmt;

const TAG: &str = "ed25519";
/// The longest envelope accepted, in bytes (the real one is 7 + 1 + 64 + 1 + 128 = 201).
const MAX_LEN: usize = 512;

/// A parsed signature envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The key that made the signature (as the envelope claims).
    pub key: PublicKey,
    /// The ed25519 signature of the release's payload.
    pub signature: [u8; 64],
}

/// Why a `signature` field is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a signature envelope (`{TAG} <64 hex digits> <128 hex digits>`): {0}")]
pub struct EnvelopeError(String);

impl Envelope {
    /// Parses `ed25519 <key hex> <signature hex>`: single spaces, lowercase or uppercase hex,
    /// nothing before or after.
    pub fn parse(text: &str) -> Result<Envelope, EnvelopeError> {
        let fail = |why: String| EnvelopeError(why);
        if text.len() > MAX_LEN {
            return Err(fail(format!("{} bytes long", text.len())));
        }
        let mut parts = text.split(' ');
        let (Some(tag), Some(key), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(fail(
                "expected three fields separated by single spaces".to_owned(),
            ));
        };
        if tag != TAG {
            return Err(fail(format!("algorithm {tag:?}, only {TAG:?} is known")));
        }
        let key_bytes = hex32(key).map_err(|e| fail(format!("public key: {e}")))?;
        let key = PublicKey::from_bytes(&key_bytes)
            .ok_or_else(|| fail("public key: not a valid ed25519 point".to_owned()))?;
        let mut signature = [0u8; 64];
        if sig.len() != 128 {
            return Err(fail(format!("signature: {} hex digits, expected 128", sig.len())));
        }
        hex::decode_to_slice(sig, &mut signature).map_err(|e| fail(format!("signature: {e}")))?;
        Ok(Envelope { key, signature })
    }
}

impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TAG} {} {}",
            hex::encode(self.key.to_bytes()),
            hex::encode(self.signature)
        )
    }
}
