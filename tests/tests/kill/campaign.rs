//! The campaign: rounds aimed at each phase, a SIGKILL at a random moment of it, the checks,
//! the restart; and the figures at the end.

use super::check::{
    abandoned_temporaries, acked_writes_present, current_verifies, kv_state, newest_snapshot, stats,
};
use super::molt::Molt;
use super::writer::{Ack, Writer};
use molt_tests::artifacts::{molt_binary, plugin};
use molt_tests::dir::TestDir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const APP: &str = "kv";
const PHASES: [&str; 7] = [
    "staging",
    "pause",
    "import",
    "switch",
    "snapshot",
    "push",
    "probation",
];
/// The state preloaded before the first round: keys × value bytes.
const PRELOAD: (u64, u64) = (4000, 1024);
const PROBATION: Duration = Duration::from_millis(1500);
/// How long a phase's start may take to show in the log.
const LOG_TIMEOUT: Duration = Duration::from_secs(20);

/// A small xorshift generator: the seed is printed, and `MOLT_KILL_SEED` replays a campaign.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("MOLT_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        println!("kill campaign seed {seed} (MOLT_KILL_SEED={seed} replays the same choices)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A uniformly random duration in `[0, max)`.
    fn below(&mut self, max: Duration) -> Duration {
        let micros = max.as_micros().max(1) as u64;
        Duration::from_micros(self.next() % micros)
    }
}

struct Campaign {
    dir: TestDir,
    volume: PathBuf,
    state: PathBuf,
    run: PathBuf,
    binary: PathBuf,
    starts: usize,
    /// Writes acknowledged by the running process (cleared at each restart).
    acks: Vec<Ack>,
    /// The load's keys in the state the running process restored.
    restored: Vec<String>,
    next: Arc<AtomicU64>,
    rng: Rng,
    /// How long after a phase's start the kill may land, per phase; adapted as rounds land.
    window: BTreeMap<&'static str, Duration>,
    kills: BTreeMap<&'static str, usize>,
    served: usize,
    state_checks: usize,
    acked_checked: usize,
    leftovers: usize,
    /// Restarts that served `previous` because `current` could not import the snapshot.
    fallbacks: usize,
    /// The version the running process serves.
    serving: String,
}

/// Runs the campaign until every phase has `per_phase` kills (a bounded number of rounds).
pub fn run(per_phase: usize, name: &str) {
    let started = Instant::now();
    let mut c = Campaign::new(name);
    let mut molt = c.start();
    let http = client();
    let answer = http
        .post(molt.url(&format!("/preload?keys={}&size={}", PRELOAD.0, PRELOAD.1)))
        .send()
        .expect("preloading");
    assert!(answer.status().is_success(), "preload: {}", answer.status());
    assert!(
        molt.wait_log(0, "state snapshot written", LOG_TIMEOUT),
        "no first snapshot:\n{}",
        molt.log_text()
    );
    let mut rounds = 0;
    while PHASES
        .iter()
        .any(|p| c.kills.get(p).copied().unwrap_or(0) < per_phase)
    {
        rounds += 1;
        assert!(
            rounds <= per_phase * PHASES.len() * 6,
            "too many rounds without reaching every phase: {:?}",
            c.kills
        );
        let target = *PHASES
            .iter()
            .filter(|p| c.kills.get(*p).copied().unwrap_or(0) < per_phase)
            .min_by_key(|p| (c.kills.get(*p).copied().unwrap_or(0), c.rng.next() % 8))
            .expect("a phase is missing kills");
        molt = c.round(molt, target);
    }
    molt.kill();
    let total: usize = c.kills.values().sum();
    println!(
        "kill campaign: {rounds} kills in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for (phase, n) in &c.kills {
        println!("  kills during {phase:<9} {n}");
    }
    println!(
        "  restarts that served: {} of {rounds}; state checks passed: {} of {rounds} \
         ({} acknowledged writes found in their snapshots); corrupt files: 0; \
         abandoned temporaries removed by the restarts: {}; restarts that served `previous` \
         because `current` could not import the snapshot's schema: {}",
        c.served, c.state_checks, c.acked_checked, c.leftovers, c.fallbacks
    );
    assert_eq!(c.served, rounds);
    assert!(total >= per_phase * PHASES.len());
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

impl Campaign {
    fn new(name: &str) -> Campaign {
        let dir = TestDir::new(name);
        let (volume, state, run) = (dir.mkdir("volume"), dir.mkdir("state"), dir.mkdir("run"));
        let binary = molt_binary();
        let window = [
            ("staging", 40),
            ("pause", 30),
            ("import", 40),
            ("switch", 20),
            ("snapshot", 60),
            ("push", 60),
            ("probation", PROBATION.as_millis() as u64 * 9 / 10),
        ]
        .into_iter()
        .map(|(p, ms)| (p, Duration::from_millis(ms)))
        .collect();
        let c = Campaign {
            dir,
            volume,
            state,
            run,
            binary,
            starts: 0,
            acks: Vec::new(),
            restored: Vec::new(),
            next: Arc::new(AtomicU64::new(0)),
            rng: Rng::new(),
            window,
            kills: BTreeMap::new(),
            served: 0,
            state_checks: 0,
            acked_checked: 0,
            leftovers: 0,
            fallbacks: 0,
            serving: "1.0.0".to_owned(),
        };
        c.push_volume("kv_v1", true);
        c.push_volume("kv_v2", false);
        c
    }

    fn app_dir(&self) -> PathBuf {
        self.volume.join(APP)
    }

    fn molt_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.binary)
            .args(args)
            .output()
            .expect("running molt")
    }

    /// `molt push` of the kv plugin `lib` onto the volume.
    fn push_volume(&self, lib: &str, activate: bool) {
        let (lib, volume) = (
            plugin(lib).display().to_string(),
            self.volume.display().to_string(),
        );
        let mut args = vec!["push", lib.as_str(), "--volume", volume.as_str()];
        if !activate {
            args.push("--no-activate");
        }
        let out = self.molt_cli(&args);
        assert!(
            out.status.success(),
            "molt push: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&mut self) -> Molt {
        self.starts += 1;
        let path = |p: &Path| p.display().to_string();
        let args = [
            "--volume",
            &path(&self.volume),
            "--app",
            APP,
            "--state-dir",
            &path(&self.state),
            "--run-dir",
            &path(&self.run),
            "--snapshot-interval",
            "300ms",
            "--probation",
            "1500ms",
        ]
        .map(str::to_owned);
        Molt::start(&self.binary, &self.dir.mkdir("work"), self.starts, &args)
    }

    fn current(&self) -> String {
        std::fs::read_to_string(self.app_dir().join("current"))
            .expect("reading current")
            .trim()
            .to_owned()
    }

    /// One round: trigger `target`, kill at a random moment of it, classify, check, restart.
    fn round(&mut self, molt: Molt, target: &'static str) -> Molt {
        let from = molt.log_len();
        if self.current() != self.serving {
            // After a fallback start, point `current` at what serves (an operator's next move).
            let url = molt.control(&format!("/activate?version={}", self.serving));
            let answer = client().post(url).send().expect("POST /activate");
            assert!(
                answer.status().is_success(),
                "re-pointing current: {:?}",
                answer.text()
            );
        }
        let writer = Writer::start(molt.url(""), Arc::clone(&self.next));
        std::thread::sleep(Duration::from_millis(20) + self.rng.below(Duration::from_millis(60)));
        let other = if self.serving == "1.0.0" {
            ("2.0.0", "kv_v2")
        } else {
            ("1.0.0", "kv_v1")
        };
        let answered = Arc::new(AtomicBool::new(false));
        let mut request = None;
        let window = self.window[target];
        let delay = self.rng.below(window);
        match target {
            "push" => {
                std::fs::remove_dir_all(self.app_dir().join("releases").join(other.0))
                    .expect("removing a release");
                let (binary, lib, to) = (self.binary.clone(), plugin(other.1), molt.control(""));
                let done = Arc::clone(&answered);
                request = Some(std::thread::spawn(move || {
                    let lib = lib.display().to_string();
                    let _ = Command::new(binary)
                        .args(["push", &lib, "--to", &to, "--no-activate"])
                        .output();
                    done.store(true, Ordering::SeqCst);
                }));
                self.wait(&molt, from, "step=\"upload\"");
                std::thread::sleep(delay);
            }
            "snapshot" => {
                self.wait(&molt, from, "step=\"export\"");
                std::thread::sleep(delay);
            }
            _ => {
                if !self.app_dir().join("releases").join(other.0).exists() {
                    self.push_volume(other.1, false);
                }
                let (url, done) = (
                    molt.control(&format!("/activate?version={}", other.0)),
                    Arc::clone(&answered),
                );
                request = Some(std::thread::spawn(move || {
                    if client().post(url).send().is_ok_and(|r| r.status().is_success()) {
                        done.store(true, Ordering::SeqCst);
                    }
                }));
                let start = match target {
                    "pause" => Some("step=Paused"),
                    "import" => Some("step=Exported"),
                    "switch" => Some("step=Imported"),
                    _ => None,
                };
                if let Some(needle) = start {
                    self.wait(&molt, from, needle);
                }
                if target == "probation" {
                    let until = Instant::now() + LOG_TIMEOUT;
                    while !answered.load(Ordering::SeqCst) {
                        assert!(
                            Instant::now() < until,
                            "the swap was not answered:\n{}",
                            molt.log_since(from)
                        );
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                std::thread::sleep(delay);
            }
        }
        let in_flight = request.is_some() && !answered.load(Ordering::SeqCst);
        let log_before_kill = molt.log_since(from);
        let log = molt.log.clone();
        molt.kill();
        let killed_at = Instant::now();
        self.acks.extend(writer.stop());
        if let Some(request) = request {
            let _ = request.join();
        }
        // What the log shows up to the kill (the file outlives the process).
        let log_at_kill = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        let since = log_at_kill.get(from..).unwrap_or(&log_before_kill);
        let phase = classify(target, in_flight, since);
        let landed = phase == target;
        let w = self.window.get_mut(target).expect("a window per phase");
        *w = if landed {
            (*w * 11 / 10).min(Duration::from_secs(2))
        } else {
            (*w * 7 / 10).max(Duration::from_millis(1))
        };
        *self.kills.entry(phase).or_default() += 1;
        self.check_and_restart(killed_at, &log)
    }

    fn wait(&self, molt: &Molt, from: usize, needle: &str) {
        assert!(
            molt.wait_log(from, needle, LOG_TIMEOUT),
            "no {needle} in the log:\n{}",
            molt.log_since(from)
        );
    }

    /// The checks after a kill, the restart, and the checks on the restarted process.
    fn check_and_restart(&mut self, killed_at: Instant, log: &Path) -> Molt {
        let fail = |what: String| -> ! {
            panic!(
                "after the kill: {what}\nlog of the killed process:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        };
        let (state, run) = (self.state.clone(), self.run.clone());
        let (app_dir, releases) = (self.app_dir(), self.app_dir().join("releases"));
        let places = [
            state.as_path(),
            app_dir.as_path(),
            releases.as_path(),
            run.as_path(),
        ];
        let left = abandoned_temporaries(&places);
        if !left.is_empty() {
            self.leftovers += left.len();
            // The start removes what no writer holds once it is a second old.
            let grace = molt_supervisor::volume::ABANDONED_AFTER + Duration::from_millis(100);
            std::thread::sleep(grace.saturating_sub(killed_at.elapsed()));
        }
        let (snap_path, snap) = newest_snapshot(&self.state)
            .unwrap_or_else(|e| fail(e))
            .unwrap_or_else(|| fail("no snapshot".into()));
        let current = current_verifies(&self.volume, APP).unwrap_or_else(|e| fail(e));
        let map = kv_state(&snap).unwrap_or_else(|e| fail(e));
        self.acked_checked += acked_writes_present(&self.acks, &snap, &map).unwrap_or_else(|e| {
            let w = map.keys().filter(|k| k.starts_with('w')).count();
            let at = snap
                .written_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            fail(format!(
                "{e} ({} exported at {at:?}, schema {}, {} keys of which {w} written by the load)",
                snap_path.display(),
                snap.schema,
                map.len()
            ))
        });

        // What the killed process restored and kept must still be there: keys are never removed.
        if let Some(lost) = self.restored.iter().find(|k| !map.contains_key(*k)) {
            fail(format!(
                "{lost}, in the state the killed process restored, is missing from {}",
                snap_path.display()
            ));
        }
        let molt = self.start();
        self.served += 1;
        // From here the state is the snapshot's; writes acknowledged after it died with the
        // process (what a crash loses, see the README's Limits).
        self.acks.clear();
        self.restored = map.keys().filter(|k| k.starts_with('w')).cloned().collect();
        let http = client();
        let status: serde_json::Value = http
            .get(molt.control("/status"))
            .send()
            .and_then(|r| r.json())
            .expect("GET /status");
        let serving = status["version"].as_str().unwrap_or_default().to_owned();
        if serving != current {
            // Killed after `current` moved back to a version that cannot import the snapshot's
            // schema: the start refuses it and, by design, starts the previous release instead.
            let previous = std::fs::read_to_string(app_dir.join("previous")).unwrap_or_default();
            let refused = status["last_refusal"]["release"].as_str() == Some(&format!("{APP} {current}"));
            assert!(
                refused && previous.trim() == serving,
                "the restart serves {serving}, current is {current}: {status}"
            );
            self.fallbacks += 1;
        }
        self.serving = serving;
        let served: serde_json::Value = http
            .get(molt.url("/stats"))
            .send()
            .and_then(|r| r.json())
            .expect("GET /stats");
        let (keys, key_bytes, value_bytes) = stats(&map);
        let got = (
            served["keys"].as_u64(),
            served["key_bytes"].as_u64(),
            served["value_bytes"].as_u64(),
        );
        assert_eq!(
            got,
            (Some(keys), Some(key_bytes), Some(value_bytes)),
            "the restart's state is not the snapshot's"
        );
        if let Some(last) = self.acks.iter().rev().find(|a| a.at < snap.written_at) {
            let value = http
                .get(molt.url(&format!("/kv/w{}", last.n)))
                .send()
                .and_then(|r| r.text())
                .expect("GET");
            assert_eq!(value, last.n.to_string(), "w{} after the restart", last.n);
        }
        let left = abandoned_temporaries(&places);
        assert!(
            left.is_empty(),
            "temporaries left after the restart: {left:?}\n{}",
            molt.log_text()
        );
        self.state_checks += 1;
        molt
    }
}

/// The phase a kill landed in, from what the log shows and whether the round's request was
/// still unanswered.
fn classify(target: &str, in_flight: bool, log: &str) -> &'static str {
    let last = |needle: &str| log.rfind(needle);
    let steps = [
        ("step=Paused", "pause"),
        ("step=Drained", "pause"),
        ("step=Exported", "import"),
        ("step=Imported", "switch"),
        ("step=Resumed", "switch"),
    ];
    let swap_step = steps
        .iter()
        .filter_map(|(n, p)| last(n).map(|at| (at, *p)))
        .max()
        .map(|(_, p)| p);
    let snapshot_running = match (last("step=\"export\""), last("step=\"written\"")) {
        (Some(e), Some(w)) => e > w,
        (Some(_), None) => true,
        _ => false,
    };
    match target {
        "push" if in_flight => "push",
        "staging" | "pause" | "import" | "switch" if in_flight => swap_step.unwrap_or("staging"),
        "probation" if !log.contains("probation passed") && !in_flight => "probation",
        _ if snapshot_running => "snapshot",
        _ => "idle",
    }
}
