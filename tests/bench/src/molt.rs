//! A release-built `molt run` process the benchmark drives, and the `molt` CLI.
//!
//! Unlike the tests' harness (`molt_tests::process`), the traffic port can be chosen: the
//! restart baseline starts a second process on the port of the first, as a Kubernetes Service
//! keeps its address across a rolling restart.

use anyhow::{bail, ensure, Context};
use molt_supervisor::control::{ControlClient, Status};
use molt_supervisor::daemon::BoundAddrs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How to start one `molt run`.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `molt` binary.
    pub binary: PathBuf,
    /// The release volume.
    pub volume: PathBuf,
    /// The app.
    pub app: String,
    /// Where its address file, log and private library copies go.
    pub work: PathBuf,
    /// Its state directory.
    pub state_dir: PathBuf,
    /// The traffic address (port 0: any free port).
    pub listen: SocketAddr,
    /// More `molt run` arguments.
    pub extra: Vec<String>,
}

impl Setup {
    /// `app` from `volume`, on any free port, with its files in `work`.
    pub fn new(binary: &Path, volume: &Path, app: &str, work: &Path) -> Setup {
        Setup {
            binary: binary.to_owned(),
            volume: volume.to_owned(),
            app: app.to_owned(),
            work: work.to_owned(),
            state_dir: work.join("state"),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra: Vec::new(),
        }
    }
}

/// A running `molt run`, killed when dropped.
pub struct Molt {
    child: Option<Child>,
    /// What it bound.
    pub addrs: BoundAddrs,
    log: PathBuf,
    control: ControlClient,
}

impl Molt {
    /// Starts `molt run` and waits (up to 60 s) until it serves: it writes its address file
    /// once it listens and has loaded what `current` names.
    pub fn start(setup: &Setup) -> anyhow::Result<Molt> {
        let run_dir = setup.work.join("run");
        for dir in [&setup.work, &run_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let addr_file = setup.work.join("addrs.json");
        let _ = std::fs::remove_file(&addr_file);
        let log = setup.work.join(format!("molt-{}.log", unique()));
        let child = Command::new(&setup.binary)
            .args(["run", "--control", "127.0.0.1:0", "--app", &setup.app])
            .arg("--listen")
            .arg(setup.listen.to_string())
            .arg("--volume")
            .arg(&setup.volume)
            .arg("--state-dir")
            .arg(&setup.state_dir)
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--addr-file")
            .arg(&addr_file)
            .args(&setup.extra)
            .env("MOLT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?)
            .spawn()
            .with_context(|| format!("starting {}", setup.binary.display()))?;
        let mut molt = Molt {
            child: Some(child),
            addrs: BoundAddrs {
                listen: setup.listen,
                control: setup.listen,
                pid: 0,
            },
            log,
            control: ControlClient::new("http://127.0.0.1:0", None),
        };
        let until = Instant::now() + Duration::from_secs(60);
        while !addr_file.exists() {
            if let Some(status) = molt.child_mut()?.try_wait()? {
                bail!("molt run exited early ({status}):\n{}", molt.log());
            }
            ensure!(
                Instant::now() < until,
                "molt run did not start within 60 s:\n{}",
                molt.log()
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        let text = std::fs::read(&addr_file).context("reading the address file")?;
        molt.addrs = serde_json::from_slice(&text).context("parsing the address file")?;
        molt.control = ControlClient::new(&format!("http://{}", molt.addrs.control), None);
        Ok(molt)
    }

    fn child_mut(&mut self) -> anyhow::Result<&mut Child> {
        self.child.as_mut().context("molt run was already stopped")
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.addrs.pid
    }

    /// The traffic address.
    pub fn listen(&self) -> SocketAddr {
        self.addrs.listen
    }

    /// The control API's address.
    pub fn control_addr(&self) -> SocketAddr {
        self.addrs.control
    }

    /// `GET /status`.
    pub fn status(&self) -> anyhow::Result<Status> {
        self.control.status().context("GET /status")
    }

    /// Waits (up to 30 s) until `/status` satisfies `done`.
    pub fn wait_status(&self, what: &str, done: impl Fn(&Status) -> bool) -> anyhow::Result<Status> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status()?;
            if done(&status) {
                return Ok(status);
            }
            ensure!(
                Instant::now() < until,
                "timed out waiting for {what}: {status:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `POST /activate?version=V` through the control API: returns once swapped, with the
    /// pause the supervisor measured (µs), when it swapped.
    pub fn activate(&self, version: &str) -> anyhow::Result<Option<u64>> {
        let outcome = self
            .control
            .activate(version)
            .with_context(|| format!("activating {version}"))?;
        Ok(outcome.swap.map(|s| s.pause_us))
    }

    /// `GET path` on the traffic port, as text.
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("http://{}{path}", self.addrs.listen);
        let text = reqwest::blocking::get(&url)
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .with_context(|| format!("GET {url}"))?;
        Ok(text)
    }

    /// `GET /count` of the counter app.
    pub fn count(&self) -> anyhow::Result<u64> {
        let text = self.get_text("/count")?;
        text.trim()
            .parse()
            .with_context(|| format!("GET /count said {text:?}"))
    }

    /// Resident memory, from `/proc/PID/status` (`VmRSS`), in KiB.
    pub fn rss_kb(&self) -> anyhow::Result<u64> {
        self.proc_status("VmRSS:")
    }

    /// Its number of threads, from `/proc/PID/status`.
    pub fn threads(&self) -> anyhow::Result<u64> {
        self.proc_status("Threads:")
    }

    /// A number from `/proc/PID/status` (the unit, if any, dropped).
    fn proc_status(&self, field: &str) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in {path}"))
    }

    /// How many distinct files whose name contains `needle` are mapped into the process
    /// (`/proc/PID/maps`): the libraries still loaded.
    pub fn mapped_files(&self, needle: &str) -> anyhow::Result<usize> {
        let path = format!("/proc/{}/maps", self.pid());
        let maps = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let mut files: Vec<&str> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|f| f.contains(needle))
            .collect();
        files.sort_unstable();
        files.dedup();
        Ok(files.len())
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (the process drains and writes its snapshot) and waits for the exit.
    pub fn terminate(mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("molt run was already stopped")?;
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("running kill")?;
        ensure!(killed.success(), "kill -TERM {} failed", child.id());
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > until {
                let _ = child.kill();
                bail!("molt run did not exit within 30 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

impl Drop for Molt {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `molt push LIB --volume VOLUME [--no-activate]` with `binary`; an error unless it succeeds.
pub fn push(binary: &Path, library: &Path, volume: &Path, activate: bool) -> anyhow::Result<()> {
    let mut cmd = Command::new(binary);
    cmd.arg("push").arg(library).arg("--volume").arg(volume);
    if !activate {
        cmd.arg("--no-activate");
    }
    let out = cmd
        .env("MOLT_LOG", "warn")
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A port free on the loopback interface now (bound, read, released).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
