//! The cost of the ABI boundary over HTTP: the counter app served through molt (the
//! release-built `libcounter_v1.so`, `dlopen`ed, in an [`Engine`]) against the same handler
//! linked into this binary ([`StaticApp`]`<counter_v1::Counter>`), both behind the same
//! [`Front`] on the same server runtime, driven by the same load generator. Many short rounds
//! alternate A/B (and which goes first) so that slow drift (this machine's throughput wanders
//! by ±15 % over seconds) hits both alike; the medians of the rounds are compared, and so is
//! each round's pair. On two cores or more the server runs on core 0 and the generator on
//! core 1, so the scheduler places the threads the same way in every round.

use crate::affinity;
use crate::load::{Running, Spec};
use crate::stats::Paired;
use anyhow::{ensure, Context};
use molt_abi::{App, Request};
use molt_supervisor::engine::{Engine, EngineConfig};
use molt_supervisor::front::{Front, Reply, Service, StaticApp};
use molt_supervisor::loader::Expect;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How the comparison runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// A/B rounds.
    pub rounds: usize,
    /// Length of one side of a round.
    pub round: Duration,
    /// Keep-alive connections of the load generator.
    pub connections: usize,
    /// Pin the server to core 0 and the load generator to core 1 (needs 2 cores).
    pub pin: bool,
}

/// Throughput through molt's ABI against the statically linked app.
#[derive(Debug, Clone, Serialize)]
pub struct BoundaryResult {
    /// Requests/s through the ABI, per round.
    pub abi_rps: Vec<f64>,
    /// Requests/s of the statically linked app, per round.
    pub static_rps: Vec<f64>,
    /// Median of `abi_rps`.
    pub abi_median_rps: f64,
    /// Median of `static_rps`.
    pub static_median_rps: f64,
    /// `abi_median_rps / static_median_rps`.
    pub ratio: f64,
    /// The median of the per-round ratios (each ABI side over the static side of its round).
    pub paired_ratio: f64,
    /// Failed requests on either side (should be 0).
    pub failed: u64,
    /// Rounds.
    pub rounds: usize,
    /// Seconds per side per round.
    pub round_s: f64,
    /// Connections.
    pub connections: usize,
    /// Server worker threads (the front calls handlers inline on them; tokio's blocking pool
    /// only past the inline bound or during a swap).
    pub server_workers: usize,
    /// Whether the server ran on core 0 and the generator on core 1.
    pub pinned: bool,
    /// How the generator and server share the machine.
    pub note: String,
}

/// The engine as a [`Service`]: what `molt run` does, minus its status records.
struct Engined(Engine);

impl Service for Engined {
    fn serve(&self, req: &Request<'_>) -> Reply {
        let served = self.0.handle(req);
        Reply {
            response: served.response,
            version: served.version,
        }
    }

    fn try_serve(&self, req: &Request<'_>) -> Option<Reply> {
        self.0.try_handle(req).map(|served| Reply {
            response: served.response,
            version: served.version,
        })
    }
}

/// Server worker threads: one per core of a 2-core machine.
const SERVER_WORKERS: usize = 2;

/// The name of the server runtime's threads (workers and blocking pool).
const SERVER_THREADS: &str = "bench-server";

/// Runs the comparison, calling `tick` after each side of each round.
pub fn run(
    counter_v1: &Path,
    run_dir: &Path,
    plan: Plan,
    mut tick: impl FnMut(),
) -> anyhow::Result<BoundaryResult> {
    let plugin =
        molt_tests::drive::load_file(counter_v1, run_dir, &Expect::any()).context("loading counter v1")?;
    let engine = Engine::start(plugin, None, EngineConfig::default()).context("starting counter v1")?;
    let counter = counter_v1::Counter::create().map_err(|e| anyhow::anyhow!("counter: {e}"))?;
    let abi: Arc<dyn Service> = Arc::new(Engined(engine));
    let linked: Arc<dyn Service> = Arc::new(StaticApp::new(counter, "1.0.0-static"));

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_WORKERS)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .context("building the server runtime")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (abi_addr, static_addr) = server.block_on(async {
        let a = serve(abi, stopped.clone()).await?;
        let b = serve(linked, stopped.clone()).await?;
        anyhow::Ok((a, b))
    })?;

    // Pinned before the first request: the blocking pool's threads, started later by the
    // workers, inherit the workers' core.
    let client_cpu = if plan.pin {
        for tid in affinity::threads_named(SERVER_THREADS)? {
            affinity::pin(tid, 0)?;
        }
        Some(1)
    } else {
        None
    };
    let side = |addr: SocketAddr, duration: Duration| {
        Running::for_duration(Spec::incr(addr, plan.connections).on_cpu(client_cpu), duration)
    };
    // Warm-up: connections, caches, the blocking pool's threads.
    let warm = Duration::from_millis(500);
    let (mut failed, mut abi_rps, mut static_rps) = (0, Vec::new(), Vec::new());
    for addr in [abi_addr, static_addr] {
        failed += side(addr, warm)?.failed;
    }
    for round in 0..plan.rounds {
        let order = if round % 2 == 0 {
            [(abi_addr, true), (static_addr, false)]
        } else {
            [(static_addr, false), (abi_addr, true)]
        };
        for (addr, is_abi) in order {
            let outcome = side(addr, plan.round)?;
            failed += outcome.failed;
            if is_abi {
                abi_rps.push(outcome.throughput());
            } else {
                static_rps.push(outcome.throughput());
            }
            tick();
        }
    }
    let _ = stop.send(true);
    server.shutdown_timeout(Duration::from_secs(5));
    ensure!(!abi_rps.is_empty(), "no rounds were run");

    let compared = Paired::of(&abi_rps, &static_rps);
    Ok(BoundaryResult {
        ratio: compared.ratio,
        paired_ratio: compared.paired_ratio,
        abi_median_rps: compared.a,
        static_median_rps: compared.b,
        abi_rps,
        static_rps,
        failed,
        rounds: plan.rounds,
        round_s: plan.round.as_secs_f64(),
        connections: plan.connections,
        server_workers: SERVER_WORKERS,
        pinned: plan.pin,
        note: format!(
            "load generator (1 thread, {} keep-alive connections, closed loop) and server ({} workers + \
             blocking pool) in one process on a {}-core machine; {}",
            plan.connections,
            SERVER_WORKERS,
            crate::machine::cores(),
            if plan.pin {
                "server threads pinned to core 0, the generator to core 1"
            } else {
                "both share all cores"
            }
        ),
    })
}

/// Serves `service` behind a [`Front`] on a fresh loopback port until `stop` turns true.
async fn serve(
    service: Arc<dyn Service>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a port")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        Front::new(service)
            .serve(listener, shutdown, Duration::from_secs(1))
            .await
    });
    Ok(addr)
}
