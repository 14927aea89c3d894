//! The HTTPS listener: `POST /validate` (the review) behind bounded TLS connections.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections (more are closed at once), a TLS handshake
//! and a request's headers must arrive within [`HANDSHAKE_TIMEOUT`], a body is at most
//! [`MAX_REVIEW_BYTES`] (413 beyond), and at most [`MAX_CONCURRENT_REVIEWS`] reviews run at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::metrics::WebhookMetrics;
use super::review::{self, Verdict};
use crate::spec::SpecDefaults;

/// Largest AdmissionReview read. An UPDATE carries the object twice; each SPC is at most what
/// etcd stores (1.5 MiB by default).
pub(crate) const MAX_REVIEW_BYTES: usize = 6 * 1024 * 1024;
/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// Reviews checked at once (each on a blocking thread).
pub(crate) const MAX_CONCURRENT_REVIEWS: usize = 16;
/// Time for a TLS handshake, and for a request's headers.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    defaults: Arc<SpecDefaults>,
    metrics: WebhookMetrics,
    reviews: Arc<Semaphore>,
}

/// The `/validate` router.
pub(crate) fn router(defaults: Arc<SpecDefaults>, metrics: WebhookMetrics) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .layer(axum::middleware::map_response(close_after_refused_body))
        .with_state(AppState {
            defaults,
            metrics,
            reviews: Arc::new(Semaphore::new(MAX_CONCURRENT_REVIEWS)),
        })
}

/// A body refused for its size was never read, so the connection can't carry another request:
/// say so (`Connection: close`), or a client would reuse it and see its next request fail.
async fn close_after_refused_body(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

async fn validate(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    let Ok(_permit) = state.reviews.clone().acquire_owned().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    };
    let defaults = state.defaults.clone();
    let outcome = tokio::task::spawn_blocking(move || review::review(&body, &defaults)).await;
    let took = started.elapsed();
    match outcome {
        Ok(Ok(outcome)) => {
            let result = outcome.verdict.label(outcome.warning_locations.len());
            state.metrics.review(result, took);
            let skipped = match &outcome.verdict {
                Verdict::Skipped(why) => why.as_str(),
                _ => "",
            };
            // Locations only: a problem's message may quote a parameter's value.
            tracing::info!(
                uid = %outcome.uid,
                operation = %outcome.operation,
                version = %outcome.version,
                namespace = %outcome.namespace,
                name = %outcome.name,
                result,
                skipped,
                problems = ?outcome.problem_locations,
                warnings = ?outcome.warning_locations,
                duration_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                "review"
            );
            ([(header::CONTENT_TYPE, "application/json")], outcome.body).into_response()
        }
        Ok(Err(bad)) => {
            state.metrics.review("bad_request", took);
            tracing::warn!(error = %bad, "refused a request that is not an AdmissionReview");
            (StatusCode::BAD_REQUEST, format!("{bad}\n")).into_response()
        }
        Err(_) => {
            state.metrics.review("error", took);
            tracing::error!("a review failed (a bug); the API server applies the failurePolicy");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

/// Binds the HTTPS listener.
pub(crate) async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--webhook-addr {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--webhook-addr {addr}: {e}"))?;
    Ok((listener, bound))
}

/// Serves `router` over TLS until `shutdown` resolves, then lets in-flight requests finish
/// (at most 10 s) and closes idle connections.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections; closing this one");
            continue;
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    // A caller that doesn't trust our certificate (a stale caBundle) ends here.
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after 10 s; closing them");
    }
}
