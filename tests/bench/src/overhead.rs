//! The cost of one call through the ABI, without HTTP: `Instance::handle` on the `dlopen`ed
//! release `libcounter_v1.so` (request borrowed across the boundary, response headers encoded
//! and decoded, buffers copied and freed by the plugin) against `App::handle` on the same type
//! linked into this binary, and `Engine::handle` (the ABI call plus the gate's read lock). A
//! tight loop of `POST /incr`; rounds alternate the variants; the median round is reported.

use crate::stats::median;
use anyhow::Context;
use molt_abi::{App, Request};
use molt_supervisor::engine::{Engine, EngineConfig};
use molt_supervisor::loader::Expect;
use serde::Serialize;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

/// Nanoseconds per call, median of the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct OverheadResult {
    /// Through the ABI (`Instance::handle` of the loaded plugin).
    pub abi: f64,
    /// A direct `App::handle` on the statically linked type.
    pub direct: f64,
    /// `abi - direct`: what the boundary adds to one call.
    pub difference: f64,
    /// Through the engine (`Engine::handle`: the gate plus the ABI call).
    pub engine: f64,
    /// Rounds per variant.
    pub rounds: usize,
    /// Calls per round.
    pub calls: u64,
}

/// Measures, calling `tick` after each round.
pub fn run(
    counter_v1: &Path,
    run_dir: &Path,
    rounds: usize,
    calls: u64,
    mut tick: impl FnMut(),
) -> anyhow::Result<OverheadResult> {
    let plugin =
        molt_tests::drive::load_file(counter_v1, run_dir, &Expect::any()).context("loading counter v1")?;
    let instance = plugin.create().context("creating a counter")?;
    let engine = Engine::start(plugin, None, EngineConfig::default()).context("starting counter v1")?;
    let direct = counter_v1::Counter::create().map_err(|e| anyhow::anyhow!("counter: {e}"))?;
    let request = Request::new("POST", "/incr", "", &[], b"");

    let time = |call: &dyn Fn() -> u16| {
        let started = Instant::now();
        for _ in 0..calls {
            black_box(call());
        }
        started.elapsed().as_nanos() as f64 / calls as f64
    };
    let abi_call = || instance.handle(black_box(&request)).status;
    let direct_call = || direct.handle(black_box(&request)).status;
    let engine_call = || engine.handle(black_box(&request)).response.status;
    // One unmeasured round of each warms caches and the allocator.
    for call in [&abi_call as &dyn Fn() -> u16, &direct_call, &engine_call] {
        time(call);
    }
    let (mut abi, mut plain, mut gated) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            abi.push(time(&abi_call));
            plain.push(time(&direct_call));
        } else {
            plain.push(time(&direct_call));
            abi.push(time(&abi_call));
        }
        gated.push(time(&engine_call));
        tick();
    }
    let (abi, direct) = (median(&abi), median(&plain));
    Ok(OverheadResult {
        abi,
        direct,
        difference: abi - direct,
        engine: median(&gated),
        rounds,
        calls,
    })
}
