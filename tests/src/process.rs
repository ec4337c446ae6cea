//! A real `molt run` process for end-to-end tests and the benchmark: started on ephemeral ports
//! (`--listen 127.0.0.1:0 --control 127.0.0.1:0 --addr-file …`), so tests never race for a port,
//! stopped with SIGTERM, killed if a test panics.

use crate::artifacts;
use molt_supervisor::control::{ControlClient, Status};
use molt_supervisor::daemon::BoundAddrs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `molt run`.
pub struct MoltProcess {
    child: Option<Child>,
    /// What it bound, and its pid.
    pub addrs: BoundAddrs,
    log: PathBuf,
}

/// How to start one.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `molt` binary.
    pub binary: PathBuf,
    /// The release volume.
    pub volume: PathBuf,
    /// The app.
    pub app: String,
    /// Where its addr file and log go.
    pub work: PathBuf,
    /// Further arguments (`--state-dir`, `--token-file`, `--probation`, …).
    pub args: Vec<String>,
    /// Further environment variables.
    pub env: Vec<(String, String)>,
}

impl RunOptions {
    /// The debug `molt` serving `app` from `volume`, with its files in `work`.
    pub fn new(volume: &Path, app: &str, work: &Path) -> RunOptions {
        RunOptions {
            binary: artifacts::molt_binary(),
            volume: volume.to_owned(),
            app: app.to_owned(),
            work: work.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> RunOptions {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> RunOptions {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

impl MoltProcess {
    /// Starts `molt run` and waits (up to 60 s) until it has written its address file, which
    /// it does once it listens and has loaded what `current` names.
    pub fn start(opts: &RunOptions) -> MoltProcess {
        std::fs::create_dir_all(&opts.work).expect("creating the work directory");
        let addr_file = opts.work.join("addrs.json");
        let _ = std::fs::remove_file(&addr_file);
        let log = opts.work.join(format!("molt-{}.log", unique()));
        let child = Command::new(&opts.binary)
            .args([
                "run",
                "--listen",
                "127.0.0.1:0",
                "--control",
                "127.0.0.1:0",
                "--app",
                &opts.app,
            ])
            .arg("--volume")
            .arg(&opts.volume)
            .arg("--addr-file")
            .arg(&addr_file)
            .args(&opts.args)
            .env("MOLT_LOG", "info")
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("creating the log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", opts.binary.display()));
        let mut process = MoltProcess {
            child: Some(child),
            addrs: placeholder_addrs(),
            log,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while !addr_file.exists() {
            if let Some(status) = process.child_mut().try_wait().expect("polling molt run") {
                panic!("molt run exited early ({status}):\n{}", process.log());
            }
            assert!(
                Instant::now() < until,
                "molt run did not start within 60 s:\n{}",
                process.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = std::fs::read(&addr_file).expect("reading the address file");
        process.addrs = serde_json::from_slice(&text).expect("parsing the address file");
        process
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the process was already stopped")
    }

    /// The OS pid of the child process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A URL on the app traffic port, e.g. `url("/count")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.listen)
    }

    /// The control API's base URL.
    pub fn control_base(&self) -> String {
        format!("http://{}", self.addrs.control)
    }

    /// A URL on the control port, e.g. `control_url("/status")`.
    pub fn control_url(&self, path: &str) -> String {
        format!("{}{path}", self.control_base())
    }

    /// A control API client (with `token`, when given).
    pub fn control(&self, token: Option<&str>) -> ControlClient {
        ControlClient::new(&self.control_base(), token.map(str::to_owned))
    }

    /// `GET /status`.
    pub fn status(&self) -> Status {
        self.control(None)
            .status()
            .unwrap_or_else(|e| panic!("GET /status: {e}\n{}", self.log()))
    }

    /// Waits (up to `timeout`) until `/status` satisfies `done`; returns that status.
    pub fn wait_status(&self, timeout: Duration, what: &str, done: impl Fn(&Status) -> bool) -> Status {
        let until = Instant::now() + timeout;
        loop {
            let status = self.status();
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}; last status {status:#?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `version` serves.
    pub fn wait_for_version(&self, version: &str) -> Status {
        self.wait_status(Duration::from_secs(30), &format!("version {version}"), |s| {
            s.version.as_deref() == Some(version)
        })
    }

    /// The process's log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The file the log is written to; it outlives the process (read it after
    /// [`MoltProcess::terminate`]).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Sends SIGTERM and waits (up to 30 s) for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the process was already stopped");
        signal(child.id(), "TERM");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for molt run") {
                return status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                panic!("molt run did not exit within 30 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for MoltProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the `molt` CLI with `args` and returns its output (whatever the exit code).
pub fn molt(args: &[&str]) -> Output {
    Command::new(artifacts::molt_binary())
        .args(args)
        .env("MOLT_LOG", "warn")
        .output()
        .expect("running molt")
}

/// Runs the `molt` CLI with `args` and returns its output, like [`molt`], but gives it at most
/// `timeout`: past that it is killed and the test panics with what it printed so far. For
/// commands that should end by themselves but could hang if broken (`molt run` refusing to
/// start, a rolling push, the demo).
pub fn molt_within(args: &[&str], timeout: Duration) -> Output {
    let dir = tempfile::Builder::new()
        .prefix("molt-cli-")
        .tempdir_in({
            let parent = artifacts::target_dir().join("tmp");
            std::fs::create_dir_all(&parent).expect("creating the tmp directory");
            parent
        })
        .expect("creating a directory for the output");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let file = |path: &Path| std::fs::File::create(path).expect("creating an output file");
    let mut child = Command::new(artifacts::molt_binary())
        .args(args)
        .env("MOLT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .spawn()
        .expect("running molt");
    let until = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for molt") {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "molt {} did not exit within {timeout:?}; stdout:\n{}\nstderr:\n{}",
                args.join(" "),
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

/// `molt push LIB --volume VOLUME`, asserting success.
pub fn push(library: &Path, volume: &Path) {
    let out = molt(&[
        "push",
        &library.to_string_lossy(),
        "--volume",
        &volume.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "molt push {} failed: {}{}",
        library.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends a signal (`TERM`, `KILL`, …) with the `kill` command (no `unsafe` outside the loader).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{name} {pid} failed");
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn placeholder_addrs() -> BoundAddrs {
    BoundAddrs {
        listen: ([127, 0, 0, 1], 0).into(),
        control: ([127, 0, 0, 1], 0).into(),
        pid: 0,
    }
}
