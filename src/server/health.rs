//! Liveness and readiness.
//!
//! - `/healthz`: the process answers HTTP. Liveness only; it never depends on Akeyless, so a
//!   backend outage doesn't restart every provider pod.
//! - `/readyz`: 200 only when all of these hold:
//!   1. the server has started serving and isn't draining (the [`Readiness`](super::Readiness) flag);
//!   2. a real `grpc.health.v1.Health/Check` over the provider's Unix socket answers `SERVING`
//!      within [`SOCKET_CHECK_TIMEOUT`] (the driver's view of us);
//!   3. Akeyless was reachable recently, per [`BackendHealth`]'s policy.
//!
//!   Otherwise 503, with one line per check saying what failed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::Readiness;
use crate::telemetry::BackendHealth;

/// How long `/readyz` waits for the gRPC health check over the socket.
pub const SOCKET_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `grpc.health.v1.Health/Check` (service `""`) over the Unix socket at `socket`.
pub async fn check_socket(socket: &Path, timeout: Duration) -> Result<(), String> {
    let call = async move {
        let channel = super::unix_channel(socket)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let resp = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| format!("health check failed: {}", s.code()))?;
        match resp.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => Err(format!("health check answered {}", other.as_str_name())),
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f64())),
    }
}

/// What `/readyz` checks.
#[derive(Clone)]
pub struct HealthState {
    pub readiness: Readiness,
    pub socket: PathBuf,
    pub backend: BackendHealth,
}

impl HealthState {
    /// Runs the readiness checks; the body lists each one.
    pub async fn ready(&self) -> (bool, String) {
        let mut ok = true;
        let mut body = String::new();
        if self.readiness.is_ready() {
            body.push_str("server: serving\n");
        } else {
            ok = false;
            body.push_str("server: not serving (starting or draining)\n");
        }
        match check_socket(&self.socket, SOCKET_CHECK_TIMEOUT).await {
            Ok(()) => body.push_str("socket: grpc health SERVING\n"),
            Err(e) => {
                ok = false;
                body.push_str(&format!("socket: {e}\n"));
            }
        }
        match self.backend.check() {
            Ok(s) => body.push_str(&format!("{s}\n")),
            Err(s) => {
                ok = false;
                body.push_str(&format!("{s}\n"));
            }
        }
        (ok, body)
    }
}

/// `/healthz` and `/readyz`.
pub fn health_router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let state = state.clone();
                async move {
                    let (ok, body) = state.ready().await;
                    let status = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (status, body)
                }
            }),
        )
}
