//! molt against what a user would write instead: counter v1 served by a release `molt run`
//! (through the ABI and the front) against a plain axum server with the same counter (an
//! `AtomicU64` behind `POST /incr`), built into this binary and run as a child process
//! (`molt-bench --peer-server FILE`), so each server is a process of its own whose CPU time
//! and context switches `/proc` can count. Both use tokio's default of one worker per core.
//! The same load generator drives both in alternating rounds (which goes first alternates
//! too); on two cores or more both servers run on core 0 and the generator on core 1.

use crate::affinity;
use crate::artifacts::Built;
use crate::load::{Running, Spec};
use crate::molt::{push, Molt, Setup};
use crate::procstat::{usage, Usage};
use crate::stats::{median, Paired};
use anyhow::{ensure, Context};
use axum::extract::State;
use axum::routing::post;
use axum::serve::ListenerExt;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the comparison runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// A/B rounds.
    pub rounds: usize,
    /// Length of one side of a round.
    pub round: Duration,
    /// Keep-alive connections.
    pub connections: usize,
    /// Servers on core 0, generator on core 1.
    pub pin: bool,
}

/// Per request, for one server: medians over the rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Both {
    /// molt.
    pub molt: f64,
    /// The plain axum server.
    pub axum: f64,
}

/// The comparison's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PeerResult {
    /// `molt_median_rps / axum_median_rps`.
    pub peer_ratio: f64,
    /// The median of the per-round ratios.
    pub paired_ratio: f64,
    /// Median requests/s of molt.
    pub molt_median_rps: f64,
    /// Median requests/s of axum.
    pub axum_median_rps: f64,
    /// Context switches of the server process per request (median over rounds).
    pub context_switches_per_request: Both,
    /// CPU time of the server process per request, µs (median over rounds).
    pub cpu_us_per_request: Both,
    /// molt's requests/s per round.
    pub molt_rps: Vec<f64>,
    /// axum's requests/s per round.
    pub axum_rps: Vec<f64>,
    /// Failed requests on either side.
    pub failed: u64,
    /// Rounds.
    pub rounds: usize,
    /// Seconds per side per round.
    pub round_s: f64,
    /// Connections.
    pub connections: usize,
    /// Whether servers ran on core 0 and the generator on core 1.
    pub pinned: bool,
    /// How it ran.
    pub note: String,
}

/// Runs the comparison, calling `tick` after each side of each round.
pub fn run(built: &Built, work: &Path, plan: Plan, mut tick: impl FnMut()) -> anyhow::Result<PeerResult> {
    let volume = work.join("volume");
    push(&built.molt, &built.counter_v1, &volume, true)?;
    let molt = Molt::start(&Setup::new(&built.molt, &volume, "counter", &work.join("molt")))?;
    let axum = Peer::start(&work.join("peer-addr"))?;
    let client_cpu = if plan.pin {
        affinity::pin_process(molt.pid(), 0)?;
        affinity::pin_process(axum.child.id(), 0)?;
        Some(1)
    } else {
        None
    };
    let servers = [(molt.listen(), molt.pid()), (axum.addr, axum.child.id())];
    let side = |(addr, pid): (SocketAddr, u32),
                duration: Duration|
     -> anyhow::Result<(f64, Usage, u64, u64)> {
        let before = usage(pid)?;
        let outcome = Running::for_duration(Spec::incr(addr, plan.connections).on_cpu(client_cpu), duration)?;
        let spent = usage(pid)?.since(before);
        Ok((outcome.throughput(), spent, outcome.acknowledged, outcome.failed))
    };
    let mut failed = 0;
    for server in servers {
        failed += side(server, Duration::from_millis(500))?.3;
    }
    let (mut molt_rps, mut axum_rps) = (Vec::new(), Vec::new());
    let (mut molt_cs, mut axum_cs, mut molt_cpu, mut axum_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..plan.rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let (rps, spent, acknowledged, fails) = side(servers[which], plan.round)?;
            failed += fails;
            let n = acknowledged.max(1) as f64;
            let (rps_list, cs, cpu) = if which == 0 {
                (&mut molt_rps, &mut molt_cs, &mut molt_cpu)
            } else {
                (&mut axum_rps, &mut axum_cs, &mut axum_cpu)
            };
            rps_list.push(rps);
            cs.push(spent.switches as f64 / n);
            cpu.push(spent.cpu_us as f64 / n);
            tick();
        }
    }
    drop(axum);
    molt.terminate()?;
    ensure!(!molt_rps.is_empty(), "no rounds were run");
    let compared = Paired::of(&molt_rps, &axum_rps);
    Ok(PeerResult {
        peer_ratio: compared.ratio,
        paired_ratio: compared.paired_ratio,
        molt_median_rps: compared.a,
        axum_median_rps: compared.b,
        context_switches_per_request: Both {
            molt: median(&molt_cs),
            axum: median(&axum_cs),
        },
        cpu_us_per_request: Both {
            molt: median(&molt_cpu),
            axum: median(&axum_cpu),
        },
        molt_rps,
        axum_rps,
        failed,
        rounds: plan.rounds,
        round_s: plan.round.as_secs_f64(),
        connections: plan.connections,
        pinned: plan.pin,
        note: format!(
            "release `molt run` (counter v1 through the ABI and the front) and a plain axum 0.8 server \
             (AtomicU64 behind POST /incr), each its own process with tokio's default workers; one load \
             generator thread ({} keep-alive connections, closed loop); {}; CPU and context switches from \
             /proc of each server process over each round",
            plan.connections,
            if plan.pin {
                "both servers pinned to core 0, the generator to core 1"
            } else {
                "all share all cores"
            }
        ),
    })
}

/// The plain axum server, a child process of this binary.
struct Peer {
    child: Child,
    addr: SocketAddr,
}

impl Peer {
    fn start(addr_file: &Path) -> anyhow::Result<Peer> {
        let _ = std::fs::remove_file(addr_file);
        let exe = std::env::current_exe().context("finding molt-bench itself")?;
        let mut child = Command::new(exe)
            .arg("--peer-server")
            .arg(addr_file)
            .stdout(Stdio::null())
            .spawn()
            .context("starting the axum peer")?;
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(addr_file) {
                if let Ok(addr) = text.trim().parse() {
                    return Ok(Peer { child, addr });
                }
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("the axum peer exited early: {status}");
            }
            ensure!(Instant::now() < until, "the axum peer did not start within 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `molt-bench --peer-server FILE`: what a user would write instead of a molt app. Serves
/// `POST /incr` on a free loopback port, writes the address to `addr_file`, runs until killed.
pub fn serve(addr_file: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let counter = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new().route("/incr", post(incr)).with_state(counter);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let tmp = addr_file.with_extension("tmp");
        std::fs::write(&tmp, addr.to_string())?;
        std::fs::rename(&tmp, addr_file)?;
        // As molt's front does (and axum's examples): no Nagle delay on small answers.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}

async fn incr(State(counter): State<Arc<AtomicU64>>) -> String {
    (counter.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}
