//! `molt run` end to end (issue 3): the real `molt` binary on ephemeral ports, real plugins
//! pushed with the real CLI, a real HTTP client on its sockets.
//!
//! - `lifecycle`: push v1, 137 increments, push v2 in place (same pid), roll back through the
//!   control API, SIGTERM, restart on the same volume: the count survives every step;
//! - `refusals`: hand-made releases that must be refused (sha256 mismatch, a library path out
//!   of its release directory, a non-ELF library) while the running version keeps counting;
//! - `control`: the bearer token on mutating calls, the open read-only calls, and `/metrics`
//!   through `promtool check metrics`;
//! - `startup`: refusals at start-up (an exposed control API without a token, a corrupt
//!   snapshot) and `--discard-corrupt-state`;
//! - `cli`: `push`, `activate`, `releases`, `status`, `check` and their exit codes;
//! - `demo`: `molt demo` with the built plugins;
//! - `handoff`: `molt handoff` moves a state once (and refuses, leaving both states, on a
//!   panicking merge, a missing merge hook, an unreachable receiver, an impossible grace
//!   period); a lost merge answer is settled by the receiver's record; a receiver killed
//!   mid-merge leaves its state and `--resolve` serves the departing one again;
//!   `--handoff-on-stop`; `molt absorb` merges an orphan snapshot once;
//! - `signing`: `molt keygen`, signed pushes, `--trusted-key`: every signature refusal (volume
//!   and upload paths) before the library is opened, and a key rotation;
//! - `authoring`: the `tick` hook across swaps, a panicking tick contained and reported;
//! - `serving`: the volume watcher is not woken by reads of `current`; handlers that block
//!   (a fixture whose handlers wait or sleep) do not stop other connections being served;
//! - `tables`: kv v3 → v4 (a record schema change) and back under writes, 0 failed and 0
//!   lost; the tables restored after a restart; a record the hook refuses named in the refusal;
//! - `rolling`: `molt push --to … --to …` over two supervisors, and a release that fails
//!   probation stopping it at the first;
//! - `confirmed`: `molt push/activate --volume` wait for the supervisors: a refusal exits 1,
//!   puts `current` back and marks the release bad; no supervisor is said; concurrent
//!   activations serialize;
//! - `rollbacks`: v1 → v2 → v3, rollback, rollback = v1, by volume and by control;
//! - `boot`: a restart after refused pushes serves the snapshot's release; a release that
//!   kills the process on load is skipped on the next start;
//! - `prune`: retention keeps what it must.
//!
//! Every test has its own directory and processes, and waits with deadlines.

use molt_tests::artifacts::plugin;
use molt_tests::dir::TestDir;
use molt_tests::process::{molt_within, MoltProcess, RunOptions};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

#[path = "daemon/authoring.rs"]
mod authoring;
#[path = "daemon/boot.rs"]
mod boot;
#[path = "daemon/cli.rs"]
mod cli;
#[path = "daemon/confirmed.rs"]
mod confirmed;
#[path = "daemon/control.rs"]
mod control;
#[path = "daemon/demo.rs"]
mod demo;
#[path = "daemon/handoff.rs"]
mod handoff;
#[path = "daemon/lifecycle.rs"]
mod lifecycle;
#[path = "daemon/prune.rs"]
mod prune;
#[path = "daemon/refusals.rs"]
mod refusals;
#[path = "daemon/rollbacks.rs"]
mod rollbacks;
#[path = "daemon/rolling.rs"]
mod rolling;
#[path = "daemon/serving.rs"]
mod serving;
#[path = "daemon/signing.rs"]
mod signing;
#[path = "daemon/startup.rs"]
mod startup;
#[path = "daemon/tables.rs"]
mod tables;

/// The app every test serves.
const APP: &str = "counter";
/// How long a CLI command may take (a rolling push waits for probations).
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a version change or a refusal may take to show in `/status`.
const SHOW_TIMEOUT: Duration = Duration::from_secs(20);

/// One test's directories: a release volume, a state directory, a run directory for library
/// copies, and a work directory for the process's address file and log.
struct Env {
    dir: TestDir,
    volume: PathBuf,
    state: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = TestDir::new(name);
        let volume = dir.mkdir("volume");
        let state = dir.mkdir("state");
        Env { dir, volume, state }
    }

    /// `molt run` options on this volume and state directory, with the run directory inside
    /// the test directory (not the system temp dir, which may be mounted noexec).
    fn opts<I: IntoIterator<Item = S>, S: Into<String>>(&self, extra: I) -> RunOptions {
        RunOptions::new(&self.volume, APP, &self.dir.mkdir("work")).args(
            [
                "--state-dir".to_owned(),
                path(&self.state),
                "--run-dir".to_owned(),
                path(&self.dir.mkdir("run")),
            ]
            .into_iter()
            .chain(extra.into_iter().map(Into::into)),
        )
    }

    /// Starts `molt run` with `extra` arguments.
    fn start<I: IntoIterator<Item = S>, S: Into<String>>(&self, extra: I) -> MoltProcess {
        MoltProcess::start(&self.opts(extra))
    }

    /// `<volume>/counter`.
    fn app_dir(&self) -> PathBuf {
        self.volume.join(APP)
    }

    /// What `<volume>/counter/current` names.
    fn current(&self) -> String {
        read(&self.app_dir().join("current")).trim().to_owned()
    }

    /// `molt push LIB --volume VOLUME`, asserting success.
    fn push(&self, library: &Path) {
        ok(&["push", &path(library), "--volume", &path(&self.volume)]);
    }

    /// Points `current` at `version` the way an operator's script would: a temp file in the
    /// same directory, renamed over `current`.
    fn point_current_at(&self, version: &str) {
        let tmp = self.app_dir().join(format!(".current.by-hand-{version}"));
        std::fs::write(&tmp, format!("{version}\n")).expect("writing the temp pointer");
        std::fs::rename(&tmp, self.app_dir().join("current")).expect("renaming it over current");
    }

    /// The snapshot files in the state directory, sorted by name (oldest first).
    fn snapshots(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.state)
            .expect("listing the state directory")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with("snapshot-") && name.ends_with(".molt")
            })
            .collect();
        files.sort();
        files
    }
}

/// A path as a CLI argument.
fn path(p: &Path) -> String {
    p.display().to_string()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The `molt` CLI, bounded in time.
fn run(args: &[&str]) -> Output {
    molt_within(args, CLI_TIMEOUT)
}

/// Stdout and stderr of a CLI run, for assertions and messages.
fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the CLI, asserts exit 0, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "molt {} exited {}:\n{stdout}{stderr}",
        args.join(" "),
        out.status
    );
    stdout
}

/// Runs the CLI, asserts exit `code`, returns stdout and stderr.
fn fails(code: i32, args: &[&str]) -> (String, String) {
    let out = run(args);
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "molt {} should exit {code}:\n{stdout}{stderr}",
        args.join(" ")
    );
    (stdout, stderr)
}

/// An HTTP client that keeps its connection alive between requests.
fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building an HTTP client")
}

/// One answer: status, `x-molt-version`, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    version: String,
    body: String,
}

fn answer(resp: reqwest::blocking::Response) -> Answer {
    let status = resp.status().as_u16();
    let version = resp
        .headers()
        .get("x-molt-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.text().expect("reading a body");
    Answer {
        status,
        version,
        body,
    }
}

/// `GET /count` on `molt`: the count and the version that served it; panics unless 200.
fn count(http: &reqwest::blocking::Client, molt: &MoltProcess) -> (u64, String) {
    let a = answer(
        http.get(molt.url("/count"))
            .send()
            .unwrap_or_else(|e| panic!("GET /count: {e}\n{}", molt.log())),
    );
    assert_eq!(a.status, 200, "GET /count: {a:?}\n{}", molt.log());
    let n = a
        .body
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("GET /count body {a:?}: {e}"));
    (n, a.version)
}

/// `POST /incr` `n` times; each must be 200 and served by `version`; returns the last total.
fn incr(http: &reqwest::blocking::Client, molt: &MoltProcess, n: u64, version: &str) -> u64 {
    let mut last = 0;
    for _ in 0..n {
        let a = answer(
            http.post(molt.url("/incr"))
                .send()
                .unwrap_or_else(|e| panic!("POST /incr: {e}\n{}", molt.log())),
        );
        assert_eq!(
            (a.status, a.version.as_str()),
            (200, version),
            "POST /incr: {a:?}\n{}",
            molt.log()
        );
        last = a.body.trim().parse().expect("POST /incr answers the total");
    }
    last
}

/// The built plugin `name` as a CLI argument.
fn lib(name: &str) -> String {
    path(&plugin(name))
}

/// The directory the debug plugins are built into.
fn plugin_dir() -> PathBuf {
    plugin("counter_v1")
        .parent()
        .expect("a plugin has a directory")
        .to_owned()
}

/// `molt run` with these arguments must exit by itself with 1; returns its stderr.
fn run_refused(env: &Env, extra: &[&str]) -> String {
    let (state, run_dir) = (path(&env.state), path(&env.dir.mkdir("run")));
    let volume = path(&env.volume);
    let mut args = vec![
        "run",
        "--volume",
        &volume,
        "--app",
        APP,
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        &state,
        "--run-dir",
        &run_dir,
    ];
    args.extend_from_slice(extra);
    let (_, stderr) = fails(1, &args);
    stderr
}
