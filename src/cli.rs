//! Command line: `serve` (default), `sync`, `webhook`, `demo`, `validate`, `render`, `emulator`,
//! `bench`, `version`.
//! Every flag can also be set with an environment variable `AKEYLESS_CSI_<FLAG>`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::akeyless::ClientFactory;
use crate::mount::{CacheSettings, ProviderContext};
use crate::render::VersionKey;
use crate::server::{self, ProviderService, Readiness};
use crate::spec::{GatewayAllowList, SpecDefaults, normalize_gateway_url};
use crate::telemetry::{self, LogFormat};

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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the provider on its Unix socket (the default).
    Serve(ServeArgs),
    /// Run a whole mount end to end against an embedded Akeyless emulator; no cluster or account needed.
    Demo(crate::demo::DemoArgs),
    /// Check SecretProviderClass YAML files offline; exit 1 on any problem.
    Validate(crate::validate::ValidateArgs),
    /// Dry-run mount of a SecretProviderClass against a real Akeyless API or gateway: writes the
    /// files to a folder and prints their modes and object versions.
    Render(crate::dry_run::RenderArgs),
    /// Mirror SecretProviderClasses annotated akeyless.io/sync-service-account into Kubernetes
    /// Secrets, without a mounting pod (a leader-elected controller).
    Sync(crate::sync::SyncArgs),
    /// Serve a validating admission webhook that refuses broken Akeyless SecretProviderClasses
    /// at apply time (HTTPS POST /validate), with warnings for risky ones.
    Webhook(crate::webhook::WebhookArgs),
    /// Run the Akeyless API emulator on its own (local development, end-to-end tests).
    Emulator(EmulatorArgs),
    /// Measure mount latency, throughput, backend calls and memory against the emulator.
    Bench(crate::bench::BenchArgs),
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

pub use crate::spec::parse_duration;

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

/// Logging, health and metrics: shared by `serve` and `sync`.
#[derive(Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// HTTP address of /healthz (process alive) and /readyz (socket answers gRPC health and
    /// Akeyless was reachable recently).
    #[arg(long, env = "AKEYLESS_CSI_HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    pub health_addr: SocketAddr,
    /// HTTP address of Prometheus /metrics (may equal --health-addr to share one port).
    #[arg(
        long,
        env = "AKEYLESS_CSI_METRICS_ADDR",
        default_value = "0.0.0.0:8095"
    )]
    pub metrics_addr: SocketAddr,
    /// Log format.
    #[arg(
        long,
        env = "AKEYLESS_CSI_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,
    /// Log level or RUST_LOG-style filter (e.g. info,akeyless_csi_provider=debug).
    #[arg(long, env = "AKEYLESS_CSI_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// How the process reaches and reads Akeyless: shared by `serve`, `sync` and `render`.
#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Default Akeyless API or gateway URL, for SecretProviderClasses that set no akeylessGatewayURL.
    #[arg(
        long,
        env = "AKEYLESS_CSI_AKEYLESS_URL",
        default_value = "https://api.akeyless.io"
    )]
    pub akeyless_url: String,
    /// Hosts SecretProviderClasses may name in akeylessGatewayURL: comma-separated host or
    /// host:port patterns, `*.` for subdomains (e.g. `api.akeyless.io,*.gw.example.com:8000`).
    /// Any other gateway fails the mount (InvalidConfig) before a request is sent.
    /// --akeyless-url is always allowed. Empty (default): any host.
    #[arg(long, env = "AKEYLESS_CSI_ALLOWED_GATEWAYS", default_value = "")]
    pub allowed_gateways: String,
    /// Extra CA certificates (PEM) trusted for Akeyless/gateway TLS.
    #[arg(long, env = "AKEYLESS_CSI_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Timeout for opening a connection to Akeyless.
    #[arg(long, env = "AKEYLESS_CSI_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// File holding the key of the content hashes reported as object versions of unpinned
    /// items. Give every node the same key (the Helm chart creates one) so versions agree
    /// across nodes and restarts; without it a random key is used per process.
    #[arg(long, env = "AKEYLESS_CSI_OBJECT_VERSION_KEY_FILE")]
    pub object_version_key_file: Option<PathBuf>,
    /// Lease length assumed for a dynamic secret whose answer reports none (objects can set
    /// `ttl`). The credential is reused for the pod until two-thirds of it has passed.
    #[arg(long, env = "AKEYLESS_CSI_DYNAMIC_SECRET_TTL", default_value = "15m", value_parser = parse_duration)]
    pub dynamic_secret_ttl: Duration,
    /// How long a value read from Akeyless may be reused by later mounts of the same identity
    /// (e.g. 30s for large fleets with akeylessTokenScope: serviceAccount). 0 (default): values
    /// are always read fresh; only identical reads in flight at the same time share a request.
    #[arg(long, env = "AKEYLESS_CSI_VALUE_CACHE_TTL", default_value = "0s", value_parser = parse_duration)]
    pub value_cache_ttl: Duration,
    /// Most requests to Akeyless in flight at once across all mounts; more wait for a slot
    /// within their deadline.
    #[arg(
        long,
        env = "AKEYLESS_CSI_MAX_BACKEND_CONCURRENCY",
        default_value_t = 64
    )]
    pub max_backend_concurrency: usize,
    /// Most bytes one mount may return (all files together). Keep it under the driver's
    /// --max-call-recv-msg-size (4 MiB by default), or mounts fail in the driver instead.
    #[arg(long, env = "AKEYLESS_CSI_MAX_MOUNT_BYTES", default_value_t = crate::spec::DRIVER_MESSAGE_LIMIT - 64 * 1024)]
    pub max_mount_bytes: usize,
    /// Largest answer read from Akeyless, in bytes; a larger one fails the mount
    /// (BackendUnavailable) instead of being buffered.
    #[arg(long, env = "AKEYLESS_CSI_MAX_RESPONSE_BYTES", default_value_t = crate::akeyless::MAX_RESPONSE_BYTES)]
    pub max_response_bytes: usize,
    /// Most objects one SecretProviderClass may list.
    #[arg(long, env = "AKEYLESS_CSI_MAX_OBJECTS", default_value_t = 500)]
    pub max_objects: usize,
    #[command(flatten)]
    pub cloud: crate::cloud::CloudArgs,
    #[command(flatten)]
    pub eval: crate::eval::EvalArgs,
}

#[derive(Args, Debug)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "AKEYLESS_CSI_EMULATOR_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub listen: SocketAddr,
    /// Seed file (YAML or JSON) with auth methods, grants and items.
    #[arg(long, env = "AKEYLESS_CSI_EMULATOR_SEED")]
    pub seed: Option<PathBuf>,
    /// Log format.
    #[arg(
        long,
        env = "AKEYLESS_CSI_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// Builds the shared mount context from the serve flags.
pub fn provider_context(args: &BackendArgs) -> Result<ProviderContext, String> {
    let gateway_url =
        normalize_gateway_url(&args.akeyless_url).map_err(|e| format!("--akeyless-url {e}"))?;
    if gateway_url.starts_with("http://") {
        tracing::warn!(url = %gateway_url, "--akeyless-url uses plain http://: tokens and secrets cross the network unencrypted");
    }
    let ca_bundle = match &args.ca_bundle {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let clients = ClientFactory::new(ca_bundle.as_deref(), args.connect_timeout)?;
    let version_key = match &args.object_version_key_file {
        Some(path) => {
            let key = std::fs::read(path)
                .map_err(|e| format!("--object-version-key-file {}: {e}", path.display()))?;
            if key.len() < 16 {
                return Err(format!(
                    "--object-version-key-file {}: the key must be at least 16 bytes",
                    path.display()
                ));
            }
            VersionKey::new(key)
        }
        None => {
            tracing::warn!(
                "no --object-version-key-file: object versions of unpinned items use a random per-process key, \
                 so they differ between nodes and change on restart"
            );
            VersionKey::random()
        }
    };
    // Filters that are not plain paths run in worker processes: this binary, re-executed
    // through /proc/self/exe (the running image, whatever happens to its path on disk).
    let evaluator = crate::eval::Evaluator::workers(&args.eval, "/proc/self/exe")?;
    let mut ctx = ProviderContext::new(
        SpecDefaults {
            gateway_url,
            allowed_gateways: GatewayAllowList::parse(&args.allowed_gateways)
                .map_err(|e| format!("--allowed-gateways: {e}"))?,
            provider_gcp_audience: args.cloud.gcp_metadata_audience.clone(),
            max_objects: args.max_objects,
            max_mount_bytes: args.max_mount_bytes,
        },
        clients,
        version_key,
        CacheSettings {
            dynamic_default_ttl: args.dynamic_secret_ttl,
            value_cache_ttl: args.value_cache_ttl,
            max_backend_concurrency: args.max_backend_concurrency,
            max_response_bytes: args.max_response_bytes,
            ..CacheSettings::default()
        },
    )
    .with_cloud(args.cloud.options()?);
    ctx.evaluator = evaluator;
    Ok(ctx)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// Serves /healthz, /readyz and /metrics as the flags say. One listener when both flags name
/// the same fixed address; port 0 means "any free port". Returns the bound addresses.
pub async fn spawn_telemetry(
    args: &TelemetryArgs,
    health_router: axum::Router,
    metrics_router: axum::Router,
) -> Result<(SocketAddr, SocketAddr), String> {
    if args.metrics_addr == args.health_addr && args.health_addr.port() != 0 {
        let bound = telemetry::spawn_http(args.health_addr, health_router.merge(metrics_router))
            .await
            .map_err(|e| format!("--health-addr {}: {e}", args.health_addr))?;
        Ok((bound, bound))
    } else {
        let health = telemetry::spawn_http(args.health_addr, health_router)
            .await
            .map_err(|e| format!("--health-addr {}: {e}", args.health_addr))?;
        let bound = telemetry::spawn_http(args.metrics_addr, metrics_router)
            .await
            .map_err(|e| format!("--metrics-addr {}: {e}", args.metrics_addr))?;
        Ok((health, bound))
    }
}

/// `serve`: runs until SIGTERM/SIGINT, then drains in-flight mounts and removes the socket.
pub async fn run_serve(args: ServeArgs) -> Result<(), String> {
    telemetry::init_logging(args.telemetry.log_format, &args.telemetry.log_level);
    // One registry and one reachability record for the whole process: the mount pipeline and
    // the Akeyless client record into them, /metrics and /readyz read them.
    let metrics = telemetry::Metrics::new();
    let backend_health = telemetry::BackendHealth::new();
    let ctx = Arc::new(
        provider_context(&args.backend)?.with_telemetry(metrics.clone(), backend_health.clone()),
    );
    let readiness = Readiness::default();
    let health_router = telemetry::health_router(telemetry::HealthState {
        readiness: readiness.clone(),
        socket: args.endpoint.clone(),
        backend: backend_health,
    });
    let metrics_router = telemetry::metrics_router(metrics.clone());
    let (health, metrics_bound) =
        spawn_telemetry(&args.telemetry, health_router, metrics_router).await?;
    server::check_socket_dir(&args.endpoint, args.allow_world_writable_socket_dir)
        .map_err(|e| format!("--endpoint {}: {e}", args.endpoint.display()))?;
    let listener = server::bind_socket(&args.endpoint)
        .map_err(|e| format!("--endpoint {}: {e}", args.endpoint.display()))?;
    tracing::info!(
        endpoint = %args.endpoint.display(),
        health = %health,
        metrics = %metrics_bound,
        akeyless_url = %ctx.defaults.gateway_url,
        version = env!("CARGO_PKG_VERSION"),
        "akeyless-csi-provider serving"
    );
    let service = ProviderService::new(ctx, args.mount_timeout)
        .with_metrics(metrics)
        .with_max_concurrent_mounts(args.max_concurrent_mounts);
    let result = server::serve(listener, service, readiness, shutdown_signal()).await;
    let _ = std::fs::remove_file(&args.endpoint);
    result.map_err(|e| format!("gRPC server: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// `emulator`: serves the Akeyless API emulator until SIGTERM/SIGINT.
pub async fn run_emulator(args: EmulatorArgs) -> Result<(), String> {
    telemetry::init_logging(args.log_format, "info");
    let emulator = crate::emulator::Emulator::start(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    if let Some(path) = &args.seed {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("--seed {}: {e}", path.display()))?;
        let seed: crate::emulator::Seed = serde_yaml_ng::from_str(&text)
            .map_err(|e| format!("--seed {}: {e}", path.display()))?;
        emulator
            .state()
            .try_load_seed(&seed)
            .map_err(|e| format!("--seed {}: {e}", path.display()))?;
    }
    println!("Akeyless emulator listening on {}", emulator.url());
    shutdown_signal().await;
    emulator.shutdown().await;
    Ok(())
}

pub fn print_version(verbose: bool) {
    println!(
        "akeyless-csi-provider {}\ngit commit: {}\nprotocol: {}\nrustc target: {}-{}",
        env!("CARGO_PKG_VERSION"),
        option_env!("AKEYLESS_CSI_GIT_COMMIT").unwrap_or("unknown"),
        server::PROTOCOL_VERSION,
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
    if verbose {
        let features = match env!("AKEYLESS_CSI_BUILD_FEATURES") {
            "" => "(none)",
            list => list,
        };
        let panic = if cfg!(panic = "abort") {
            "abort"
        } else {
            "unwind"
        };
        println!(
            "target: {}\nprofile: {}\nfeatures: {features}\nopt-level: {}\npanic: {panic}\n\
             debug-assertions: {}\nstatic (crt-static): {}\nrustc: {}",
            env!("AKEYLESS_CSI_BUILD_TARGET"),
            env!("AKEYLESS_CSI_BUILD_PROFILE"),
            env!("AKEYLESS_CSI_BUILD_OPT_LEVEL"),
            cfg!(debug_assertions),
            cfg!(target_feature = "crt-static"),
            env!("AKEYLESS_CSI_BUILD_RUSTC"),
        );
    }
}
