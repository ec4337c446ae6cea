//! Signed releases: ed25519 keys, the signed payload of a manifest, the signature envelope in
//! `release.toml`, and the trust check a supervisor runs before a library is opened.
//!
//! See docs/DESIGN.md, "Signed releases". In short:
//! - `molt keygen --out DIR` writes `DIR/molt.key` (the secret seed, mode 0600) and
//!   `DIR/molt.pub` (the public key), each one line of text ([`keys`]).
//! - `molt push --sign-key DIR/molt.key` signs the release's canonical payload ([`payload`]):
//!   app, version, ABI, state schema, library file name and the library's sha256.
//! - The manifest carries `signature = "ed25519 <public key hex> <signature hex>"`
//!   ([`Envelope`]): the signer's key travels with the signature, so a refusal can name it.
//! - `molt run --trusted-key DIR/molt.pub` (repeatable: two keys during a rotation) makes
//!   every release need a valid signature by one of the trusted keys ([`TrustedKeys::check`]).
//!   The check reads only the manifest: it runs before the library is hashed or loaded.

mod envelope;
mod keys;
mod payload;
mod trust;

pub use envelope::{Envelope, EnvelopeError};
pub use keys::{generate, Fingerprint, KeyError, PublicKey, SecretKey, PUBLIC_KEY_FILE, SECRET_KEY_FILE};
pub use payload::{payload, PAYLOAD_HEADER};
pub use trust::{SignatureError, TrustedKeys};
