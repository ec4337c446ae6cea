//! Loading built plugins and calling an engine in-process, without HTTP.

use crate::artifacts::plugin;
use molt_supervisor::engine::{Engine, Served};
use molt_supervisor::loader::{Expect, LoadError, Plugin};
use std::path::Path;
use std::sync::Arc;

/// Loads the built plugin `name` (see [`crate::artifacts`]) through the real loader, with a
/// private copy in `run_dir`. Panics if the loader refuses it.
pub fn load(name: &str, run_dir: &Path) -> Arc<Plugin> {
    try_load(name, run_dir).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// Loads the built plugin `name`, returning the loader's verdict.
pub fn try_load(name: &str, run_dir: &Path) -> Result<Arc<Plugin>, LoadError> {
    load_file(&plugin(name), run_dir, &Expect::any())
}

/// Loads `library` in this process through the real loader ([`Plugin::load`]).
///
/// Only for the libraries this workspace builds (the sample apps and the fixtures) and copies
/// or cuts of them: they are molt apps whose constructors are Rust's own.
pub fn load_file(library: &Path, run_dir: &Path, expect: &Expect) -> Result<Arc<Plugin>, LoadError> {
    // SAFETY: the tests load only libraries built from this workspace (see above), molt apps
    // that keep the ABI's rules, or files the pre-check refuses before anything is opened.
    unsafe { Plugin::load(library, run_dir, expect) }
}

/// Calls the engine with `method` and a target `/path?query`, no headers, no body.
pub fn call(engine: &Engine, method: &str, target: &str) -> Served {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    engine.handle(&molt_abi::Request::new(method, path, query, &[], b""))
}

/// `GET target`, the body as text; panics unless the status is 200.
pub fn get_text(engine: &Engine, target: &str) -> String {
    let served = call(engine, "GET", target);
    assert_eq!(
        served.response.status,
        200,
        "GET {target} on {}: {}",
        served.version,
        served.response.text()
    );
    served.response.text()
}

/// `POST target` `n` times; panics on any status but 200.
pub fn post_n(engine: &Engine, target: &str, n: u64) {
    for _ in 0..n {
        let served = call(engine, "POST", target);
        assert_eq!(
            served.response.status,
            200,
            "POST {target}: {}",
            served.response.text()
        );
    }
}
