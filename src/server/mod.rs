//! The driver's front door: a tonic service on a Unix socket. It decodes, calls the mount
//! pipeline under the request's deadline, and turns the result into a response or a
//! `[Code] message` status. No business logic lives here.
//!
//! The socket also serves the standard `grpc.health.v1.Health` service: `SERVING` for `""` and
//! `v1alpha1.CSIDriverProvider` while the provider accepts mounts, `NOT_SERVING` once it drains.

mod authority;
pub mod health;
mod socket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::error::{ErrorCode, MountError};
use crate::mount::{self, ProviderContext};
use crate::proto;
use crate::proto::csi_driver_provider_server::{CsiDriverProvider, CsiDriverProviderServer};
use crate::render::Rendered;
use crate::request::MountRequest;
use crate::secret::ExposeSecret;
use crate::telemetry::Metrics;

pub use authority::rewrite_client_bytes;
pub use socket::bind_socket;
pub(crate) use socket::{check_socket_dir, unix_channel};

pub(crate) const RUNTIME_NAME: &str = "akeyless-csi-provider";
pub(crate) const PROTOCOL_VERSION: &str = "v1alpha1";

/// The provider's gRPC service.
pub struct ProviderService {
    ctx: Arc<ProviderContext>,
    /// Upper bound of one mount when the caller sets no (or a longer) deadline. Below kubelet's
    /// 2-minute CSI timeout, so users see our error rather than kubelet's.
    mount_timeout: Duration,
    metrics: Metrics,
    /// Mounts allowed to run at once; more wait (within their deadline) for a slot instead of
    /// piling up work during a burst.
    mount_slots: Arc<tokio::sync::Semaphore>,
    max_concurrent_mounts: usize,
}

/// Default of `--max-concurrent-mounts`.
pub(crate) const DEFAULT_MAX_CONCURRENT_MOUNTS: usize = 256;

impl ProviderService {
    /// A service recording into its own [`Metrics`]; see [`ProviderService::with_metrics`].
    pub fn new(ctx: Arc<ProviderContext>, mount_timeout: Duration) -> Self {
        ProviderService {
            ctx,
            mount_timeout,
            metrics: Metrics::new(),
            mount_slots: Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_CONCURRENT_MOUNTS)),
            max_concurrent_mounts: DEFAULT_MAX_CONCURRENT_MOUNTS,
        }
    }

    /// Records mount metrics into `metrics` (the registry `/metrics` serves).
    /// At most `n` mounts run at once; the rest queue within their deadline.
    pub(crate) fn with_max_concurrent_mounts(mut self, n: usize) -> Self {
        self.max_concurrent_mounts = n.max(1);
        self.mount_slots = Arc::new(tokio::sync::Semaphore::new(self.max_concurrent_mounts));
        self
    }

    pub(crate) fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn into_server(self) -> CsiDriverProviderServer<Self> {
        CsiDriverProviderServer::new(self)
    }
}

/// The caller's deadline from the `grpc-timeout` header (`<digits><unit>`).
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let raw = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[tonic::async_trait]
impl CsiDriverProvider for ProviderService {
    async fn version(
        &self,
        _request: Request<proto::VersionRequest>,
    ) -> Result<Response<proto::VersionResponse>, Status> {
        Ok(Response::new(proto::VersionResponse {
            version: PROTOCOL_VERSION.into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    /// Decodes, runs the pipeline under the caller's deadline, and encodes the answer.
    async fn mount(
        &self,
        request: Request<proto::MountRequest>,
    ) -> Result<Response<proto::MountResponse>, Status> {
        let started = Instant::now();
        let _in_flight = self.metrics.mount_started();
        let budget = grpc_timeout(request.metadata())
            .map_or(self.mount_timeout, |t| t.min(self.mount_timeout))
            // Leave a little time to send the answer before the caller gives up.
            .saturating_sub(Duration::from_millis(200));
        let decoded = MountRequest::decode(&request.into_inner());
        let log = MountLog::of(&decoded);
        let result = match decoded {
            Err(e) => Err(MountError::from(e)),
            Ok(req) => self.run_mount(&req, budget).await,
        };
        let elapsed = started.elapsed();
        self.metrics
            .mount_finished(result.as_ref().err().map(|e| e.code), elapsed);
        log.record(&result, elapsed);
        result
            .map(|rendered| Response::new(encode(rendered)))
            .map_err(|e| e.to_status())
    }
}

impl ProviderService {
    /// Runs one mount under a mount slot and the caller's budget. A panic in the pipeline (a
    /// bug; none is reachable from input by design) fails this mount with `Internal` while the
    /// process serves on: one tenant's request must never take down every pod's mounts.
    async fn run_mount(
        &self,
        req: &MountRequest,
        budget: Duration,
    ) -> Result<Rendered, MountError> {
        let deadline = mount::deadline_in(budget);
        let got_slot = AtomicBool::new(false);
        let work = async {
            let _slot = self
                .mount_slots
                .acquire()
                .await
                .map_err(|_| MountError::internal("the mount queue is closed"))?;
            got_slot.store(true, Ordering::Relaxed);
            std::panic::AssertUnwindSafe(mount::mount_with_deadline(&self.ctx, req, deadline))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(MountError::internal(
                        "the provider hit an internal error on this mount (a bug, logged as a panic); \
                         other mounts are not affected; please report it",
                    ))
                })
        };
        match tokio::time::timeout(budget, work).await {
            Ok(r) => r,
            Err(_) if !got_slot.load(Ordering::Relaxed) => Err(MountError::new(
                ErrorCode::Timeout,
                format!(
                    "the mount waited {:.1}s (the caller's deadline) for one of the provider's {} mount slots; \
                     the node is mounting more volumes at once than --max-concurrent-mounts allows",
                    budget.as_secs_f64(),
                    self.max_concurrent_mounts
                ),
            )),
            Err(_) => Err(MountError::new(
                ErrorCode::Timeout,
                format!(
                    "the mount did not finish within {:.1}s (the caller's deadline); Akeyless is slow or unreachable",
                    budget.as_secs_f64()
                ),
            )),
        }
    }
}

/// What the log line of a mount names: the pod, the SPC and, for a failed mount, how many
/// objects the SPC lists.
struct MountLog {
    pod_ns: Option<String>,
    pod_name: Option<String>,
    spc: Option<String>,
    listed_objects: Option<usize>,
}

impl MountLog {
    fn of(decoded: &Result<MountRequest, crate::request::RequestError>) -> Self {
        let (pod_ns, pod_name) = match decoded {
            Ok(r) => (r.pod.namespace.clone(), r.pod.name.clone()),
            Err(_) => (None, None),
        };
        let spc = decoded
            .as_ref()
            .ok()
            .and_then(|r| r.parameters.get("secretProviderClass").map(str::to_string));
        // For the log line of a failed mount: how many objects the SPC lists, when that can be
        // told (the spec stage reports why it can't).
        let listed_objects = decoded
            .as_ref()
            .ok()
            .and_then(|r| crate::spec::listed_objects(r.parameters.get("objects")?));
        MountLog {
            pod_ns,
            pod_name,
            spc,
            listed_objects,
        }
    }

    fn record(&self, result: &Result<Rendered, MountError>, elapsed: Duration) {
        let (pod_ns, pod_name, spc) = (&self.pod_ns, &self.pod_name, &self.spc);
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        match result {
            Ok(rendered) => {
                tracing::info!(
                    pod_namespace = pod_ns.as_deref().unwrap_or(""),
                    pod_name = pod_name.as_deref().unwrap_or(""),
                    spc = spc.as_deref().unwrap_or(""),
                    objects = rendered.versions.len(),
                    files = rendered.files.len(),
                    duration_ms = elapsed_ms,
                    result = "ok",
                    "mount"
                );
            }
            Err(e) => {
                tracing::warn!(
                    pod_namespace = pod_ns.as_deref().unwrap_or(""),
                    pod_name = pod_name.as_deref().unwrap_or(""),
                    spc = spc.as_deref().unwrap_or(""),
                    objects = self.listed_objects,
                    duration_ms = elapsed_ms,
                    result = "error",
                    code = e.code.as_str(),
                    error = %e.message,
                    "mount"
                );
            }
        }
    }
}

/// The driver's answer: every object's version and every file.
fn encode(rendered: Rendered) -> proto::MountResponse {
    proto::MountResponse {
        object_version: rendered
            .versions
            .into_iter()
            .map(|v| proto::ObjectVersion {
                id: v.id,
                version: v.version,
            })
            .collect(),
        error: None,
        files: rendered
            .files
            .into_iter()
            .map(|f| proto::File {
                path: f.path,
                mode: f.mode as i32,
                contents: f.contents.expose_secret().clone(),
            })
            .collect(),
    }
}

/// Readiness shared with the health endpoint: set once the socket serves.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Serves the provider on `listener` until `shutdown` resolves, then lets in-flight mounts finish.
pub async fn serve(
    listener: tokio::net::UnixListener,
    service: ProviderService,
    readiness: Readiness,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // Each connection through AuthorityFix: drivers up to v1.5 send an :authority h2 refuses.
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener)
        .map(|conn| conn.map(authority::AuthorityFix::new));
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<CsiDriverProviderServer<ProviderService>>()
        .await;
    readiness.set(true);
    let result = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(incoming, async {
            shutdown.await;
            readiness.set(false);
            health
                .set_not_serving::<CsiDriverProviderServer<ProviderService>>()
                .await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            tracing::info!("shutting down: no new connections; waiting for in-flight mounts");
        })
        .await;
    readiness.set(false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_timeout() {
        let mut m = tonic::metadata::MetadataMap::new();
        assert_eq!(grpc_timeout(&m), None);
        m.insert("grpc-timeout", "1500m".parse().unwrap());
        assert_eq!(grpc_timeout(&m), Some(Duration::from_millis(1500)));
        m.insert("grpc-timeout", "2S".parse().unwrap());
        assert_eq!(grpc_timeout(&m), Some(Duration::from_secs(2)));
        m.insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(grpc_timeout(&m), None);
    }
}
