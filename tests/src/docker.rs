//! A small Docker harness for the container tests: no registry, no Docker SDK, only the
//! `docker` CLI (`$DOCKER`, default `docker`).
//!
//! - [`image_or_skip`]: when no engine answers `docker info`, prints one line saying the test is
//!   skipped and why (straight to stderr, past the test harness's output capture, so a skip is
//!   never a silent pass) and returns `None`. Otherwise builds the image once per process with
//!   `deploy/build-image.sh --binary <the debug molt> --tag molt:test-<host>-<pid>` (a tag of
//!   its own, so concurrent test processes never race for one) and returns it.
//! - [`Spec`] / [`Container`]: `docker run -d` with a unique name, ports published on
//!   127.0.0.1 only (`-p 127.0.0.1::PORT`, then `docker port`), `docker inspect`, `docker logs`,
//!   `docker stop`; the container is removed (`docker rm -f -v`) when dropped, also when the
//!   test panics.
//! - Leftovers of test processes that were killed (containers labelled with their pid, images
//!   tagged with it) are removed by the next process on the same host that builds its image.
//!
//! When the tests run as an ordinary user against a rootful engine, containers run with the
//! test process's uid and gid, so that what they write into bind-mounted test directories stays
//! the user's to read and delete.

use crate::artifacts;
use std::ffi::OsString;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// How long one ordinary docker command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `docker info` may take to say whether an engine is there.
const INFO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the image build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// Container label: the pid of the test process that started it.
const PID_LABEL: &str = "molt-test.pid";
/// Container label: the host of that process.
const HOST_LABEL: &str = "molt-test.host";

/// The docker client to run.
fn program() -> OsString {
    std::env::var_os("DOCKER").unwrap_or_else(|| "docker".into())
}

/// What `docker info` said, once per process.
struct Engine {
    /// Rootless engines map the container's root to the user running them.
    rootless: bool,
}

/// Whether a Docker engine answers, or why not (one line).
fn engine() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let out = run(&["info", "--format", "{{json .SecurityOptions}}"], INFO_TIMEOUT)
                .map_err(|e| format!("cannot run docker: {e}"))?;
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let why = stderr
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("no output");
                return Err(format!("`docker info` failed ({}): {why}", out.status));
            }
            Ok(Engine {
                rootless: String::from_utf8_lossy(&out.stdout).contains("rootless"),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The image built from this tree's debug `molt`.
#[derive(Debug)]
pub struct Image {
    tag: String,
}

impl Image {
    /// Its tag, e.g. `molt:test-myhost-1234`.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// The image, built once per process; or `None`, after printing one line saying that `test` is
/// skipped and why, when no Docker engine answers. Panics if the engine answers but the image
/// cannot be built (that is a failure, not a reason to skip).
pub fn image_or_skip(test: &str) -> Option<&'static Image> {
    if let Err(why) = engine() {
        // Not `eprintln!`: the test harness captures that and shows it only on failure.
        let _ = writeln!(std::io::stderr(), "test {test}: SKIPPED: no Docker engine: {why}");
        return None;
    }
    static IMAGE: OnceLock<Image> = OnceLock::new();
    Some(IMAGE.get_or_init(build_image))
}

fn build_image() -> Image {
    reap_leftovers();
    let binary = artifacts::molt_binary();
    let plugin = artifacts::plugin("counter_v1");
    let tag = format!("molt:test-{}-{}", host(), std::process::id());
    let script = artifacts::workspace_root().join("deploy/build-image.sh");
    let started = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--binary")
        .arg(&binary)
        .args(["--tag", &tag])
        .arg("--check-plugin")
        .arg(&plugin)
        .env("DOCKER", program());
    let out = output(cmd, BUILD_TIMEOUT).unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} --binary {} --tag {tag} failed ({}):\n{}{}",
        script.display(),
        binary.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = writeln!(
        std::io::stderr(),
        "docker: built {tag} from {} in {:.1?}",
        binary.display(),
        started.elapsed()
    );
    Image { tag }
}

/// Removes containers and images that test processes of this host left behind when they were
/// killed before they could clean up (their pid no longer runs).
fn reap_leftovers() {
    if !Path::new("/proc/self").exists() {
        return; // no way to tell which processes still run
    }
    let host = host();
    let alive = |pid: &str| {
        pid.parse::<u32>()
            .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists())
    };
    let filter = format!("label={HOST_LABEL}={host}");
    let format = format!("{{{{.Names}}}}\t{{{{.Label \"{PID_LABEL}\"}}}}");
    if let Ok(out) = run(
        &["ps", "-a", "--filter", &filter, "--format", &format],
        COMMAND_TIMEOUT,
    ) {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((name, pid)) = line.split_once('\t') {
                if !alive(pid) {
                    let _ = run(&["rm", "-f", "-v", name], COMMAND_TIMEOUT);
                }
            }
        }
    }
    let prefix = format!("test-{host}-");
    let images = run(&["image", "ls", "molt", "--format", "{{.Tag}}"], COMMAND_TIMEOUT);
    if let Ok(out) = images {
        for tag in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(pid) = tag.strip_prefix(&prefix) {
                if !alive(pid) {
                    let _ = run(&["rmi", &format!("molt:{tag}")], COMMAND_TIMEOUT);
                }
            }
        }
    }
}

/// This host's name, reduced to what image tags and container names allow.
fn host() -> String {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let name: String = raw
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(24)
            .collect();
        let name = name.trim_matches('-');
        if name.is_empty() {
            "host".to_owned()
        } else {
            name.to_owned()
        }
    })
    .clone()
}

/// How to run one container.
#[derive(Debug, Clone)]
pub struct Spec {
    label: String,
    options: Vec<String>,
    publish: Vec<u16>,
    args: Vec<String>,
}

impl Spec {
    /// A container whose name contains `label` (say, `pod-a`).
    pub fn new(label: &str) -> Spec {
        Spec {
            label: label.to_owned(),
            options: Vec::new(),
            publish: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Bind-mounts the host directory or file `host` at `target`.
    pub fn mount(mut self, host: &Path, target: &str) -> Spec {
        self.options.push("-v".into());
        self.options.push(format!("{}:{target}", absolute(host)));
        self
    }

    /// Bind-mounts `host` at `target`, read-only.
    pub fn mount_ro(mut self, host: &Path, target: &str) -> Spec {
        self.options.push("-v".into());
        self.options.push(format!("{}:{target}:ro", absolute(host)));
        self
    }

    /// Publishes the container's TCP `port` on an ephemeral port of 127.0.0.1.
    pub fn publish(mut self, port: u16) -> Spec {
        self.publish.push(port);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Spec {
        self.options.push("-e".into());
        self.options.push(format!("{key}={value}"));
        self
    }

    /// Arguments after the image (the entrypoint is `molt`: `run`, `--volume`, …).
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Spec {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `docker run -d` of `image`; panics (with the container's logs) if it does not start.
    pub fn start(self, image: &Image) -> Container {
        static N: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let host = host();
        let label: String = self
            .label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let name = format!(
            "molt-test-{host}-{pid}-{}-{label}",
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            name.clone(),
            "--label".into(),
            format!("{PID_LABEL}={pid}"),
            "--label".into(),
            format!("{HOST_LABEL}={host}"),
        ];
        if let Some(user) = user(engine().expect("docker answered before")) {
            args.extend(["--user".into(), user]);
        }
        for port in &self.publish {
            args.extend(["-p".into(), format!("127.0.0.1::{port}")]);
        }
        args.extend(self.options);
        args.push(image.tag.clone());
        args.extend(self.args);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&argv, COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("docker run: {e}"));
        // From here on the container is removed when this value drops, started or not.
        let mut container = Container {
            name,
            id: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            ports: Vec::new(),
        };
        assert!(
            out.status.success(),
            "docker {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for port in self.publish {
            let published = container.published(port);
            container.ports.push((port, published));
        }
        container
    }
}

/// The `--user` to run containers as: the test process's own uid and gid when it is not root
/// and the engine is rootful (so bind-mounted directories stay the user's); else the image's.
fn user(engine: &Engine) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective uid and gid.
    let me = std::fs::metadata("/proc/self").ok()?;
    (me.uid() != 0 && !engine.rootless).then(|| format!("{}:{}", me.uid(), me.gid()))
}

fn absolute(path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = path
        .to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()));
    assert!(
        !text.contains(':'),
        "{text}: a path with ':' cannot be bind-mounted with -v"
    );
    text.to_owned()
}

/// A running (or exited) container; removed when dropped.
#[derive(Debug)]
pub struct Container {
    name: String,
    id: String,
    ports: Vec<(u16, SocketAddr)>,
}

/// What `docker inspect` says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspect {
    /// The full container id.
    pub id: String,
    /// `State.Status`: `running`, `exited`, …
    pub status: String,
    /// `State.Running`.
    pub running: bool,
    /// `State.Pid` (the host pid of its first process; 0 once stopped).
    pub pid: u64,
    /// `State.ExitCode`.
    pub exit_code: i64,
    /// `State.OOMKilled`.
    pub oom_killed: bool,
    /// `State.StartedAt`.
    pub started_at: String,
    /// `State.FinishedAt`.
    pub finished_at: String,
    /// `RestartCount`.
    pub restart_count: u64,
}

impl Container {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its id, as `docker run` printed it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the container's TCP `port` is published on 127.0.0.1 (it must have been asked for
    /// with [`Spec::publish`]).
    pub fn port(&self, port: u16) -> SocketAddr {
        self.ports
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, addr)| *addr)
            .unwrap_or_else(|| panic!("port {port} of {} was not published", self.name))
    }

    /// `docker port NAME PORT/tcp`, the 127.0.0.1 line.
    fn published(&self, port: u16) -> SocketAddr {
        let out = self.docker(&["port", &self.name, &format!("{port}/tcp")]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter_map(|l| l.trim().parse::<SocketAddr>().ok())
            .find(|a| a.ip().is_loopback())
            .unwrap_or_else(|| {
                panic!(
                    "docker port {} {port}/tcp gave no 127.0.0.1 address: {text:?} {}\n{}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr),
                    self.logs()
                )
            })
    }

    /// `docker logs` (stdout and stderr), for failure messages; never panics.
    pub fn logs(&self) -> String {
        match run(&["logs", &self.name], COMMAND_TIMEOUT) {
            Ok(out) => format!(
                "--- docker logs {} ({}) ---\n{}{}--- end of logs ---",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("(docker logs {} failed: {e})", self.name),
        }
    }

    /// `docker inspect`.
    pub fn inspect(&self) -> Inspect {
        let out = self.docker(&["inspect", "--type", "container", &self.name]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("docker inspect {}: not JSON: {e}", self.name));
        let c = &doc[0];
        let state = &c["State"];
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        Inspect {
            id: text(&c["Id"]),
            status: text(&state["Status"]),
            running: state["Running"].as_bool().unwrap_or(false),
            pid: state["Pid"].as_u64().unwrap_or(0),
            exit_code: state["ExitCode"].as_i64().unwrap_or(-1),
            oom_killed: state["OOMKilled"].as_bool().unwrap_or(false),
            started_at: text(&state["StartedAt"]),
            finished_at: text(&state["FinishedAt"]),
            restart_count: c["RestartCount"].as_u64().unwrap_or(u64::MAX),
        }
    }

    /// `docker stop -t GRACE` (SIGTERM, then SIGKILL after `grace`); returns the state after.
    pub fn stop(&self, grace: Duration) -> Inspect {
        let secs = grace.as_secs().max(1).to_string();
        self.docker(&["stop", "-t", &secs, &self.name]);
        self.inspect()
    }

    /// Polls `probe` (every 50 ms) until it returns `Ok`, for at most `timeout`. Panics with
    /// the last error and the container's logs when the time is up, or once the container
    /// is found not running (checked every second).
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<T, String>,
    ) -> T {
        let started = Instant::now();
        let mut next_check = started + Duration::from_secs(1);
        loop {
            let last = match probe() {
                Ok(value) => return value,
                Err(e) => e,
            };
            if Instant::now() >= next_check {
                next_check += Duration::from_secs(1);
                let state = self.inspect();
                assert!(
                    state.running,
                    "{}: waiting for {what}, the container stopped ({state:?}); last: {last}\n{}",
                    self.name,
                    self.logs()
                );
            }
            assert!(
                started.elapsed() < timeout,
                "{}: no {what} within {timeout:?}; last: {last}\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a docker command about this container; panics with its stderr and the logs.
    fn docker(&self, args: &[&str]) -> Output {
        let out = run(args, COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")));
        assert!(
            out.status.success(),
            "docker {} failed ({}): {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        out
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(&["rm", "-f", "-v", &self.name], COMMAND_TIMEOUT);
    }
}

/// `docker ARGS`, bounded by `timeout`.
fn run(args: &[&str], timeout: Duration) -> Result<Output, String> {
    let mut cmd = Command::new(program());
    cmd.args(args);
    output(cmd, timeout)
}

/// Runs `cmd` to completion with its output captured; kills it after `timeout`.
fn output(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(|e| format!("waiting for {:?}: {e}", cmd.get_program())),
        Err(_) => {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            Err(format!("{cmd:?} did not finish within {timeout:?}; killed"))
        }
    }
}
