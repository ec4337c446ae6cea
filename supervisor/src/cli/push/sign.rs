//! `molt push --sign-key`: the signature envelope a push writes into the manifest.

use crate::signing::{Envelope, SecretKey};
use crate::volume::ReleaseInfo;
use anyhow::Context;
use std::path::Path;

/// Reads the secret key named by `--sign-key`.
pub fn read_key(path: Option<&Path>) -> anyhow::Result<Option<SecretKey>> {
    path.map(|p| SecretKey::read(p).context("--sign-key")).transpose()
}

/// Signs the manifest `info` gives `library` (its file name `file`, its bytes' sha256) and
/// returns the envelope's text; `None` without a key.
pub fn envelope(key: Option<&SecretKey>, info: &ReleaseInfo, file: &str, sha256: &str) -> Option<String> {
    let key = key?;
    let manifest = info.manifest(file, sha256);
    let envelope = Envelope::sign(&manifest, key);
    tracing::info!(
        app = %info.app, version = %info.version, key = %key.public().fingerprint(),
        "release signed"
    );
    Some(envelope.to_string())
}

/// The library's file name and sha256, as a push of it will record them.
pub fn identity(library: &Path) -> anyhow::Result<(String, String)> {
    let file = library
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable file name", library.display()))?
        .to_owned();
    let sha256 = crate::manifest::sha256_file(library)
        .with_context(|| format!("cannot read {}", library.display()))?;
    Ok((file, sha256))
}
