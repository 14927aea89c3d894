//! The driver's front door: a tonic service on a Unix socket. It decodes, calls the mount
//! pipeline under the request's deadline, and turns the result into a response or a
//! `[Code] message` status. No business logic lives here.

mod socket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use crate::error::{ErrorCode, MountError};
use crate::mount::{self, ProviderContext};
use crate::proto;
use crate::proto::csi_driver_provider_server::{CsiDriverProvider, CsiDriverProviderServer};
use crate::request::MountRequest;
use crate::secret::ExposeSecret;

pub use socket::bind_socket;

pub const RUNTIME_NAME: &str = "akeyless-csi-provider";
pub const PROTOCOL_VERSION: &str = "v1alpha1";

/// The provider's gRPC service.
pub struct ProviderService {
    ctx: Arc<ProviderContext>,
    /// Upper bound of one mount when the caller sets no (or a longer) deadline. Below kubelet's
    /// 2-minute CSI timeout, so users see our error rather than kubelet's.
    mount_timeout: Duration,
}

impl ProviderService {
    pub fn new(ctx: Arc<ProviderContext>, mount_timeout: Duration) -> Self {
        ProviderService { ctx, mount_timeout }
    }

    pub fn into_server(self) -> CsiDriverProviderServer<Self> {
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

    async fn mount(
        &self,
        request: Request<proto::MountRequest>,
    ) -> Result<Response<proto::MountResponse>, Status> {
        let started = Instant::now();
        let budget = grpc_timeout(request.metadata())
            .map_or(self.mount_timeout, |t| t.min(self.mount_timeout))
            // Leave a little time to send the answer before the caller gives up.
            .saturating_sub(Duration::from_millis(200));
        let wire = request.into_inner();
        let decoded = MountRequest::decode(&wire);
        let (pod_ns, pod_name) = match &decoded {
            Ok(r) => (r.pod.namespace.clone(), r.pod.name.clone()),
            Err(_) => (None, None),
        };
        let spc = decoded
            .as_ref()
            .ok()
            .and_then(|r| r.parameters.get("secretProviderClass").map(str::to_string));

        let result = match decoded {
            Err(e) => Err(MountError::from(e)),
            Ok(req) => match tokio::time::timeout(budget, mount::mount(&self.ctx, &req)).await {
                Ok(r) => r,
                Err(_) => Err(MountError::new(
                    ErrorCode::Timeout,
                    format!(
                        "the mount did not finish within {:.1}s (the caller's deadline); Akeyless is slow or unreachable",
                        budget.as_secs_f64()
                    ),
                )),
            },
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
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
                Ok(Response::new(proto::MountResponse {
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
                }))
            }
            Err(e) => {
                tracing::warn!(
                    pod_namespace = pod_ns.as_deref().unwrap_or(""),
                    pod_name = pod_name.as_deref().unwrap_or(""),
                    spc = spc.as_deref().unwrap_or(""),
                    duration_ms = elapsed_ms,
                    result = "error",
                    code = e.code.as_str(),
                    error = %e.message,
                    "mount"
                );
                Err(e.to_status())
            }
        }
    }
}

/// Readiness shared with the health endpoint: set once the socket serves.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
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
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    readiness.set(true);
    let result = tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(incoming, async {
            shutdown.await;
            readiness.set(false);
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
