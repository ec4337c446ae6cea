//! `molt run`.

use crate::daemon::{self, RunConfig};
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `molt run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The release volume.
    #[arg(long, env = "MOLT_VOLUME")]
    volume: PathBuf,
    /// The app to serve.
    #[arg(long, env = "MOLT_APP")]
    app: String,
    /// Address for app traffic (HTTP/1.1).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address for the control API.
    #[arg(long, default_value = "127.0.0.1:7070")]
    control: SocketAddr,
    /// Where this instance keeps its snapshots [default: <volume>/<app>/state/<hostname>].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// How often to snapshot the state ("0s": only on shutdown).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    snapshot_interval: Duration,
    /// Also poll `current` every MS milliseconds (for network filesystems, where inotify sees nothing).
    #[arg(long, value_name = "MS")]
    poll_interval: Option<u64>,
    /// Do not watch the volume: only the control API changes the running version.
    #[arg(long)]
    no_watch: bool,
    /// File holding the bearer token for mutating control calls (required off loopback).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Watch a new version this long after a swap; roll back if it turns unhealthy ("0s": off).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    probation: Duration,
    /// How long a swap waits for in-flight requests before giving up.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// How long an export or import hook may run before the swap is abandoned.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    hook_timeout: Duration,
    /// Start with empty state when the latest snapshot is corrupt (it is kept aside).
    #[arg(long)]
    discard_corrupt_state: bool,
    /// Where private copies of libraries are loaded from [default: the system temp dir]; must
    /// not be mounted noexec.
    #[arg(long, env = "MOLT_RUN_DIR")]
    run_dir: Option<PathBuf>,
    /// How long opening an uploaded library (in a child process) may take before it is refused.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    inspect_timeout: Duration,
    /// How long a request's body may take to arrive on the traffic listener (408 past it).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    body_timeout: Duration,
    /// Run only releases signed by this public key (`molt keygen`'s `molt.pub`); repeat it to
    /// trust several keys, e.g. the old and the new one during a rotation.
    #[arg(long, value_name = "FILE")]
    trusted_key: Vec<PathBuf>,
    /// Write the bound addresses and pid here as JSON once serving (useful with port 0).
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// On SIGTERM, first hand the state to a live peer other than this supervisor, found
    /// behind `dns+http://NAME:PORT` (a headless Service) or at `http://HOST:PORT`; the token
    /// file is used for both. If no peer takes it, the state goes to the final snapshot as
    /// usual (`molt absorb` can merge it later).
    #[arg(long, value_name = "TARGET")]
    handoff_on_stop: Option<String>,
    /// The termination grace period a handoff on stop must fit in (the pod's
    /// terminationGracePeriodSeconds, less what preStop hooks take).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    handoff_grace: Duration,
    /// How long a handoff on stop stays unready, still serving, before it seals.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    handoff_unready_wait: Duration,
}

/// Runs the supervisor until SIGTERM or SIGINT.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let token = args.token_file.as_deref().map(super::read_token).transpose()?;
    let trusted_keys = crate::signing::TrustedKeys::read(&args.trusted_key).context("--trusted-key")?;
    if !trusted_keys.is_empty() {
        tracing::info!(keys = %trusted_keys.fingerprints(), "only releases signed by these keys will run");
    }
    let config = RunConfig {
        listen: args.listen,
        control: args.control,
        state_dir: args.state_dir,
        snapshot_interval: args.snapshot_interval,
        poll_interval: args.poll_interval.map(Duration::from_millis),
        watch: !args.no_watch,
        token,
        drain_timeout: args.drain_timeout,
        hook_timeout: args.hook_timeout,
        probation: args.probation,
        discard_corrupt_state: args.discard_corrupt_state,
        addr_file: args.addr_file,
        run_dir: args.run_dir,
        inspect_timeout: args.inspect_timeout,
        body_timeout: args.body_timeout,
        trusted_keys,
        handoff_on_stop: args.handoff_on_stop,
        handoff: crate::handoff::HandoffOptions {
            grace: Some(args.handoff_grace),
            unready_wait: args.handoff_unready_wait,
            drain_timeout: args.drain_timeout,
            step_timeout: args.handoff_grace,
            ..Default::default()
        },
        ..RunConfig::new(args.volume, args.app)
    };
    // At least two workers: the front lets all but one call the app inline, so one is always
    // free to accept and read while a handler blocks (see `front`).
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .thread_name("molt")
        // Requests go to the blocking pool only during a swap's pause or past the inline bound
        // (see `front`); cap it so a burst cannot leave hundreds of idle threads behind.
        .max_blocking_threads(64)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(daemon::run(config, daemon::shutdown_signal()))?;
    Ok(())
}
