//! molt in containers (issue 5): the image `deploy/build-image.sh` assembles without a registry,
//! run with `docker run`, its release volume and state directories bind-mounted from the host,
//! its ports published on 127.0.0.1 only.
//!
//! - `volume`: three containers share one release volume; `molt push` onto the volume upgrades
//!   all three in place (same container, same process, same start time), each keeping its count;
//! - `rolling`: `molt push --to … --to … --to …` over the control APIs: one pod at a time; a
//!   release that fails probation stops the push at the first pod, which rolls itself back
//!   while the others are never touched;
//! - `handoff`: two containers on one volume, each with its own state and traffic; `molt
//!   handoff` from the second to the first under load: the first holds the merge with no
//!   failed request and no acknowledged write lost; the second's restart starts empty;
//! - `snapshot`: `docker stop` (SIGTERM) writes a snapshot into the host state directory, and a
//!   new container on that directory comes back with the same count.
//!
//! Every test runs whenever `docker info` works; when it does not, each test prints one line
//! saying it is skipped and why, and returns. The image is built once per test process from
//! the debug `molt` the artifacts helper builds (see `molt_tests::docker`).

use molt_supervisor::control::Status;
use molt_tests::dir::TestDir;
use molt_tests::docker::{Container, Image, Inspect, Spec};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

#[path = "containers/handoff.rs"]
mod handoff;
#[path = "containers/rolling.rs"]
mod rolling;
#[path = "containers/snapshot.rs"]
mod snapshot;
#[path = "containers/volume.rs"]
mod volume;

/// The app every test serves.
const APP: &str = "counter";
/// The bearer token of the control APIs (they listen on 0.0.0.0 inside the container, so molt
/// requires one).
const TOKEN: &str = "container-tests-token";
/// Where the token file is mounted inside the containers.
const TOKEN_DIR: &str = "/var/run/molt";
/// How long a container gets to answer `/healthz` after `docker run`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a version change may take to show.
const SWAP_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the token file into `dir/secrets/` and returns that directory (mounted read-only at
/// [`TOKEN_DIR`]) and the file's host path (for `molt push --token-file`).
fn token_dir(dir: &TestDir) -> (PathBuf, PathBuf) {
    let file = dir.write("secrets/token", format!("{TOKEN}\n"));
    (dir.join("secrets"), file)
}

/// One `molt run` container: the volume at `/releases`, its own state directory at `/state`,
/// the token at `/var/run/molt/token`; traffic on 8080 and control on 7070, both published on
/// 127.0.0.1.
struct Pod {
    container: Container,
    /// A short name for messages (`a`, `b`, …).
    name: String,
    /// The host directory mounted at `/state`.
    state: PathBuf,
    http: reqwest::blocking::Client,
}

impl Pod {
    /// Starts a pod and waits until its control API answers `/healthz`. `extra` goes after the
    /// standard `molt run` arguments (`--probation 3s`, `--no-watch`, …).
    fn start(image: &Image, name: &str, volume: &Path, state: &Path, secrets: &Path, extra: &[&str]) -> Pod {
        let container = Spec::new(&format!("pod-{name}"))
            .mount(volume, "/releases")
            .mount(state, "/state")
            .mount_ro(secrets, TOKEN_DIR)
            .publish(8080)
            .publish(7070)
            .env("MOLT_LOG", "info")
            .args([
                "run",
                "--volume",
                "/releases",
                "--app",
                APP,
                "--listen",
                "0.0.0.0:8080",
                "--control",
                "0.0.0.0:7070",
                "--state-dir",
                "/state",
                "--token-file",
                &format!("{TOKEN_DIR}/token"),
            ])
            .args(extra.iter().copied())
            .start(image);
        let pod = Pod {
            container,
            name: name.to_owned(),
            state: state.to_owned(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("building an HTTP client"),
        };
        // docker's port proxy accepts connections before molt listens: wait for a real answer.
        pod.container
            .wait_for("an answer on /healthz", START_TIMEOUT, || {
                let resp = pod
                    .http
                    .get(pod.control_url("/healthz"))
                    .send()
                    .map_err(|e| e.to_string())?;
                match resp.status().is_success() {
                    true => Ok(()),
                    false => Err(format!("/healthz answered {}", resp.status())),
                }
            });
        pod
    }

    /// A URL on the published traffic port.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.container.port(8080))
    }

    /// The control API's base URL, as `molt push --to` takes it.
    fn control_base(&self) -> String {
        format!("http://{}", self.container.port(7070))
    }

    fn control_url(&self, path: &str) -> String {
        format!("{}{path}", self.control_base())
    }

    /// `GET /status`, or why not.
    fn try_status(&self) -> Result<Status, String> {
        self.http
            .get(self.control_url("/status"))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json::<Status>())
            .map_err(|e| format!("GET /status: {e}"))
    }

    /// `GET /status`; panics with the logs.
    fn status(&self) -> Status {
        self.try_status()
            .unwrap_or_else(|e| panic!("pod {}: {e}\n{}", self.name, self.logs()))
    }

    /// Waits until `/status` satisfies `done`; returns that status.
    fn wait_status(&self, what: &str, done: impl Fn(&Status) -> bool) -> Status {
        self.container.wait_for(what, SWAP_TIMEOUT, || {
            let status = self.try_status()?;
            if done(&status) {
                Ok(status)
            } else {
                Err(format!("status: {status:?}"))
            }
        })
    }

    /// Waits until `version` serves.
    fn wait_version(&self, version: &str) -> Status {
        self.wait_status(&format!("{APP} {version} serving"), |s| {
            s.ready && s.version.as_deref() == Some(version)
        })
    }

    /// A traffic request: (status code, body, `x-molt-version`).
    fn request(&self, method: reqwest::Method, path: &str) -> (u16, String, String) {
        let resp = self
            .http
            .request(method.clone(), self.url(path))
            .send()
            .unwrap_or_else(|e| panic!("pod {}: {method} {path}: {e}\n{}", self.name, self.logs()));
        let code = resp.status().as_u16();
        let version = resp
            .headers()
            .get("x-molt-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp
            .text()
            .unwrap_or_else(|e| panic!("pod {}: {method} {path}: reading the body: {e}", self.name));
        (code, body.trim().to_owned(), version)
    }

    /// `POST /incr`: the new count and the version that served it.
    fn incr(&self) -> (u64, String) {
        self.number(reqwest::Method::POST, "/incr")
    }

    /// `GET /count`: the count and the version that served it.
    fn count(&self) -> (u64, String) {
        self.number(reqwest::Method::GET, "/count")
    }

    fn number(&self, method: reqwest::Method, path: &str) -> (u64, String) {
        let (code, body, version) = self.request(method.clone(), path);
        assert_eq!(
            code,
            200,
            "pod {}: {method} {path} answered {code} {body:?} (version {version})\n{}",
            self.name,
            self.logs()
        );
        let n = body
            .parse()
            .unwrap_or_else(|_| panic!("pod {}: {method} {path}: {body:?} is no number", self.name));
        (n, version)
    }

    /// `n` increments, each checked: the counter goes `from + 1 ..= from + n` on `version`.
    fn incr_n(&self, from: u64, n: u64, version: &str) {
        for i in 1..=n {
            assert_eq!(
                self.incr(),
                (from + i, version.to_owned()),
                "pod {}: increment {i} of {n}",
                self.name
            );
        }
    }

    fn inspect(&self) -> Inspect {
        self.container.inspect()
    }

    fn logs(&self) -> String {
        self.container.logs()
    }

    /// The snapshot files in the host state directory.
    fn snapshots(&self) -> Vec<PathBuf> {
        snapshots_in(&self.state)
    }
}

/// `snapshot-*.molt` files in `dir`, sorted.
fn snapshots_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".molt"))
        })
        .collect();
    found.sort();
    found
}

/// Asserts that each pod is the same container, started once and never restarted, with the
/// same process, as `before` recorded.
fn assert_not_restarted(pods: &[Pod], before: &[Inspect]) {
    for (pod, before) in pods.iter().zip(before) {
        let after = pod.inspect();
        let same = (
            &after.id,
            &after.started_at,
            after.pid,
            after.restart_count,
            after.running,
        );
        assert_eq!(
            same,
            (&before.id, &before.started_at, before.pid, 0, true),
            "pod {}: the container must not have been restarted or replaced; before {before:?}, after {after:?}\n{}",
            pod.name,
            pod.logs()
        );
    }
}

/// The whole output of a CLI run, for messages.
fn text(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The logs of every pod, for messages.
fn all_logs(pods: &[Pod]) -> String {
    pods.iter().map(Pod::logs).collect::<Vec<_>>().join("\n")
}
