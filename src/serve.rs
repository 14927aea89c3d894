//! `serve` (the default command): the provider on its Unix socket, with health and metrics.

use std::sync::Arc;

use crate::cli::ServeArgs;
use crate::runtime::{provider_context, shutdown_signal, spawn_telemetry};
use crate::server::{self, ProviderService, Readiness};
use crate::telemetry;

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
    let health_router = server::health::health_router(server::health::HealthState {
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
