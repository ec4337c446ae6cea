//! The canonical signed payload of a release.
//!
//! A signature covers these bytes, built from the manifest's fields (never from the TOML text,
//! whose spelling may vary), one `name value` line each, every line ending in `\n`:
//! ```text
//! molt release signature v1
//! app counter
//! version 2.0.0
//! abi 1
//! state_schema 2
//! library libcounter_v2.so
//! sha256 <64 lowercase hex digits>
//! ```
//! The first line separates molt release signatures from anything else the key might sign.
//! `app`, `version` and `library` pass [`crate::manifest::check_component`] (printable ASCII,
//! no spaces), so no field can spill into another line; the sha256 is lowercased. The
//! library's bytes are covered through their sha256, which the supervisor checks after the
//! signature and before loading.

use crate::manifest::Manifest;

/// The payload's first line (without its newline).
pub const PAYLOAD_HEADER: &str = "molt release signature v1";

/// The bytes a release's signature covers: every manifest field but `signature` itself.
pub fn payload(manifest: &Manifest) -> Vec<u8> {
    // Destructured so that a field added to the manifest does not compile until it is either
    // signed here or deliberately left out.
    let Manifest {
        app,
        version,
        abi,
        state_schema,
        library,
        sha256,
        signature: _,
    } = manifest;
    format!(
        "{PAYLOAD_HEADER}\napp {app}\nversion {version}\nabi {abi}\nstate_schema {state_schema}\n\
         library {library}\nsha256 {}\n",
        sha256.to_ascii_lowercase()
    )
    .into_bytes()
}
