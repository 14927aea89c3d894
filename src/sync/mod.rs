//! `sync`: mirrors SecretProviderClasses into Kubernetes Secrets without a mounting pod.
//!
//! The second front door of the mount pipeline: for each SPC with `spec.provider: akeyless` and
//! the annotation `akeyless.io/sync-service-account`, the controller mints a token for that
//! ServiceAccount of the SPC's own namespace, runs the very mount a pod would get
//! ([`crate::mount::mount_with_deadline`]) and server-side-applies the Secrets the SPC's
//! `secretObjects` declare. One replica works at a time (a Lease).
//!
//! `spc` and `secret` are pure (parsing, validation, shaping, ownership rules); `reconcile`,
//! `tokens` and `leader` talk to the API server.

mod context;
mod leader;
mod reconcile;
mod render;
mod secret;
mod spc;
mod tls;
mod tokens;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use clap::Args;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;

use crate::runtime::{BackendArgs, TelemetryArgs};
use crate::spec::parse_duration;
use crate::telemetry;
use context::{Context, SyncOptions};
use leader::{ElectionConfig, LeaderElection};

#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    /// Namespace of the leader-election Lease (the controller's own namespace).
    #[arg(
        long,
        env = "AKEYLESS_CSI_LEADER_ELECTION_NAMESPACE",
        default_value = "kube-system"
    )]
    pub leader_election_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "AKEYLESS_CSI_LEADER_ELECTION_LEASE",
        default_value = "akeyless-csi-provider-sync"
    )]
    pub leader_election_lease: String,
    /// This replica's name in the Lease (default: $POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long a leader's Lease is valid without renewal; a standby waits this long.
    #[arg(long, env = "AKEYLESS_CSI_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// A leader that couldn't renew for this long stops writing (must be < --lease-duration).
    #[arg(long, env = "AKEYLESS_CSI_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// How often the Lease is renewed or tried.
    #[arg(long, env = "AKEYLESS_CSI_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
    /// Shortest `akeyless.io/sync-interval` accepted; shorter ones are refused with an Event.
    #[arg(long, env = "AKEYLESS_CSI_MIN_SYNC_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub min_sync_interval: Duration,
    /// Only sync SPCs in these namespaces (comma-separated); empty: every namespace.
    #[arg(long, env = "AKEYLESS_CSI_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Audience of the ServiceAccount tokens minted for SPCs that set no akeylessTokenAudience
    /// (azure_ad SPCs use api://AzureADTokenExchange). Empty: the API server's default audience.
    #[arg(long, env = "AKEYLESS_CSI_TOKEN_AUDIENCE", default_value = "akeyless")]
    pub token_audience: String,
    /// Lifetime asked for minted ServiceAccount tokens (at least 10m); each is reused for 80% of it.
    #[arg(long, env = "AKEYLESS_CSI_TOKEN_EXPIRATION", default_value = "1h", value_parser = parse_duration)]
    pub token_expiration: Duration,
    /// Longest one SPC's read from Akeyless may take.
    #[arg(long, env = "AKEYLESS_CSI_MOUNT_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub mount_timeout: Duration,
    /// Export the last-success time of each SPC with namespace and name labels
    /// (`--spc-metrics=false` for clusters with very many synced SPCs).
    #[arg(long, env = "AKEYLESS_CSI_SPC_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub spc_metrics: bool,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `sync`: runs until SIGTERM/SIGINT; then releases the Lease.
pub async fn run(args: SyncArgs) -> Result<(), String> {
    telemetry::init_logging(args.telemetry.log_format, &args.telemetry.log_level);
    if args.renew_deadline >= args.lease_duration {
        return Err("--renew-deadline must be shorter than --lease-duration".into());
    }
    if args.token_expiration < Duration::from_secs(600) {
        return Err("--token-expiration must be at least 10m (the API server's minimum)".into());
    }
    let metrics = telemetry::Metrics::new();
    let provider = Arc::new(
        crate::runtime::provider_context(&args.backend)?
            .with_telemetry(metrics.clone(), telemetry::BackendHealth::new()),
    );
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("Kubernetes client (in-cluster config or KUBECONFIG): {e}"))?;
    let ready = Arc::new(AtomicBool::new(false));
    let (health, metrics_addr) = crate::runtime::spawn_telemetry(
        &args.telemetry,
        health_router(ready.clone()),
        telemetry::metrics_router(metrics.clone()),
    )
    .await?;
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    tracing::info!(
        health = %health,
        metrics = %metrics_addr,
        identity = %identity,
        lease = %format!("{}/{}", args.leader_election_namespace, args.leader_election_lease),
        namespaces = ?args.namespaces,
        akeyless_url = %provider.defaults.gateway_url,
        version = env!("CARGO_PKG_VERSION"),
        "akeyless-csi-provider sync starting"
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        provider,
        tokens::TokenSource::new(client.clone(), args.token_expiration),
        Recorder::new(
            client.clone(),
            Reporter {
                controller: "akeyless-csi-provider-sync".into(),
                instance: Some(identity.clone()),
            },
        ),
        metrics,
        sync_options(&args),
    ));
    let election = LeaderElection::new(client.clone(), election_config(&args, identity));
    ready.store(true, Ordering::Relaxed);

    let shutdown = crate::runtime::shutdown_signal();
    lead(election, client, ctx, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

/// Controller-wide settings from the flags.
fn sync_options(args: &SyncArgs) -> SyncOptions {
    SyncOptions {
        min_interval: args.min_sync_interval,
        namespaces: args
            .namespaces
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
        default_audience: args.token_audience.clone(),
        mount_timeout: args.mount_timeout,
        spc_metrics: args.spc_metrics,
    }
}

/// The leader-election Lease of this replica.
fn election_config(args: &SyncArgs, identity: String) -> ElectionConfig {
    ElectionConfig {
        namespace: args.leader_election_namespace.clone(),
        name: args.leader_election_lease.clone(),
        identity,
        lease_duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.retry_period,
    }
}

/// Syncs while leading, stands by while not, until `shutdown`; then releases the Lease.
async fn lead(
    mut election: LeaderElection,
    client: kube::Client,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tracing::info!("waiting to become the leader");
        tokio::select! {
            _ = election.acquire() => {}
            _ = &mut shutdown => break,
        }
        tracing::info!("leading: syncing SecretProviderClasses");
        let lost = tokio::select! {
            _ = run_controller(client.clone(), ctx.clone()) => false,
            _ = election.hold() => true,
            _ = &mut shutdown => false,
        };
        if !lost {
            election.release().await;
            break;
        }
        tracing::warn!("lost the leadership; stopped syncing");
    }
}

/// The controller proper: watches SPCs and the Secrets we manage; runs until its watches end.
async fn run_controller(client: kube::Client, ctx: Arc<Context>) {
    let ar = spc::api_resource();
    let spcs: Api<spc::SecretProviderClass> = Api::all_with(client.clone(), &ar);
    let secrets: Api<Secret> = Api::all(client);
    Controller::new_with(spcs, watcher::Config::default(), ar)
        .owns(
            secrets,
            watcher::Config::default().labels(&format!("{}=true", secret::LABEL_MANAGED)),
        )
        .run(
            reconcile::reconcile,
            |_, _: &std::convert::Infallible, _| Action::await_change(),
            ctx,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!(error = %e, "sync controller");
            }
        })
        .await;
}

fn health_router(ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (http::StatusCode::OK, "ok\n")
                    } else {
                        (http::StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                    }
                }
            }),
        )
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "sync".into());
    format!("{host}-{:08x}", rand::random::<u32>())
}
