//! The load generator: `connections` keep-alive HTTP/1.1 connections, each sending one request
//! after the other as fast as the server answers (a closed loop), from an in-process tokio
//! runtime with one thread (hyper's client). Client and server share the machine's cores: on a
//! small machine the generator's own cost is part of every figure it produces, the same for
//! every variant it compares.
//!
//! Every request is an attempt: a 2xx answer is acknowledged; any other status, a connection
//! refused, a connection closed under a request or a timeout is a failure. After a failed
//! connect a connection waits `backoff` before it tries again (what a client with a retry
//! policy does; without it a refused port would count tens of thousands of failures a second).
//! A connection the server closes between two requests is reopened without counting a failure:
//! no request was lost.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::Method;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// What to send, where, and how many at once.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The server.
    pub addr: SocketAddr,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// The request's method.
    pub method: Method,
    /// The request's path (and query).
    pub path: String,
    /// Keep one [`Sample`] per request (for timelines), not only the counts.
    pub record: bool,
    /// The wait after a failed connect.
    pub backoff: Duration,
    /// Run the generator's thread on this core only.
    pub cpu: Option<usize>,
    /// When above 0, each request's path is `path` followed by a number that cycles through
    /// `0..spread` (e.g. `/kv/k` → `/kv/k0`, `/kv/k1`, …): spreads requests over many keys.
    pub spread: u32,
}

impl Spec {
    /// `POST /incr` on `connections` connections, 10 ms back-off, counts only.
    pub fn incr(addr: SocketAddr, connections: usize) -> Spec {
        Spec {
            addr,
            connections,
            method: Method::POST,
            path: "/incr".to_owned(),
            record: false,
            backoff: Duration::from_millis(10),
            cpu: None,
            spread: 0,
        }
    }

    /// `method path<n>` with `n` cycling through `0..spread`, otherwise like [`Spec::incr`].
    pub fn spread(addr: SocketAddr, connections: usize, method: Method, path: &str, spread: u32) -> Spec {
        Spec {
            method,
            path: path.to_owned(),
            spread,
            ..Spec::incr(addr, connections)
        }
    }

    /// The same, keeping every request's [`Sample`].
    pub fn recording(mut self) -> Spec {
        self.record = true;
        self
    }

    /// The same, on core `cpu` only.
    pub fn on_cpu(mut self, cpu: Option<usize>) -> Spec {
        self.cpu = cpu;
        self
    }
}

/// One request, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When it was sent, in µs since the load started.
    pub at_us: u64,
    /// How long until it was answered (or failed), in µs.
    pub latency_us: u32,
    /// Whether it was acknowledged (2xx).
    pub ok: bool,
}

impl Sample {
    /// When it completed, in µs since the load started.
    pub fn done_us(&self) -> u64 {
        self.at_us + u64::from(self.latency_us)
    }
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Requests answered 2xx.
    pub acknowledged: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Failures by kind (status or error message), counted.
    pub errors: BTreeMap<String, u64>,
    /// Acknowledged requests by the `x-molt-version` that served them.
    pub by_version: BTreeMap<String, u64>,
    /// Every request, when recording; sorted by `at_us`.
    pub samples: Vec<Sample>,
    /// How long the load ran.
    pub elapsed: Duration,
}

impl Outcome {
    /// Acknowledged requests per second.
    pub fn throughput(&self) -> f64 {
        self.acknowledged as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The longest time, in µs, during which no request completed successfully (between two
    /// consecutive successful completions), over the whole run. Needs recorded samples.
    pub fn longest_gap_us(&self) -> u64 {
        self.longest_gap_within_us(0, u64::MAX)
    }

    /// [`Outcome::longest_gap_us`] among the requests that completed between `from_us` and
    /// `to_us` (µs since the load started).
    pub fn longest_gap_within_us(&self, from_us: u64, to_us: u64) -> u64 {
        let (start, end) = self.gap_within(from_us, to_us);
        end - start
    }

    /// The longest interval without a successful completion among the requests that completed
    /// between `from_us` and `to_us`, as (start, end) in µs since the load started.
    pub fn gap_within(&self, from_us: u64, to_us: u64) -> (u64, u64) {
        let mut done: Vec<u64> = self
            .samples
            .iter()
            .filter(|s| s.ok)
            .map(Sample::done_us)
            .filter(|t| (from_us..to_us).contains(t))
            .collect();
        done.sort_unstable();
        done.windows(2)
            .map(|w| (w[0], w[1]))
            .max_by_key(|(a, b)| b - a)
            .unwrap_or((0, 0))
    }
}

/// A load in progress, on its own thread.
pub struct Running {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    started: Instant,
    thread: JoinHandle<anyhow::Result<Outcome>>,
}

impl Running {
    /// Starts sending.
    pub fn start(spec: Spec) -> anyhow::Result<Running> {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the load generator's runtime")?;
        let thread = std::thread::Builder::new()
            .name("load".to_owned())
            .spawn({
                let (stop, acknowledged) = (Arc::clone(&stop), Arc::clone(&acknowledged));
                move || {
                    if let Some(cpu) = spec.cpu {
                        crate::affinity::pin(crate::affinity::current_tid()?, cpu)?;
                    }
                    runtime.block_on(generate(spec, stop, acknowledged, started))
                }
            })
            .context("starting the load generator's thread")?;
        Ok(Running {
            stop,
            acknowledged,
            started,
            thread,
        })
    }

    /// When the load started (the origin of [`Sample::at_us`]).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Requests acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests are acknowledged; an error after `timeout`.
    pub fn wait_for(&self, n: u64, timeout: Duration) -> anyhow::Result<()> {
        let target = self.acknowledged() + n;
        let until = Instant::now() + timeout;
        while self.acknowledged() < target {
            anyhow::ensure!(
                Instant::now() < until && !self.thread.is_finished(),
                "the load stalled: fewer than {n} requests acknowledged in {timeout:?}"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Stops sending and returns what was seen.
    pub fn stop(self) -> anyhow::Result<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        let mut outcome = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the load generator panicked"))??;
        outcome.elapsed = self.started.elapsed();
        Ok(outcome)
    }

    /// Runs a load for `duration` and returns what was seen.
    pub fn for_duration(spec: Spec, duration: Duration) -> anyhow::Result<Outcome> {
        let running = Running::start(spec)?;
        std::thread::sleep(duration);
        running.stop()
    }
}

/// The generator: one task per connection; their outcomes merged.
async fn generate(
    spec: Spec,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    started: Instant,
) -> anyhow::Result<Outcome> {
    let spec = Arc::new(spec);
    let versions = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..spec.connections {
        let conn = Connection {
            spec: Arc::clone(&spec),
            stop: Arc::clone(&stop),
            acknowledged: Arc::clone(&acknowledged),
            versions: Arc::clone(&versions),
            started,
        };
        tasks.spawn(conn.run());
    }
    let mut outcome = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        let part = joined.context("a load connection task failed")?;
        outcome.acknowledged += part.acknowledged;
        outcome.failed += part.failed;
        for (kind, n) in part.errors {
            *outcome.errors.entry(kind).or_default() += n;
        }
        let versions = versions
            .lock()
            .map_err(|_| anyhow::anyhow!("version table poisoned"))?;
        for (index, n) in part.by_version.iter().enumerate() {
            if *n > 0 {
                let name = versions.get(index).cloned().unwrap_or_default();
                *outcome.by_version.entry(name).or_default() += n;
            }
        }
        outcome.samples.extend(part.samples);
    }
    outcome.samples.sort_by_key(|s| s.at_us);
    Ok(outcome)
}

/// One connection's loop, and what it saw.
struct Connection {
    spec: Arc<Spec>,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    /// Version names, shared so all connections use the same indices.
    versions: Arc<Mutex<Vec<String>>>,
    started: Instant,
}

#[derive(Default)]
struct Part {
    acknowledged: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    /// Acknowledged requests by version index.
    by_version: Vec<u64>,
    samples: Vec<Sample>,
}

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Connection {
    async fn run(self) -> Part {
        let mut part = Part::default();
        let host = self.spec.addr.to_string();
        // The last version header seen and its index: versions change rarely.
        let mut last_version: (Vec<u8>, usize) = (Vec::new(), usize::MAX);
        // Connections start at different points of the cycle.
        let mut seq =
            u64::from(self.spec.spread / 2).wrapping_mul(self.acknowledged.load(Ordering::Relaxed) + 1);
        'connect: while !self.stop.load(Ordering::SeqCst) {
            let sent = Instant::now();
            let stream = match TcpStream::connect(self.spec.addr).await {
                Ok(stream) => stream,
                Err(e) => {
                    self.fail(&mut part, sent, format!("connect: {}", e.kind()));
                    tokio::time::sleep(self.spec.backoff).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = match http1::handshake(TokioIo::new(stream)).await {
                Ok(pair) => pair,
                Err(e) => {
                    self.fail(&mut part, sent, format!("handshake: {e}"));
                    continue;
                }
            };
            tokio::spawn(conn);
            while !self.stop.load(Ordering::SeqCst) {
                if sender.ready().await.is_err() {
                    continue 'connect; // closed between requests: nothing was sent
                }
                let uri: std::borrow::Cow<'_, str> = if self.spec.spread > 0 {
                    seq += 1;
                    format!("{}{}", self.spec.path, seq % u64::from(self.spec.spread)).into()
                } else {
                    self.spec.path.as_str().into()
                };
                let request = hyper::Request::builder()
                    .method(self.spec.method.clone())
                    .uri(uri.as_ref())
                    .header(hyper::header::HOST, host.as_str())
                    .body(Empty::<Bytes>::new());
                let Ok(request) = request else {
                    self.fail(&mut part, Instant::now(), "building the request".to_owned());
                    return part;
                };
                let sent = Instant::now();
                let answered = tokio::time::timeout(REQUEST_TIMEOUT, async {
                    let response = sender.send_request(request).await?;
                    let (head, body) = response.into_parts();
                    body.collect().await?;
                    Ok::<_, hyper::Error>(head)
                })
                .await;
                match answered {
                    Ok(Ok(head)) if head.status.is_success() => {
                        let version = head.headers.get(molt_supervisor::front::VERSION_HEADER);
                        let version = version.map_or(&[][..], |v| v.as_bytes());
                        if version != last_version.0.as_slice() {
                            last_version = (version.to_vec(), self.version_index(version));
                        }
                        self.acknowledge(&mut part, sent, last_version.1);
                    }
                    Ok(Ok(head)) => self.fail(&mut part, sent, format!("status {}", head.status.as_u16())),
                    Ok(Err(e)) => {
                        self.fail(&mut part, sent, format!("request: {e}"));
                        continue 'connect;
                    }
                    Err(_) => {
                        self.fail(&mut part, sent, format!("timeout after {REQUEST_TIMEOUT:?}"));
                        continue 'connect;
                    }
                }
            }
        }
        part
    }

    fn version_index(&self, version: &[u8]) -> usize {
        let name = String::from_utf8_lossy(version);
        let Ok(mut versions) = self.versions.lock() else {
            return usize::MAX;
        };
        match versions.iter().position(|v| *v == name) {
            Some(index) => index,
            None => {
                versions.push(name.into_owned());
                versions.len() - 1
            }
        }
    }

    fn acknowledge(&self, part: &mut Part, sent: Instant, version: usize) {
        part.acknowledged += 1;
        self.acknowledged.fetch_add(1, Ordering::SeqCst);
        if version != usize::MAX {
            if part.by_version.len() <= version {
                part.by_version.resize(version + 1, 0);
            }
            part.by_version[version] += 1;
        }
        self.record(part, sent, true);
    }

    fn fail(&self, part: &mut Part, sent: Instant, kind: String) {
        part.failed += 1;
        *part.errors.entry(kind).or_default() += 1;
        self.record(part, sent, false);
    }

    fn record(&self, part: &mut Part, sent: Instant, ok: bool) {
        if self.spec.record {
            part.samples.push(Sample {
                at_us: sent.saturating_duration_since(self.started).as_micros() as u64,
                latency_us: sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
                ok,
            });
        }
    }
}
