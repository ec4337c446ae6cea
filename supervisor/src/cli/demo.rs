//! `molt demo`: the embedded default. A temporary volume, a real `molt run` child process,
//! counter v1 pushed and serving, then v2 pushed while clients keep incrementing; the count,
//! the PID and the measured pause tell the story; then a rollback through the control API.
//! `molt demo --scale-down` tells the other story: two pods, one handed to the other
//! (`scale_down`).

mod scale_down;

use crate::cli::push::to_volume;
use crate::control::{ControlClient, Status};
use crate::daemon::BoundAddrs;
use crate::volume::Volume;
use anyhow::{bail, ensure, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `molt demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where libcounter_v1.so and libcounter_v2.so are [default: beside the molt binary, built
    /// there with cargo when missing and molt runs from its source tree].
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// Client threads sending `POST /incr`.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Show a scale-down instead: two supervisors under traffic, the second's state handed to
    /// the first (`molt handoff`), nothing lost.
    #[arg(long)]
    scale_down: bool,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let plugins = match args.plugins {
        Some(dir) => dir,
        None => sample_plugins()?,
    };
    if args.scale_down {
        return scale_down::run(&plugins, args.clients);
    }
    let (v1, v2) = (plugins.join("libcounter_v1.so"), plugins.join("libcounter_v2.so"));
    for lib in [&v1, &v2] {
        ensure!(
            lib.is_file(),
            "{} is missing (build it: cargo build --release -p counter-v1 -p counter-v2)",
            lib.display()
        );
    }
    let scratch = tempfile::tempdir().context("cannot create a temporary volume")?;
    let volume_dir = scratch.path().join("volume");
    let volume = Volume::new(&volume_dir);
    say(&format!("A fresh release volume: {}", volume_dir.display()));

    for line in to_volume(&v1, &volume, true, None)? {
        say(&format!("molt push libcounter_v1.so --volume …: {line}"));
    }
    let mut child = Supervisor::start(&volume_dir, scratch.path())?;
    let control = ControlClient::new(&format!("http://{}", child.addrs.control), None);
    let app = format!("http://{}", child.addrs.listen);
    let before = control.status()?;
    say(&format!(
        "molt run is serving counter {} on {app} (pid {})",
        before.version.as_deref().unwrap_or("?"),
        before.pid
    ));

    let http = reqwest::blocking::Client::new();
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    say(&format!(
        "{} clients start sending POST /incr on keep-alive connections…",
        args.clients
    ));
    let clients: Vec<_> = (0..args.clients)
        .map(|_| {
            let (http, url) = (http.clone(), format!("{app}/incr"));
            let (acked, failed, stop) = (Arc::clone(&acked), Arc::clone(&failed), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match http.post(&url).send() {
                        Ok(r) if r.status().is_success() => acked.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    say(&format!(
        "  … {} increments acknowledged so far",
        acked.load(Ordering::Relaxed)
    ));

    for line in to_volume(&v2, &volume, true, None)? {
        say(&format!(
            "molt push libcounter_v2.so --volume … (under traffic): {line}"
        ));
    }
    let after = wait_for_version(&control, "2.0.0")?;
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let swap = after
        .last_swap
        .clone()
        .context("the supervisor reports no swap")?;
    say(&format!(
        "The supervisor swapped {} → {} in place: traffic paused for {} µs, {} bytes of state migrated in schema {}",
        swap.from.as_deref().unwrap_or("?"),
        swap.to,
        swap.pause_us,
        swap.state_bytes,
        swap.schema.map_or("?".to_owned(), |s| s.to_string()),
    ));
    let (ok, bad) = (acked.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let count = get(&http, &format!("{app}/count"))?;
    let served_by = http
        .get(format!("{app}/count"))
        .send()?
        .headers()
        .get("x-molt-version")
        .cloned();
    say(&format!(
        "Clients got {ok} acknowledged increments and {bad} failures."
    ));
    say(&format!(
        "GET /count → {count} (served by x-molt-version: {}); v2's new per-key route GET /count/default → {}",
        served_by.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("?"),
        get(&http, &format!("{app}/count/default"))?
    ));
    say(&format!(
        "PID before: {}, after: {} — no restart.",
        before.pid, after.pid
    ));
    ensure!(
        count == ok.to_string(),
        "the count {count} differs from the {ok} acknowledged increments"
    );
    ensure!(
        bad == 0 && before.pid == after.pid,
        "requests failed or the process changed"
    );

    let outcome = control.rollback()?;
    say(&format!("molt rollback --control …: {}", outcome.message));
    say(&format!(
        "GET /count on v1 again → {}",
        get(&http, &format!("{app}/count"))?
    ));

    child.stop()?;
    say("SIGTERM: molt drained, wrote a final snapshot and exited 0; a restart would restore the count from it.");
    say("Done: one process, two versions, no request lost.");
    Ok(())
}

fn say(line: &str) {
    println!("molt demo | {line}");
}

fn get(http: &reqwest::blocking::Client, url: &str) -> anyhow::Result<String> {
    let resp = http.get(url).send().with_context(|| format!("GET {url}"))?;
    ensure!(resp.status().is_success(), "GET {url}: {}", resp.status());
    Ok(resp.text()?.trim().to_owned())
}

fn wait_for_version(control: &ControlClient, version: &str) -> anyhow::Result<Status> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let status = control.status()?;
        if status.version.as_deref() == Some(version) {
            return Ok(status);
        }
        if let Some(r) = &status.last_refusal {
            bail!("the supervisor refused {}: {}", r.release, r.error);
        }
        ensure!(Instant::now() < until, "{version} not serving after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `molt run` child on ephemeral ports.
struct Supervisor {
    child: Child,
    addrs: BoundAddrs,
}

impl Supervisor {
    fn start(volume: &Path, scratch: &Path) -> anyhow::Result<Supervisor> {
        Self::start_with(volume, scratch, &[])
    }

    /// [`Supervisor::start`] with more `molt run` arguments.
    fn start_with(volume: &Path, scratch: &Path, extra: &[&std::ffi::OsStr]) -> anyhow::Result<Supervisor> {
        let addr_file = scratch.join("addrs.json");
        // A supervisor started again in the same directory must not be taken for the last one.
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::File::create(scratch.join("molt.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .args([
                "run",
                "--app",
                "counter",
                "--listen",
                "127.0.0.1:0",
                "--control",
                "127.0.0.1:0",
            ])
            .arg("--volume")
            .arg(volume)
            .arg("--addr-file")
            .arg(&addr_file)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start molt run")?;
        let mut sup = Supervisor {
            child,
            addrs: BoundAddrs {
                listen: ([0, 0, 0, 0], 0).into(),
                control: ([0, 0, 0, 0], 0).into(),
                pid: 0,
            },
        };
        let until = Instant::now() + Duration::from_secs(30);
        while !addr_file.exists() {
            if let Some(status) = sup.child.try_wait()? {
                bail!(
                    "molt run exited early ({status}); see {}",
                    scratch.join("molt.log").display()
                );
            }
            ensure!(Instant::now() < until, "molt run did not start within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        sup.addrs = serde_json::from_slice(&std::fs::read(&addr_file)?)?;
        Ok(sup)
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("cannot send SIGTERM")?;
        let status = self.child.wait()?;
        ensure!(status.success(), "molt run exited with {status}");
        Ok(())
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The directory holding the sample plugins: beside the running binary; when they are not
/// there and the binary lives in a cargo target directory of molt's source tree, they are
/// built there first.
fn sample_plugins() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .context("the molt binary has no directory")?
        .to_owned();
    if dir.join("libcounter_v1.so").is_file() && dir.join("libcounter_v2.so").is_file() {
        return Ok(dir);
    }
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let root = dir
        .ancestors()
        .find(|d| d.join("sample-plugins/counter-v1/Cargo.toml").is_file());
    let (Some(root), "debug" | "release") = (root, profile) else {
        bail!(
            "the sample plugins are not beside {} and this is not molt's source tree; pass --plugins DIR",
            exe.display()
        );
    };
    say("Building the sample plugins (counter v1 and v2) with cargo…");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(root)
        .args(["build", "-p", "counter-v1", "-p", "counter-v2"]);
    if profile == "release" {
        build.arg("--release");
    }
    let target_dir = dir.parent().context("no target directory")?;
    build.env("CARGO_TARGET_DIR", target_dir);
    ensure!(
        build.status().context("cannot run cargo")?.success(),
        "building the sample plugins failed"
    );
    Ok(dir)
}
