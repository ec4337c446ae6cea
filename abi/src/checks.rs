//! The rules [`crate::export_app!`] checks at compile time.
//!
//! A plugin that breaks one of them would load and then fail at the worst moment: an app
//! whose `IMPORTS` lacks its own `SCHEMA` cannot restore its own snapshots (a restart refuses
//! it), and one whose `EXPORTS` lacks it makes the supervisor migrate through an older schema,
//! silently dropping whatever the new one added. So they are compile errors:
//!
//! ```compile_fail
//! # use molt_abi::{App, AppError, Request, Response};
//! struct Bad;
//! impl App for Bad {
//!     const NAME: &'static str = "bad";
//!     const SCHEMA: u32 = 2;
//!     const IMPORTS: &'static [u32] = &[1]; // schema 2 missing: does not compile
//!     # fn create() -> Result<Self, AppError> { Ok(Bad) }
//!     # fn handle(&self, _: &Request<'_>) -> Response { Response::not_found() }
//!     # fn export_state(&self, _: u32) -> Result<Vec<u8>, AppError> { Ok(vec![]) }
//!     # fn import_state(_: u32, _: &[u8]) -> Result<Self, AppError> { Ok(Bad) }
//! }
//! molt_abi::export_app!(Bad);
//! # fn main() {}
//! ```
//!
//! ```compile_fail
//! # use molt_abi::{App, AppError, Request, Response};
//! struct Bad;
//! impl App for Bad {
//!     const NAME: &'static str = "bad";
//!     const SCHEMA: u32 = 2;
//!     const IMPORTS: &'static [u32] = &[1, 2];
//!     const EXPORTS: &'static [u32] = &[1]; // schema 2 missing: does not compile
//!     # fn create() -> Result<Self, AppError> { Ok(Bad) }
//!     # fn handle(&self, _: &Request<'_>) -> Response { Response::not_found() }
//!     # fn export_state(&self, _: u32) -> Result<Vec<u8>, AppError> { Ok(vec![]) }
//!     # fn import_state(_: u32, _: &[u8]) -> Result<Self, AppError> { Ok(Bad) }
//! }
//! molt_abi::export_app!(Bad);
//! # fn main() {}
//! ```
//!
//! ```compile_fail
//! # use molt_abi::{App, AppError, Request, Response};
//! struct Bad;
//! impl App for Bad {
//!     const NAME: &'static str = "bad";
//!     const SCHEMA: u32 = 2;
//!     const IMPORTS: &'static [u32] = &[1, 2, 1]; // a duplicate: does not compile
//!     # fn create() -> Result<Self, AppError> { Ok(Bad) }
//!     # fn handle(&self, _: &Request<'_>) -> Response { Response::not_found() }
//!     # fn export_state(&self, _: u32) -> Result<Vec<u8>, AppError> { Ok(vec![]) }
//!     # fn import_state(_: u32, _: &[u8]) -> Result<Self, AppError> { Ok(Bad) }
//! }
//! molt_abi::export_app!(Bad);
//! # fn main() {}
//! ```
//!
//! The same app with the lists right compiles (so the failures above are the checks, not a
//! typo in the examples):
//!
//! ```
//! # use molt_abi::{App, AppError, Request, Response};
//! struct Good;
//! impl App for Good {
//!     const NAME: &'static str = "good";
//!     const SCHEMA: u32 = 2;
//!     const IMPORTS: &'static [u32] = &[1, 2];
//!     const EXPORTS: &'static [u32] = &[2, 1];
//!     # fn create() -> Result<Self, AppError> { Ok(Good) }
//!     # fn handle(&self, _: &Request<'_>) -> Response { Response::not_found() }
//!     # fn export_state(&self, _: u32) -> Result<Vec<u8>, AppError> { Ok(vec![]) }
//!     # fn import_state(_: u32, _: &[u8]) -> Result<Self, AppError> { Ok(Good) }
//! }
//! molt_abi::export_app!(Good);
//! # fn main() {}
//! ```

use crate::app::App;

/// Checks `A`'s schema lists: [`App::SCHEMA`] in [`App::IMPORTS`] and in [`App::EXPORTS`],
/// no schema listed twice, no empty name. [`crate::export_app!`] evaluates it in a constant,
/// so a broken list is a compile error whose message says which rule failed.
pub const fn check_app<A: App>() {
    assert!(!A::NAME.is_empty(), "molt: App::NAME must not be empty");
    assert!(
        contains(A::IMPORTS, A::SCHEMA),
        "molt: App::IMPORTS must include App::SCHEMA (a restart restores snapshots through it)"
    );
    assert!(
        contains(A::EXPORTS, A::SCHEMA),
        "molt: App::EXPORTS must include App::SCHEMA (else upgrades go through an older schema and lose what it lacks)"
    );
    assert!(
        !has_duplicates(A::IMPORTS),
        "molt: App::IMPORTS lists a schema twice"
    );
    assert!(
        !has_duplicates(A::EXPORTS),
        "molt: App::EXPORTS lists a schema twice"
    );
}

const fn contains(list: &[u32], wanted: u32) -> bool {
    let mut i = 0;
    while i < list.len() {
        if list[i] == wanted {
            return true;
        }
        i += 1;
    }
    false
}

const fn has_duplicates(list: &[u32]) -> bool {
    let mut i = 0;
    while i < list.len() {
        let mut j = i + 1;
        while j < list.len() {
            if list[i] == list[j] {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{contains, has_duplicates};

    #[test]
    fn lists() {
        assert!(contains(&[1, 2], 2) && !contains(&[1], 2) && !contains(&[], 1));
        assert!(has_duplicates(&[1, 2, 1]) && !has_duplicates(&[2, 1]) && !has_duplicates(&[]));
    }
}
