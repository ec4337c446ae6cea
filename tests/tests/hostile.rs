//! The catalogue of hostile input and faults (issue 11), through the real `molt` binary.
//!
//! Every case starts a supervisor serving counter v1 with a known count, does one bad thing,
//! and asserts three things: the refusal names what was refused and the check that failed;
//! the running version keeps serving with its exact count; and no file on the volume or in
//! the state directory changed (both trees are hashed before and after, FIFOs and symlinks
//! by kind and target, never opened).
//!
//! - `foreign`: libraries whose code is hostile: constructors that exit, abort or hang, an
//!   entry symbol that is an `int`, an ELF for another machine; `molt check` and uploads open
//!   them only in a child process; a library swapped on the volume while it is checked is
//!   never the one loaded;
//! - `control`: the control API under hostile clients: unauthenticated uploads (memory),
//!   oversized bodies, slow and idle connections, a connection flood, short tokens;
//! - `volume`: hostile files on the volume: `current` and `release.toml` as FIFOs, devices,
//!   directories, huge files, symlinks out of the volume, garbage;
//! - `state`: the state directory: a corrupt snapshot on every start, a second supervisor,
//!   failing snapshot writes, leftovers of a killed write.

use molt_tests::artifacts::plugin;
use molt_tests::dir::TestDir;
use molt_tests::process::{molt_within, MoltProcess, RunOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

#[path = "hostile/control.rs"]
mod control;
#[path = "hostile/foreign.rs"]
mod foreign;
#[path = "hostile/state.rs"]
mod state;
#[path = "hostile/volume.rs"]
mod volume;

/// The app every case serves.
const APP: &str = "counter";
/// How long a CLI command may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// One case's directories and its running supervisor.
struct Case {
    dir: TestDir,
    volume: PathBuf,
    state: PathBuf,
}

impl Case {
    /// A volume with counter v1 pushed and current.
    fn new(name: &str) -> Case {
        let dir = TestDir::new(name);
        let volume = dir.mkdir("volume");
        let state = dir.mkdir("state");
        let case = Case { dir, volume, state };
        ok(&["push", &lib("counter_v1"), "--volume", &path(&case.volume)]);
        case
    }

    /// `molt run` options: this volume and state directory, no periodic snapshots (so the
    /// state directory changes only at shutdown), run directory inside the test directory.
    fn opts<I: IntoIterator<Item = S>, S: Into<String>>(&self, extra: I) -> RunOptions {
        RunOptions::new(&self.volume, APP, &self.dir.mkdir("work")).args(
            [
                "--state-dir".to_owned(),
                path(&self.state),
                "--run-dir".to_owned(),
                path(&self.dir.mkdir("run")),
                "--snapshot-interval".to_owned(),
                "0s".to_owned(),
            ]
            .into_iter()
            .chain(extra.into_iter().map(Into::into)),
        )
    }

    /// Starts `molt run`, counts `n` more on v1, and returns it with the count it holds.
    fn serving(&self, opts: RunOptions, n: u64) -> (MoltProcess, u64) {
        let molt = MoltProcess::start(&opts);
        molt.wait_for_version("1.0.0");
        let start = count(&molt);
        let http = http();
        for _ in 0..n {
            let resp = http.post(molt.url("/incr")).send().expect("POST /incr");
            assert_eq!(resp.status().as_u16(), 200, "{}", molt.log());
        }
        assert_eq!(count(&molt), start + n);
        (molt, start + n)
    }

    /// The volume's and the state directory's files, hashed.
    fn trees(&self) -> Trees {
        Trees {
            volume: tree(&self.volume),
            state: tree(&self.state),
        }
    }
}

/// Hashes of every file under two directories.
#[derive(Debug, PartialEq, Eq)]
struct Trees {
    volume: BTreeMap<String, String>,
    state: BTreeMap<String, String>,
}

/// Every entry under `root` (recursively): a regular file by its sha256, a symlink by its
/// target, a directory as `dir`, anything else (FIFO, socket…) by its kind. Nothing but
/// regular files is opened.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("listing a directory").flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            // The lifecycle's own records: each supervisor's report of itself, rewritten on a
            // heartbeat, and the verdicts, where a refused release is recorded as bad (see
            // volume::SupervisorReport, volume::Verdict). They are meant to change.
            let parent = path.parent().and_then(|p| p.file_name());
            let record = parent.is_some_and(|p| p == "supervisors" || p == "verdicts");
            if record && kind_is_file(&path) {
                continue;
            }
            // A temporary file of an atomic write (a report, a verdict) can go between the
            // listing and this look: what is gone was never a change that stayed.
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("stat {}: {e}", path.display()),
            };
            let kind = meta.file_type();
            let what = if kind.is_symlink() {
                format!("symlink -> {}", std::fs::read_link(&path).unwrap().display())
            } else if kind.is_dir() {
                todo.push(path.clone());
                "dir".to_owned()
            } else if kind.is_file() {
                molt_supervisor::manifest::sha256_file(&path).expect("hashing a file")
            } else {
                format!("special {:?}", kind)
            };
            out.insert(rel, what);
        }
    }
    out
}

fn kind_is_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Asserts the supervisor still serves v1 with exactly `n`, and that `/healthz` answers.
fn still_serving(molt: &MoltProcess, n: u64) {
    let http = http();
    let resp = http.get(molt.url("/count")).send().expect("GET /count");
    let version = resp
        .headers()
        .get("x-molt-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(version, "1.0.0", "{}", molt.log());
    assert_eq!(resp.text().unwrap().trim(), n.to_string(), "{}", molt.log());
    let health = http
        .get(molt.control_url("/healthz"))
        .send()
        .expect("GET /healthz");
    assert_eq!(health.status().as_u16(), 200);
}

/// `GET /count`.
fn count(molt: &MoltProcess) -> u64 {
    let text = http()
        .get(molt.url("/count"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET /count: {e}\n{}", molt.log()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("GET /count {text:?}: {e}"))
}

/// A path as a CLI argument.
fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The built plugin `name` as a CLI argument.
fn lib(name: &str) -> String {
    path(&plugin(name))
}

/// Runs the CLI (bounded in time) with extra environment variables.
fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    if env.is_empty() {
        return molt_within(args, CLI_TIMEOUT);
    }
    let out = std::process::Command::new(molt_tests::artifacts::molt_binary())
        .args(args)
        .envs(env.iter().copied())
        .env("MOLT_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running molt");
    out
}

/// Runs the CLI, asserts exit 0, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = molt_within(args, CLI_TIMEOUT);
    assert!(
        out.status.success(),
        "molt {} exited {}:\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the CLI with `env`, asserts exit 1 (refused), returns stderr.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run_env(args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "molt {} should be refused:\n{}{stderr}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// An HTTP client.
fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building an HTTP client")
}

/// `molt run` on `case` that must be refused at start; returns its stderr.
fn start_refused(case: &Case, extra: &[&str]) -> String {
    let state = path(&case.state);
    let volume = path(&case.volume);
    let mut args = vec![
        "run",
        "--volume",
        &volume,
        "--app",
        APP,
        "--listen",
        "127.0.0.1:0",
        "--control",
        "127.0.0.1:0",
        "--state-dir",
        &state,
    ];
    args.extend_from_slice(extra);
    let out = molt_within(&args, CLI_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "molt run should be refused:\n{stderr}"
    );
    stderr
}
