//! The release builds the benchmark measures: the sample plugins and the `molt` binary, built
//! from source by the tests' artifacts helper (`Profile::Release`, in
//! `target/molt-artifacts/release`).

use molt_tests::artifacts::{molt_binary_with, plugin_with, Profile};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Paths of the release-built libraries and binary.
#[derive(Debug, Clone)]
pub struct Built {
    /// The `molt` binary.
    pub molt: PathBuf,
    /// `libcounter_v1.so`.
    pub counter_v1: PathBuf,
    /// `libcounter_v2.so`.
    pub counter_v2: PathBuf,
    /// `libkv_v1.so`.
    pub kv_v1: PathBuf,
    /// `libkv_v2.so`.
    pub kv_v2: PathBuf,
    /// `libkv_v3.so` (state in host-owned tables).
    pub kv_v3: PathBuf,
    /// `libkv_v4.so` (kv v3 with a write counter in each record).
    pub kv_v4: PathBuf,
    /// How long building (or finding up to date) took.
    pub took: Duration,
}

/// The versions the sample plugins answer as.
pub const V1: &str = "1.0.0";
/// See [`V1`].
pub const V2: &str = "2.0.0";

/// Builds (or finds up to date) everything, with cargo's `release` profile.
pub fn build() -> Built {
    let started = Instant::now();
    let release = |name| plugin_with(name, Profile::Release);
    let (counter_v1, counter_v2, kv_v1, kv_v2) = (
        release("counter_v1"),
        release("counter_v2"),
        release("kv_v1"),
        release("kv_v2"),
    );
    let (kv_v3, kv_v4) = (release("kv_v3"), release("kv_v4"));
    let molt = molt_binary_with(Profile::Release);
    Built {
        kv_v3,
        kv_v4,
        molt,
        counter_v1,
        counter_v2,
        kv_v1,
        kv_v2,
        took: started.elapsed(),
    }
}
