//! Command line: `serve` (default), `sync`, `webhook`, `demo`, `validate`, `render`, `emulator`,
//! `bench`, `version`.
//! Every flag can also be set with an environment variable `AKEYLESS_CSI_<FLAG>`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::runtime::{BackendArgs, TelemetryArgs};
use crate::server;
use crate::spec::parse_duration;

#[derive(Parser, Debug)]
#[command(
    name = "akeyless-csi-provider",
    version,
    about = "Secrets Store CSI Driver provider for Akeyless",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once at start: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the provider on its Unix socket (the default).
    Serve(ServeArgs),
    /// Run a whole mount end to end against an embedded Akeyless emulator; no cluster or account needed.
    #[cfg(feature = "tools")]
    Demo(crate::tools::demo::DemoArgs),
    /// Check SecretProviderClass YAML files offline; exit 1 on any problem.
    Validate(crate::validate::ValidateArgs),
    /// Dry-run mount of a SecretProviderClass against a real Akeyless API or gateway: writes the
    /// files to a folder and prints their modes and object versions.
    Render(crate::dry_run::RenderArgs),
    /// Mirror SecretProviderClasses annotated akeyless.io/sync-service-account into Kubernetes
    /// Secrets, without a mounting pod (a leader-elected controller).
    #[cfg(feature = "sync")]
    Sync(crate::sync::SyncArgs),
    /// Serve a validating admission webhook that refuses broken Akeyless SecretProviderClasses
    /// at apply time (HTTPS POST /validate), with warnings for risky ones.
    #[cfg(feature = "sync")]
    Webhook(crate::webhook::WebhookArgs),
    /// Run the Akeyless API emulator on its own (local development, end-to-end tests).
    #[cfg(feature = "tools")]
    Emulator(EmulatorArgs),
    /// Measure mount latency, throughput, backend calls and memory against the emulator.
    #[cfg(feature = "tools")]
    Bench(crate::tools::bench::BenchArgs),
    /// Print version and build information.
    Version(VersionArgs),
    /// Internal: evaluates one jq filter for the provider, in a process of its own with its own
    /// limits (started by the provider, never by hand).
    #[command(name = crate::eval::WORKER_SUBCOMMAND, hide = true)]
    EvalWorker(crate::eval::WorkerArgs),
}

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Also print the build's target, cargo profile, features and compiler settings.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Unix socket to listen on (the driver looks for <providers dir>/akeyless.sock).
    #[arg(
        long,
        env = "AKEYLESS_CSI_ENDPOINT",
        default_value = "/provider/akeyless.sock"
    )]
    pub endpoint: PathBuf,
    /// Longest a mount may take when the driver's deadline is longer or absent.
    #[arg(long, env = "AKEYLESS_CSI_MOUNT_TIMEOUT", default_value = "110s", value_parser = parse_duration)]
    pub mount_timeout: Duration,
    /// Mounts served at once; more wait for a slot within their deadline (a burst of pods
    /// queues instead of spawning unbounded work).
    #[arg(long, env = "AKEYLESS_CSI_MAX_CONCURRENT_MOUNTS", default_value_t = server::DEFAULT_MAX_CONCURRENT_MOUNTS)]
    pub max_concurrent_mounts: usize,
    /// Serve even when the socket's directory is world-writable (anyone who can write there
    /// could replace the socket and receive mounts).
    #[arg(long, env = "AKEYLESS_CSI_ALLOW_WORLD_WRITABLE_SOCKET_DIR")]
    pub allow_world_writable_socket_dir: bool,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `emulator`: the Akeyless API emulator on its own (as the `akeyless-emulator` binary).
#[cfg(feature = "tools")]
#[derive(Args, Debug)]
pub struct EmulatorArgs {
    #[command(flatten)]
    pub emulator: akeyless_emulator::ServeArgs,
    /// Log format.
    #[arg(
        long,
        env = "AKEYLESS_CSI_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: crate::telemetry::LogFormat,
}
