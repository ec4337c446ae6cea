//! What a run measures, and how much of it: the full run, or `--quick`.

use crate::pause::Size;
use serde::Serialize;
use std::time::Duration;

/// The sizes of every measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `--quick`.
    pub quick: bool,
    /// State sizes for the pause, and swaps at each.
    #[serde(skip)]
    pub sizes: Vec<Size>,
    /// State sizes for the pause of code-only swaps with the state in tables.
    #[serde(skip)]
    pub table_sizes: Vec<Size>,
    /// The state size of the record schema change under writes, and of the snapshot stall.
    #[serde(skip)]
    pub change_size: Size,
    /// The state size of the snapshot stall.
    #[serde(skip)]
    pub snapshot_size: Size,
    /// Upgrades (and as many rollbacks) of the record schema change.
    pub change_rounds: usize,
    /// Writer threads during the schema change.
    pub change_writers: usize,
    /// Their total write rate, writes/s.
    pub change_write_rate: f64,
    /// A/B rounds of the tables against in-plugin map comparison.
    pub ratio_rounds: usize,
    /// Seconds per side of one of those rounds.
    pub ratio_round_s: f64,
    /// Keep-alive connections of the load generator.
    pub connections: usize,
    /// Swaps under load for failed requests and lost writes.
    pub swaps_under_load: u64,
    /// A/B rounds of the boundary comparison.
    pub boundary_rounds: usize,
    /// Seconds per side of a boundary round.
    pub boundary_round_s: f64,
    /// Rounds of the call-overhead loop.
    pub overhead_rounds: usize,
    /// Calls per overhead round.
    pub overhead_calls: u64,
    /// Pushes timed.
    pub pushes: usize,
    /// Upgrades each way in the restart comparison.
    pub restart_runs: usize,
    /// Steady load before and after each of those upgrades, s.
    pub restart_steady_s: f64,
    /// Swaps of the memory run.
    pub rss_swaps: u64,
    /// A/B rounds of molt against the plain axum server.
    pub peer_rounds: usize,
    /// Seconds per side of those rounds.
    pub peer_round_s: f64,
    /// Seconds of idleness measured.
    pub idle_s: f64,
    /// MB of kv state under snapshots.
    pub stall_state_mb: u64,
    /// Seconds of load while snapshots run (and again without).
    pub stall_window_s: f64,
}

impl Plan {
    /// The plan for a full or a quick run.
    pub fn new(quick: bool, connections: usize) -> Plan {
        let size = |label, bytes, swaps| Size {
            label,
            bytes,
            swaps,
            value_bytes: crate::pause::VALUE_BYTES,
        };
        // 1M keys of 100-byte values (about 115 MB as exported), swapped 16 times after the
        // two warm-ups: the many-small-values case, and the memory-returned check.
        let small_values = |swaps| size("115 MB, 100 B values", 100 * 1_000_000, swaps).with_values(100);
        let (kb, mb) = (1u64 << 10, 1u64 << 20);
        if quick {
            Plan {
                quick,
                sizes: vec![
                    size("1 KB", kb, 200),
                    size("1 MB", mb, 200),
                    size("1 MB, 100 B values", 1_000_000, 200).with_values(100),
                    size("10 MB", 10 * mb, 40),
                    size("100 MB", 100 * mb, 10),
                    small_values(16),
                ],
                table_sizes: vec![size("1 KB", kb, 200), size("100 MB", 100 * mb, 100)],
                change_size: size("100 MB", 100 * mb, 0),
                snapshot_size: size("100 MB", 100 * mb, 0),
                change_rounds: 3,
                change_writers: 2,
                change_write_rate: 20_000.0,
                ratio_rounds: 10,
                ratio_round_s: 0.2,
                connections,
                swaps_under_load: 100,
                boundary_rounds: 24,
                boundary_round_s: 0.25,
                overhead_rounds: 5,
                overhead_calls: 200_000,
                pushes: 30,
                restart_runs: 1,
                restart_steady_s: 0.5,
                rss_swaps: 200,
                peer_rounds: 12,
                peer_round_s: 0.5,
                idle_s: 10.0,
                stall_state_mb: 100,
                stall_window_s: 4.0,
            }
        } else {
            Plan {
                quick,
                sizes: vec![
                    size("1 KB", kb, 200),
                    size("1 MB", mb, 200),
                    size("1 MB, 100 B values", 1_000_000, 200).with_values(100),
                    size("100 MB", 100 * mb, 30),
                    small_values(16),
                ],
                table_sizes: vec![
                    size("1 KB", kb, 200),
                    size("100 MB", 100 * mb, 200),
                    size("1 GB", 1024 * mb, 200),
                ],
                change_size: size("100 MB", 100 * mb, 0),
                snapshot_size: size("1 GB", 1024 * mb, 0),
                change_rounds: 5,
                change_writers: 2,
                change_write_rate: 20_000.0,
                ratio_rounds: 20,
                ratio_round_s: 0.25,
                connections,
                swaps_under_load: 200,
                boundary_rounds: 80,
                boundary_round_s: 0.25,
                overhead_rounds: 9,
                overhead_calls: 1_000_000,
                pushes: 100,
                restart_runs: 3,
                restart_steady_s: 1.0,
                rss_swaps: 1000,
                peer_rounds: 30,
                peer_round_s: 0.5,
                idle_s: 10.0,
                stall_state_mb: 100,
                stall_window_s: 6.0,
            }
        }
    }

    /// [`Plan::boundary_round_s`] as a duration.
    pub fn boundary_round(&self) -> Duration {
        Duration::from_secs_f64(self.boundary_round_s)
    }

    /// [`Plan::restart_steady_s`] as a duration.
    pub fn restart_steady(&self) -> Duration {
        Duration::from_secs_f64(self.restart_steady_s)
    }
}
