//! One `molt run` of the fault-injection campaign: started with the swap and snapshot steps
//! logged (`MOLT_LOG=…,molt::phase=trace`), followed through its log, killed with SIGKILL.

use molt_supervisor::daemon::BoundAddrs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `molt run`.
pub struct Molt {
    child: Child,
    pub addrs: BoundAddrs,
    pub log: PathBuf,
}

impl Molt {
    /// Starts `molt run` with `args` and waits until it serves (its address file appears).
    pub fn start(binary: &Path, work: &Path, n: usize, args: &[String]) -> Molt {
        let addr_file = work.join(format!("addrs-{n}.json"));
        let log = work.join(format!("molt-{n}.log"));
        let child = Command::new(binary)
            .args([
                "run",
                "--listen",
                "127.0.0.1:0",
                "--control",
                "127.0.0.1:0",
                "--addr-file",
            ])
            .arg(&addr_file)
            .args(args)
            .env("MOLT_LOG", "info,molt::phase=trace")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("creating the log"))
            .spawn()
            .expect("starting molt run");
        let mut molt = Molt {
            child,
            addrs: BoundAddrs {
                listen: ([127, 0, 0, 1], 0).into(),
                control: ([127, 0, 0, 1], 0).into(),
                pid: 0,
            },
            log,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while !addr_file.exists() {
            if let Some(status) = molt.child.try_wait().expect("polling molt run") {
                panic!("molt run exited ({status}) before serving:\n{}", molt.log_text());
            }
            assert!(
                Instant::now() < until,
                "molt run did not serve within 60 s:\n{}",
                molt.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        molt.addrs = serde_json::from_slice(&std::fs::read(&addr_file).expect("reading the address file"))
            .expect("parsing the address file");
        molt
    }

    /// SIGKILL, and reap it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping molt run");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.listen)
    }

    pub fn control(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.control)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's length now: where a round starts reading.
    pub fn log_len(&self) -> usize {
        std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize)
    }

    /// The log from byte `from` on.
    pub fn log_since(&self, from: usize) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned()
    }

    /// Waits until the log after `from` contains `needle`; `false` after `timeout`.
    pub fn wait_log(&self, from: usize, needle: &str, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.log_since(from).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        false
    }
}

impl Drop for Molt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
