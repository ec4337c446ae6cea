//! The load: one client writing `PUT /kv/w<n>` = `<n>` in order over a keep-alive connection,
//! recording when each write was acknowledged, until the server goes away.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// An acknowledged write: key `w<n>`, acknowledged at `at` (client clock, after the answer).
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub n: u64,
    pub at: SystemTime,
}

/// A running writer.
pub struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Ack>>,
}

impl Writer {
    /// Starts writing to `base` (`http://addr`) from key number `next` on.
    pub fn start(base: String, next: Arc<AtomicU64>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(20))
                .pool_max_idle_per_host(1)
                .build()
                .expect("an HTTP client");
            let mut acks = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let n = next.load(Ordering::SeqCst);
                let sent = http.put(format!("{base}/kv/w{n}")).body(n.to_string()).send();
                match sent {
                    Ok(r) if r.status().is_success() => {
                        acks.push(Ack {
                            n,
                            at: SystemTime::now(),
                        });
                        next.fetch_add(1, Ordering::SeqCst);
                    }
                    // Killed, or a swap's pause answered late: the write is not acknowledged
                    // (it may or may not be in the state; the checks only count acknowledged ones).
                    _ => {
                        next.fetch_add(1, Ordering::SeqCst);
                        if flag.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
            acks
        });
        Writer { stop, handle }
    }

    /// Stops it (after the server died or the round ended) and returns its acknowledged writes.
    pub fn stop(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the writer thread")
    }
}
