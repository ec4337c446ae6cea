//! The swap pause against the size of the state: an in-process [`Engine`] serving the
//! release-built kv v1 (`dlopen`ed through the real loader), filled with `POST /preload` sent
//! through the engine, then swapped v1 → v2 → v1 … repeatedly. Each swap moves the whole store
//! in schema 1 (kv v2 imports it, and exports it for the way back). No traffic runs meanwhile:
//! this is the pause of the swap itself; `downtime` measures swaps under load.

use crate::stats::Summary;
use anyhow::{ensure, Context};
use molt_abi::Request;
use molt_supervisor::engine::{Engine, EngineConfig};
use molt_supervisor::loader::{Expect, Plugin};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One state size to measure.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// A label, e.g. `1 MB`.
    pub label: &'static str,
    /// The state's approximate size in bytes.
    pub bytes: u64,
    /// How many swaps to measure (after two unmeasured warm-up swaps).
    pub swaps: usize,
    /// Bytes per value: the store holds `bytes / value_bytes` keys (at least one) of this size.
    pub value_bytes: u64,
}

impl Size {
    /// The same size in values of `value_bytes` each.
    pub fn with_values(self, value_bytes: u64) -> Size {
        Size { value_bytes, ..self }
    }

    /// Keys in the store.
    pub fn keys(&self) -> u64 {
        (self.bytes / self.value_bytes).max(1)
    }
}

/// Bytes per value unless a size says otherwise: like a cache of 1 KiB records.
pub const VALUE_BYTES: u64 = 1024;

/// The pause at one state size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    /// The label.
    pub label: String,
    /// Where the state lives: `"bytes"` (exported and imported by the app's hooks) or
    /// `"tables"` (host-owned tables, handed over).
    pub state: &'static str,
    /// Whether each swap changes the state's schema.
    pub schema_change: bool,
    /// Keys in the store.
    pub keys: u64,
    /// Bytes per value.
    pub value_bytes: u64,
    /// Bytes of state each swap moved (as exported).
    pub state_bytes: u64,
    /// Swaps measured.
    pub swaps: usize,
    /// The pause (drain + export + import + switch), µs.
    pub pause_us: Summary,
    /// The export step, µs.
    pub export_us: Summary,
    /// The import step, µs.
    pub import_us: Summary,
    /// `state_bytes / median pause`: bytes migrated per second of pause.
    pub throughput_bytes_per_s: f64,
    /// The most memory a swap added: the process's peak RSS during the swap (`VmHWM`, reset
    /// before it) above its RSS before, KiB.
    pub extra_rss_kb_max: f64,
    /// `extra_rss_kb_max` over the state's size: the swap's peak memory as a multiple of the
    /// state (old and new state coexist until the import succeeded, so at least ~1).
    pub swap_peak_memory_factor: f64,
    /// The process's RSS after the store was filled, before the first swap (warm-ups
    /// included), KiB.
    pub rss_before_first_kb: u64,
    /// Its RSS after the last swap, KiB.
    pub rss_after_last_kb: u64,
    /// `rss_after_last_kb / rss_before_first_kb`: whether the memory of replaced instances
    /// and export buffers went back.
    pub rss_return_ratio: f64,
    /// Swaps between those two readings (warm-ups included).
    pub rss_swaps: usize,
}

/// Measures every size, calling `tick` after each swap.
pub fn run(
    kv_v1: &Path,
    kv_v2: &Path,
    run_dir: &Path,
    sizes: &[Size],
    mut tick: impl FnMut(&str),
) -> anyhow::Result<Vec<SizeResult>> {
    let v1 = molt_tests::drive::load_file(kv_v1, run_dir, &Expect::any()).context("loading kv v1")?;
    let v2 = molt_tests::drive::load_file(kv_v2, run_dir, &Expect::any()).context("loading kv v2")?;
    sizes
        .iter()
        .map(|size| one_size(&v1, &v2, size, &mut tick))
        .collect()
}

fn one_size(
    v1: &Arc<Plugin>,
    v2: &Arc<Plugin>,
    size: &Size,
    tick: &mut impl FnMut(&str),
) -> anyhow::Result<SizeResult> {
    let engine = filled(v1, size)?;
    swaps(&engine, v1, v2, size, size.keys(), "bytes", true, tick)
}

/// Measures the pause of code-only swaps of kv v3, whose state is in host-owned tables: two
/// copies of the same release (`a`, `b`, loaded separately) swapped `a → b → a …`.
pub fn run_tables(
    kv_v3: &Path,
    run_dir: &Path,
    sizes: &[Size],
    mut tick: impl FnMut(&str),
) -> anyhow::Result<Vec<SizeResult>> {
    let load = || molt_tests::drive::load_file(kv_v3, run_dir, &Expect::any()).context("loading kv v3");
    let (a, b) = (load()?, load()?);
    sizes
        .iter()
        .map(|size| {
            let engine = filled(&a, size)?;
            swaps(&engine, &a, &b, size, size.keys(), "tables", false, &mut tick)
        })
        .collect()
}

/// An engine on `plugin` filled with `size` of state through `POST /preload`.
pub fn filled(plugin: &Arc<Plugin>, size: &Size) -> anyhow::Result<Engine> {
    let config = EngineConfig {
        hook_timeout: Duration::from_secs(120),
        ..EngineConfig::default()
    };
    let engine = Engine::start(Arc::clone(plugin), None, config).context("starting the engine")?;
    let query = format!("keys={}&size={}", size.keys(), size.value_bytes);
    let served = engine.handle(&Request::new("POST", "/preload", &query, &[], b""));
    ensure!(
        served.response.status == 200,
        "POST /preload?{query}: {} {}",
        served.response.status,
        served.response.text()
    );
    Ok(engine)
}

#[allow(clippy::too_many_arguments)]
fn swaps(
    engine: &Engine,
    a: &Arc<Plugin>,
    b: &Arc<Plugin>,
    size: &Size,
    keys: u64,
    state: &'static str,
    schema_change: bool,
    tick: &mut impl FnMut(&str),
) -> anyhow::Result<SizeResult> {
    let (mut pause, mut export, mut import) = (Vec::new(), Vec::new(), Vec::new());
    let mut state_bytes = 0;
    let mut extra_kb: f64 = 0.0;
    let rss_before_first_kb = crate::memory::rss_kb();
    for i in 0..size.swaps + 2 {
        let target = if i % 2 == 0 { b } else { a };
        let before = crate::memory::reset_peak();
        let report = engine
            .swap(Arc::clone(target))
            .with_context(|| format!("swap {i} at {}", size.label))?;
        if i >= 2 {
            pause.push(micros(report.steps.pause));
            export.push(micros(report.steps.export));
            import.push(micros(report.steps.import));
            state_bytes = match &report.tables {
                Some(t) => t.bytes,
                None => report.state_bytes as u64,
            };
            if let Some(before) = before {
                extra_kb = extra_kb.max(crate::memory::peak_kb().saturating_sub(before) as f64);
            }
        }
        tick(size.label);
    }
    let rss_after_last_kb = crate::memory::rss_kb();
    let pause_us = Summary::of(&pause);
    Ok(SizeResult {
        label: size.label.to_owned(),
        state,
        schema_change,
        keys,
        value_bytes: size.value_bytes,
        state_bytes,
        swaps: size.swaps,
        pause_us,
        export_us: Summary::of(&export),
        import_us: Summary::of(&import),
        throughput_bytes_per_s: state_bytes as f64 / (pause_us.p50.max(1e-3) / 1e6),
        extra_rss_kb_max: extra_kb,
        swap_peak_memory_factor: extra_kb * 1024.0 / state_bytes.max(1) as f64,
        rss_before_first_kb,
        rss_after_last_kb,
        rss_return_ratio: rss_after_last_kb as f64 / rss_before_first_kb.max(1) as f64,
        rss_swaps: size.swaps + 2,
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
