//! Key files and fingerprints.
//!
//! Both files are one line of ASCII text:
//! ```text
//! molt.pub   ed25519 <64 hex digits: the 32-byte public key>
//! molt.key   ed25519-secret <64 hex digits: the 32-byte secret seed>
//! ```
//! A key's fingerprint is `ed25519:` and the first 16 hex digits of the SHA-256 of its 32 bytes.
//! Fingerprints only name keys in messages; trust compares whole keys.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The public key's file name in a `molt keygen` directory.
pub const PUBLIC_KEY_FILE: &str = "molt.pub";
/// The secret key's file name in a `molt keygen` directory.
pub const SECRET_KEY_FILE: &str = "molt.key";

const PUBLIC_TAG: &str = "ed25519";
const SECRET_TAG: &str = "ed25519-secret";
/// Key files are one short line; anything longer is not a key file.
const MAX_KEY_FILE: u64 = 4096;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's contents are not a key of the expected kind.
    #[error("key file {path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The check that failed.
        reason: String,
    },
}

/// An ed25519 public key: what a supervisor trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// An ed25519 secret key: what `molt push --sign-key` signs with.
pub struct SecretKey(SigningKey);

/// A short name of a public key, for messages: `ed25519:` and 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PublicKey {
    /// The key from its 32 bytes; `None` when they are not a valid curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        VerifyingKey::from_bytes(bytes).ok().map(PublicKey)
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = Sha256::digest(self.0.as_bytes());
        Fingerprint(format!("{PUBLIC_TAG}:{}", hex::encode(&digest[..8])))
    }

    /// Whether `signature` is this key's signature of `message` (strict verification: no
    /// malleable or small-order encodings).
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &signature).is_ok()
    }

    /// The key file's line: `ed25519 <hex>`.
    pub fn to_line(&self) -> String {
        format!("{PUBLIC_TAG} {}", hex::encode(self.0.as_bytes()))
    }

    /// Parses `ed25519 <64 hex>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let bytes = tagged_hex32(text, PUBLIC_TAG)?;
        PublicKey::from_bytes(&bytes).ok_or_else(|| "not a valid ed25519 public key".to_owned())
    }

    /// Reads a public key file (`molt.pub`).
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = read_small(path)?;
        PublicKey::parse(&text).map_err(|reason| KeyError::Format {
            path: path.into(),
            reason: format!("not an ed25519 public key file (`{PUBLIC_TAG} <64 hex digits>`): {reason}"),
        })
    }
}

impl SecretKey {
    /// The key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// Reads a secret key file (`molt.key`).
    pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
        let text = read_small(path)?;
        let seed = tagged_hex32(&text, SECRET_TAG).map_err(|reason| KeyError::Format {
            path: path.into(),
            reason: format!("not an ed25519 secret key file (`{SECRET_TAG} <64 hex digits>`): {reason}"),
        })?;
        Ok(SecretKey::from_seed(&seed))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public().fingerprint())
    }
}

/// Generates a key pair from the operating system's random source and writes it into `dir`
/// (created if missing): `molt.key` (mode 0600) and `molt.pub` (mode 0644). Existing files
/// are never overwritten. Returns the public key.
pub fn generate(dir: &Path) -> Result<PublicKey, KeyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Io {
        path: dir.into(),
        source: std::io::Error::other(format!("no random bytes from the operating system: {e}")),
    })?;
    let secret = SecretKey::from_seed(&seed);
    let public = secret.public();
    let secret_line = format!("{SECRET_TAG} {}\n", hex::encode(seed));
    let public_line = format!("{}\n", public.to_line());
    for (name, line, mode) in [
        (SECRET_KEY_FILE, secret_line, 0o600),
        (PUBLIC_KEY_FILE, public_line, 0o644),
    ] {
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(line.as_bytes()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
    }
    Ok(public)
}

/// Reads a key file of at most [`MAX_KEY_FILE`] bytes, as an untrusted file (a FIFO or a
/// device in its place is refused, never opened).
fn read_small(path: &Path) -> Result<String, KeyError> {
    let bytes = crate::untrusted::read(path, None, MAX_KEY_FILE).map_err(|e| KeyError::Io {
        path: path.into(),
        source: e.into_io(),
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `<tag> <64 hex digits>` → the 32 bytes.
pub(super) fn tagged_hex32(text: &str, tag: &str) -> Result<[u8; 32], String> {
    let mut words = text.split_ascii_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(t), Some(hex), None) if t == tag => hex32(hex),
        (Some(t), _, _) if t != tag => Err(format!("starts with {t:?}, not {tag:?}")),
        _ => Err(format!("expected `{tag} <64 hex digits>` on one line")),
    }
}

/// Exactly 64 hex digits → 32 bytes.
pub(super) fn hex32(text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return Err(format!("{} hex digits, expected 64", text.len()));
    }
    hex::decode_to_slice(text, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}
