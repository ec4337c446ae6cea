//! Builds what the tests run, from source, once per process: the sample plugins, the faulty
//! fixture plugins and the `molt` binary. Nothing built is ever committed.
//!
//! Like libloading's compile-once test helper (and wasmtime's `test-programs/artifacts`), the
//! build runs `cargo build` with its own target directory, `<target>/molt-artifacts`: a
//! nested cargo sharing the target directory of the `cargo test` that runs it would wait
//! forever for that cargo's lock. Cargo's own lock on the separate directory makes parallel
//! test processes safe; a `OnceLock` makes each build run once per process.
//!
//! # Plugin names
//! [`plugin`] takes a library name (the `[lib] name` of the crate) and returns the path of the
//! built `lib<name>.so`. Every `cdylib` crate under `sample-plugins/` and `tests/fixtures/` is
//! built, so a new fixture needs no change here:
//!
//! | name | what it is |
//! |---|---|
//! | `counter_v1` | sample app: one counter, schema 1 |
//! | `counter_v2` | sample app: per-key counters, schema 2; imports 1, exports 2 and 1 |
//! | `counter_v3` | sample app: per-key counters with update counts, schema 3; imports 2 (not 1), exports 3 and 2 |
//! | `kv_v1`, `kv_v2` | sample key-value app, two versions |
//! | `kv_v3`, `kv_v4` | the key-value app on host-owned tables; v4 adds a write counter to each record |
//! | `fixture_abort_import` | `2.0.0-abort-import`: its import hook aborts the process |
//! | `fixture_panic_import` | `2.0.0-panic-import`: its import hook panics |
//! | `fixture_error_import` | `2.0.0-error-import`: its import hook returns an error |
//! | `fixture_hang_import` | `2.0.0-hang-import`: its import hook sleeps for an hour |
//! | `fixture_wrong_schema` | `3.0.0-wrong-schema`: schema 3 only, cannot take over from v1 |
//! | `fixture_wrong_abi` | `2.0.0-wrong-abi`: claims ABI version 999 |
//! | `fixture_bad_record` | `4.0.0-bad-record`: kv on tables whose upgrade hook refuses the key `poison` |
//! | `fixture_abi_v1` | `1.5.0-abi-v1`: a schema-1 counter publishing an ABI version 1 descriptor |
//! | `fixture_no_entry` | `2.0.0-no-entry`: a library without the entry symbol |
//! | `fixture_panic_handle` | `1.1.0-panic-handle`: counter v1 whose `GET /boom` panics |
//! | `fixture_unhealthy` | `2.0.0-unhealthy`: imports fine, health fails, `GET /count` is 500 |
//! | `fixture_tick` | `1.2.0-tick`: counter v1 whose `tick` hook adds 1 every 20 ms and panics at every multiple of 10 |
//! | `fixture_lossy_rollback` | `2.0.0-lossy-rollback`: imports 1, exports 2 and 1, but its schema 1 forgets the count |
//! | `fixture_leak_thread` | `1.4.0-leak-thread`: counter v1 whose create and import start a thread that never ends |
//! | `fixture_bad_lists` | `2.0.0-bad-lists`: schema 2 with `IMPORTS = [1]`, `EXPORTS = [1]` (descriptor made by hand) |
//! | `fixture_two_apps` | `2.0.0-two-apps`: depends on counter v1 as a normal dependency, so it exports two entry symbols |
//! | `fixture_leak_tls` | `1.5.0-leak-tls`: counter v1 whose `handle` uses a `thread_local!` with a destructor |
//! | `fixture_no_downgrade` | `3.0.0-no-downgrade`: takes over from v1, cannot export back |
//! | `fixture_ctor` | `2.0.0-ctor`: a constructor that exits, aborts or hangs (`MOLT_FIXTURE_CTOR`) |
//! | `fixture_bogus_entry` | `2.0.0-bogus-entry`: no molt app; `molt_app_descriptor` is an `int` |
//! | `fixture_block_handle` | `1.1.0-block-handle`: counter v1 whose `POST /block` waits for `POST /release`, `GET /sleep` sleeps 1 s |
//! | `fixture_no_merge` | `1.0.0-no-merge`: counter v1 without a merge hook |
//! | `fixture_panic_merge` | `1.0.0-panic-merge`: counter v1 whose merge hook panics half way |
//! | `fixture_slow_merge` | `1.0.0-slow-merge`: counter v1 whose merge hook takes 3 s |

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The cargo profile to build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `dev`, into `debug/`: fast to build, what tests use.
    Debug,
    /// `release`, into `release/`: what the benchmark measures.
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_owned()
}

/// Where artifacts are built: `molt-artifacts` inside the workspace's target directory
/// (`CARGO_TARGET_DIR` when set, else `<root>/target`).
pub fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_relative() {
        workspace_root().join(target)
    } else {
        target
    };
    target.join("molt-artifacts")
}

/// The path of a built plugin library (debug profile). See the module docs for the names.
/// Panics with cargo's output if the build fails, or with the known names if `name` is none
/// of them.
pub fn plugin(name: &str) -> PathBuf {
    plugin_with(name, Profile::Debug)
}

/// [`plugin`], built with `profile`.
pub fn plugin_with(name: &str, profile: Profile) -> PathBuf {
    static BUILT: [OnceLock<Vec<Crate>>; 2] = [OnceLock::new(), OnceLock::new()];
    let crates = BUILT[profile.index()].get_or_init(|| {
        let crates = plugin_crates();
        let packages: Vec<&str> = crates.iter().map(|c| c.package.as_str()).collect();
        build(&packages, &[], profile);
        crates
    });
    if !crates.iter().any(|c| c.lib == name) {
        let known: Vec<&str> = crates.iter().map(|c| c.lib.as_str()).collect();
        panic!("no plugin named {name:?}; the plugin crates build {known:?}");
    }
    target_dir().join(profile.dir()).join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// The `molt` binary, debug profile.
pub fn molt_binary() -> PathBuf {
    molt_binary_with(Profile::Debug)
}

/// The `molt` binary, built with `profile` (the benchmark wants [`Profile::Release`]).
pub fn molt_binary_with(profile: Profile) -> PathBuf {
    static BUILT: [OnceLock<()>; 2] = [OnceLock::new(), OnceLock::new()];
    BUILT[profile.index()].get_or_init(|| build(&["molt-supervisor"], &["--bin", "molt"], profile));
    target_dir()
        .join(profile.dir())
        .join(format!("molt{}", std::env::consts::EXE_SUFFIX))
}

/// A `cdylib` crate of the workspace.
#[derive(Debug, Clone)]
struct Crate {
    package: String,
    lib: String,
}

/// Every `cdylib` crate under `sample-plugins/` and `tests/fixtures/`.
fn plugin_crates() -> Vec<Crate> {
    let root = workspace_root();
    let mut crates = Vec::new();
    for parent in ["sample-plugins", "tests/fixtures"] {
        let dir = root.join(parent);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let manifest = entry.path().join("Cargo.toml");
            if let Ok(text) = std::fs::read_to_string(&manifest) {
                crates.extend(cdylib_crate(&text));
            }
        }
    }
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    crates
}

/// The package and library names of a manifest, if it builds a `cdylib`. A small line reader
/// is enough for the workspace's own manifests.
fn cdylib_crate(manifest: &str) -> Option<Crate> {
    let (mut section, mut package, mut lib, mut cdylib) = ("", None, None, false);
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let unquoted = value.trim_matches('"').to_owned();
        match (section, key) {
            ("[package]", "name") => package = Some(unquoted),
            ("[lib]", "name") => lib = Some(unquoted),
            ("[lib]", "crate-type") => cdylib = value.contains("\"cdylib\""),
            _ => {}
        }
    }
    let package = package?;
    cdylib.then(|| Crate {
        lib: lib.unwrap_or_else(|| package.replace('-', "_")),
        package,
    })
}

/// Runs `cargo build -p <packages> <extra>` into [`target_dir`]; panics with cargo's output.
fn build(packages: &[&str], extra: &[&str], profile: Profile) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .arg("build")
        .arg("--target-dir")
        .arg(target_dir())
        .args(extra)
        .env_remove("CARGO_TARGET_DIR");
    for package in packages {
        cmd.args(["-p", package]);
    }
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let output = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cdylib_manifests() {
        let m = "[package]\nname = \"fixture-x\"\n\n[lib]\nname = \"fixture_x\"\ncrate-type = [\"cdylib\"]\n";
        let c = cdylib_crate(m).unwrap();
        assert_eq!((c.package.as_str(), c.lib.as_str()), ("fixture-x", "fixture_x"));
        assert!(cdylib_crate("[package]\nname = \"fixture-base\"\n").is_none());
        let both = "[package]\nname = \"counter-v1\"\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n";
        assert_eq!(cdylib_crate(both).unwrap().lib, "counter_v1");
    }

    #[test]
    fn finds_the_workspace_plugins() {
        let libs: Vec<String> = plugin_crates().into_iter().map(|c| c.lib).collect();
        for name in [
            "counter_v1",
            "counter_v2",
            "fixture_panic_import",
            "fixture_no_entry",
        ] {
            assert!(libs.iter().any(|l| l == name), "{name} missing from {libs:?}");
        }
        assert!(
            !libs.iter().any(|l| l.contains("base")),
            "fixture-base is no plugin"
        );
    }
}
