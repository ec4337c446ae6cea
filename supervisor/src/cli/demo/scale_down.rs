//! `molt demo --scale-down`: two `molt run` children on one volume, each with its own state
//! and clients; the second's state is handed to the first while both take writes (what
//! `molt handoff` does before `kubectl scale`); the first ends with both, no write lost; the
//! second, restarted, starts empty.

use super::{get, say, wait_for_version, Supervisor};
use crate::cli::push::to_volume;
use crate::control::ControlClient;
use crate::handoff::{Departing, HandoffOptions};
use crate::volume::Volume;
use anyhow::{ensure, Context};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Client threads on one pod: acknowledged and failed `POST /incr`.
struct Clients {
    acked: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn start(app: &str, n: usize, stop: &Arc<AtomicBool>) -> Clients {
        let (acked, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let threads = (0..n)
            .map(|_| {
                let url = format!("{app}/incr");
                let (acked, failed, stop) = (Arc::clone(&acked), Arc::clone(&failed), Arc::clone(stop));
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        match http.post(&url).send() {
                            Ok(r) if r.status().is_success() => {
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                })
            })
            .collect();
        Clients {
            acked,
            failed,
            threads,
        }
    }

    fn join(self) -> (u64, u64) {
        for t in self.threads {
            let _ = t.join();
        }
        (
            self.acked.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Runs the scale-down demo with the counter plugins in `plugins`.
pub(super) fn run(plugins: &Path, clients: usize) -> anyhow::Result<()> {
    let v2 = plugins.join("libcounter_v2.so");
    ensure!(v2.is_file(), "{} is missing", v2.display());
    let scratch = tempfile::tempdir().context("cannot create a temporary volume")?;
    let volume_dir = scratch.path().join("volume");
    say(&format!(
        "A release volume shared by two pods: {}",
        volume_dir.display()
    ));
    for line in to_volume(&v2, &Volume::new(&volume_dir), true, None)? {
        say(&format!("molt push libcounter_v2.so --volume …: {line}"));
    }
    let start = |name: &str| -> anyhow::Result<Supervisor> {
        let dir = scratch.path().join(name);
        let state = dir.join("state");
        std::fs::create_dir_all(&state)?;
        Supervisor::start_with(&volume_dir, &dir, &["--state-dir".as_ref(), state.as_os_str()])
    };
    let pods = [start("pod-0")?, start("pod-1")?];
    let urls = pods.each_ref().map(|p| format!("http://{}", p.addrs.listen));
    let controls = pods
        .each_ref()
        .map(|p| ControlClient::new(&format!("http://{}", p.addrs.control), None));
    for (i, c) in controls.iter().enumerate() {
        wait_for_version(c, "2.0.0")?;
        say(&format!(
            "pod-{i} serves counter 2.0.0 on {}, its own state",
            urls[i]
        ));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let per_pod = clients.max(2) / 2;
    say(&format!("{per_pod} clients per pod start sending POST /incr…"));
    let on = [
        Clients::start(&urls[0], per_pod, &stop),
        Clients::start(&urls[1], per_pod, &stop),
    ];
    std::thread::sleep(Duration::from_millis(700));
    say("Scale-down from 2 to 1: molt handoff --from pod-1 --to pod-0 --grace 30s (under traffic)");
    let opts = HandoffOptions {
        unready_wait: Duration::from_millis(300),
        grace: Some(Duration::from_secs(30)),
        ..HandoffOptions::default()
    };
    let handed = Departing {
        from: &controls[1],
        to: &controls[0],
    }
    .run(&crate::handoff::new_id(), &opts);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let [on0, on1] = on;
    let ((acked0, failed0), (acked1, refused1)) = (on0.join(), on1.join());
    let report = handed.map_err(|f| anyhow::anyhow!("{f}"))?;
    for s in &report.steps {
        say(&format!(
            "  {:<9} {:>10.1?}  {}",
            s.step.to_string(),
            s.took,
            s.note
        ));
    }
    say(&format!(
        "The handoff took {:.1?} of the 30 s grace period; pod-0 paused {} µs to merge.",
        report.total, report.absorbed.pause_us
    ));
    let count0 = get(&reqwest::blocking::Client::new(), &format!("{}/count", urls[0]))?;
    say(&format!(
        "pod-0: {acked0} increments acknowledged, {failed0} failed; pod-1: {acked1} acknowledged before \
         it sealed, then {refused1} answered 503 (a Service stops routing to an unready pod)"
    ));
    say(&format!(
        "GET /count on pod-0 → {count0} = {acked0} + {acked1}: both pods' writes, none lost, none twice"
    ));
    ensure!(
        count0 == (acked0 + acked1).to_string() && failed0 == 0,
        "pod-0 counts {count0}, expected {acked0} + {acked1} with 0 failed (failed: {failed0})"
    );

    let [pod0, mut pod1] = pods;
    pod1.stop()?;
    say("pod-1 stopped (kubectl scale --replicas=1); its snapshot records where its state went.");
    let again = start("pod-1")?;
    let again_url = format!("http://{}", again.addrs.listen);
    wait_for_version(
        &ControlClient::new(&format!("http://{}", again.addrs.control), None),
        "2.0.0",
    )?;
    let empty = get(&reqwest::blocking::Client::new(), &format!("{again_url}/count"))?;
    say(&format!(
        "pod-1 started again on its state directory: GET /count → {empty} (the handed-off state is pod-0's, not served twice)"
    ));
    ensure!(empty == "0", "pod-1 came back with {empty}");
    drop((pod0, again));
    say("Done: two pods became one, and every acknowledged write is in the one that stays.");
    Ok(())
}
