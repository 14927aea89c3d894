//! `webhook`: a validating admission webhook for SecretProviderClasses. An Akeyless SPC that
//! `validate` (and a mount) would refuse is refused at `kubectl apply`, with the same message;
//! valid but risky settings come back as warnings.
//!
//! - `review`: AdmissionReview → answer (pure; the checks are `spec::class`, shared with
//!   `validate`);
//! - `server`: the bounded HTTPS listener;
//! - `tls`: the serving certificate (files, reloaded on change, or generated at start);
//! - `ca_bundle`: keeps the ValidatingWebhookConfiguration's caBundle trusting the generated CA;
//! - `metrics`: the process's `/metrics`.
//!
//! A cluster-level Deployment runs it (never the node DaemonSet); it needs the Kubernetes API
//! only to keep the caBundle of a generated certificate.

mod ca_bundle;
mod metrics;
/// `pub` for the `admission_review` fuzz target.
pub mod review;
mod server;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use clap::Args;
use tokio::task::JoinHandle;

use crate::runtime::TelemetryArgs;
use crate::spec::parse_duration;
use crate::spec::{GatewayAllowList, SpecDefaults, normalize_gateway_url};
use crate::telemetry;
use metrics::WebhookMetrics;

#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// HTTPS address of POST /validate.
    #[arg(
        long,
        env = "AKEYLESS_CSI_WEBHOOK_ADDR",
        default_value = "0.0.0.0:8443"
    )]
    pub webhook_addr: SocketAddr,
    /// Serving certificate (PEM, leaf first), e.g. from cert-manager; reloaded when it changes.
    /// Without it a CA and certificate are generated at start.
    #[arg(long, env = "AKEYLESS_CSI_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert-file.
    #[arg(long, env = "AKEYLESS_CSI_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Names of the generated certificate, comma-separated DNS names or IP addresses: the name
    /// the API server dials, <service>.<namespace>.svc.
    #[arg(long, env = "AKEYLESS_CSI_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// The ValidatingWebhookConfiguration whose caBundle this process keeps trusting its
    /// generated CA (needs get, list, watch and patch on that one object).
    /// Empty: the caBundle is left alone.
    #[arg(long, env = "AKEYLESS_CSI_WEBHOOK_CONFIG_NAME", default_value = "")]
    pub webhook_config_name: String,
    /// Lifetime of the generated CA and certificate; renewed after two-thirds of it.
    #[arg(long, env = "AKEYLESS_CSI_SELF_SIGNED_VALIDITY", default_value = "8760h", value_parser = parse_duration)]
    pub self_signed_validity: Duration,
    /// How often the caBundle (besides watching it) and the certificate files are checked.
    #[arg(long, env = "AKEYLESS_CSI_CERT_CHECK_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub cert_check_interval: Duration,
    /// Default Akeyless API or gateway URL, as the provider's --akeyless-url (always allowed).
    #[arg(
        long,
        env = "AKEYLESS_CSI_AKEYLESS_URL",
        default_value = "https://api.akeyless.io"
    )]
    pub akeyless_url: String,
    /// Gateways SPCs may name, as the provider's --allowed-gateways: an SPC naming another is
    /// refused at apply time, as its mount would be. Empty: any.
    #[arg(long, env = "AKEYLESS_CSI_ALLOWED_GATEWAYS", default_value = "")]
    pub allowed_gateways: String,
    /// Most objects one SecretProviderClass may list, as the provider's --max-objects.
    #[arg(long, env = "AKEYLESS_CSI_MAX_OBJECTS", default_value_t = 500)]
    pub max_objects: usize,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// `/readyz`: ready once a certificate the API server trusts is served.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    ready: AtomicBool,
    reason: Mutex<String>,
}

impl Readiness {
    pub(crate) fn set(&self, ready: bool, reason: &str) {
        self.ready.store(ready, Ordering::Relaxed);
        if let Ok(mut r) = self.reason.lock() {
            reason.clone_into(&mut r);
        }
    }

    pub(crate) fn get(&self) -> (bool, String) {
        let reason = self.reason.lock().map(|r| r.clone()).unwrap_or_default();
        (self.ready.load(Ordering::Relaxed), reason)
    }
}

fn health_router(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let (ready, reason) = readiness.get();
                async move {
                    let status = if ready {
                        http::StatusCode::OK
                    } else {
                        http::StatusCode::SERVICE_UNAVAILABLE
                    };
                    (status, format!("{reason}\n"))
                }
            }),
        )
}

fn spec_defaults(args: &WebhookArgs) -> Result<SpecDefaults, String> {
    Ok(SpecDefaults {
        gateway_url: normalize_gateway_url(&args.akeyless_url)
            .map_err(|e| format!("--akeyless-url {e}"))?,
        allowed_gateways: GatewayAllowList::parse(&args.allowed_gateways)
            .map_err(|e| format!("--allowed-gateways: {e}"))?,
        max_objects: args.max_objects,
        ..SpecDefaults::default()
    })
}

/// `webhook`: serves until SIGTERM/SIGINT.
pub async fn run(args: WebhookArgs) -> Result<(), String> {
    telemetry::init_logging(args.telemetry.log_format, &args.telemetry.log_level);
    let defaults = Arc::new(spec_defaults(&args)?);
    if args.cert_check_interval < Duration::from_secs(1) {
        return Err("--cert-check-interval must be at least 1s".into());
    }
    let metrics = WebhookMetrics::new();
    let readiness = Arc::new(Readiness::default());
    readiness.set(false, "starting");

    // The certificate first: a listener without one would only fail handshakes.
    let (serving, background) = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => certificate_from_files(&args, cert, key, &metrics, &readiness)?,
        _ => self_signed_certificate(&args, &metrics, &readiness).await?,
    };

    let (health, metrics_addr) = crate::runtime::spawn_telemetry(
        &args.telemetry,
        health_router(readiness.clone()),
        metrics.router(),
    )
    .await?;
    let (listener, bound) = server::bind(args.webhook_addr).await?;
    tracing::info!(
        addr = %bound,
        health = %health,
        metrics = %metrics_addr,
        config = %args.webhook_config_name,
        tls = if args.tls_cert_file.is_some() { "files" } else { "self-signed" },
        version = env!("CARGO_PKG_VERSION"),
        "akeyless-csi-provider webhook serving"
    );
    let tls = tls::server_config(serving)?;
    let shutdown_readiness = readiness.clone();
    server::serve(
        listener,
        tls,
        server::router(defaults, metrics),
        async move {
            crate::runtime::shutdown_signal().await;
            shutdown_readiness.set(false, "shutting down");
        },
    )
    .await;
    for task in background {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The certificate served, and the background tasks that keep it current.
type ServingCertificate = (Arc<tls::ServingCert>, Vec<JoinHandle<()>>);

/// The serving certificate from --tls-cert-file and --tls-key-file, reloaded when they change.
fn certificate_from_files(
    args: &WebhookArgs,
    cert: &Path,
    key: &Path,
    metrics: &WebhookMetrics,
    readiness: &Arc<Readiness>,
) -> Result<ServingCertificate, String> {
    let loaded = tls::load_files(cert, key)?;
    let serving = tls::ServingCert::new(loaded.key.clone());
    metrics.serving_certificate(&loaded.key);
    readiness.set(true, "serving the certificate from --tls-cert-file");
    let m = metrics.clone();
    let reload = tokio::spawn(tls::reload_files(
        cert.to_path_buf(),
        key.to_path_buf(),
        loaded,
        serving.clone(),
        args.cert_check_interval,
        move |k| m.serving_certificate(k),
    ));
    Ok((serving, vec![reload]))
}

/// A generated CA and certificate, renewed in time; with --webhook-config-name the caBundle
/// is kept trusting it.
async fn self_signed_certificate(
    args: &WebhookArgs,
    metrics: &WebhookMetrics,
    readiness: &Arc<Readiness>,
) -> Result<ServingCertificate, String> {
    if args.self_signed_validity < Duration::from_secs(60) {
        return Err("--self-signed-validity must be at least 1m".into());
    }
    let names: Vec<String> = args
        .tls_san
        .iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let generated = tls::generate(&names, args.self_signed_validity).map_err(|e| {
        format!(
            "{e}; give --tls-san the name the API server dials (<service>.<namespace>.svc), \
             or --tls-cert-file and --tls-key-file"
        )
    })?;
    let serving = tls::ServingCert::new(generated.key.clone());
    metrics.serving_certificate(&generated.key);
    let mut background = Vec::new();
    if args.webhook_config_name.is_empty() {
        tracing::warn!(
            "self-signed certificate without --webhook-config-name: no caBundle is kept, \
             so the API server won't trust this webhook unless it is told this process's CA"
        );
        readiness.set(
            true,
            "serving a self-signed certificate (caBundle not managed)",
        );
    } else {
        readiness.set(false, "waiting for the caBundle to trust this replica's CA");
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("Kubernetes client (in-cluster config or KUBECONFIG): {e}"))?;
        background.push(tokio::spawn(ca_bundle::keep_current(
            ca_bundle::Keeper::new(client.clone(), args.webhook_config_name.clone()),
            client,
            serving.clone(),
            generated,
            names,
            args.self_signed_validity,
            args.cert_check_interval,
            readiness.clone(),
            metrics.clone(),
        )));
    }
    Ok((serving, background))
}
