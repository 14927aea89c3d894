//! What the long-running commands share, below all of them: the flag groups for logging and
//! telemetry (`serve`, `sync`, `webhook`) and for reaching Akeyless (`serve`, `sync`, `render`,
//! `demo`), the mount context built from them, the telemetry listeners and the shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::akeyless::ClientFactory;
use crate::mount::{CacheSettings, ProviderContext};
use crate::render::VersionKey;
use crate::spec::{GatewayAllowList, SpecDefaults, normalize_gateway_url, parse_duration};
use crate::telemetry::{self, LogFormat};

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
