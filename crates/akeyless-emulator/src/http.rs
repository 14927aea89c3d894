//! HTTP front end: a listener whose connections can be cut mid-request (for `drop_next`), the
//! Akeyless API dispatcher (fault injection, request log) and the router that keeps the admin
//! routes under `/__emulator/` apart from the Akeyless commands.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::admin;
use super::api::{self, ApiError, Command};
use super::faults::FaultAction;
use super::state::{EmulatorState, RecordedRequest};
use super::util::error_response;

/// Admin routes live under this prefix; everything else is the Akeyless API.
pub(crate) const ADMIN_PREFIX: &str = "/__emulator";
/// Akeyless request bodies are small; this only guards against runaway uploads.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub(crate) fn router(state: EmulatorState) -> Router {
    Router::new()
        .nest(ADMIN_PREFIX, admin::router())
        .route(
            "/azure-ad/{tenant}/oauth2/v2.0/token",
            axum::routing::post(super::azure::token),
        )
        .route(
            "/metadata/identity/oauth2/token",
            axum::routing::get(super::azure::imds_token),
        )
        .route("/aws-sts", axum::routing::post(super::cloud::sts))
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/identity",
            axum::routing::get(super::cloud::gcp_identity),
        )
        .route("/v1/token", axum::routing::post(super::cloud::google_sts))
        .route(
            "/v1/projects/{project}/serviceAccounts/{account}",
            axum::routing::post(super::cloud::google_generate_id_token),
        )
        .fallback(akeyless_api)
        .with_state(state)
}

/// The command path of a request to a gateway prefix (`/api/v2/auth` → `/auth`).
pub(crate) fn strip_gateway_prefix(path: &str) -> &str {
    for prefix in ["/api/v2", "/v2"] {
        if let Some(rest) = path.strip_prefix(prefix)
            && rest.starts_with('/')
        {
            return rest;
        }
    }
    path
}

/// Entry point for every non-admin request.
async fn akeyless_api(State(state): State<EmulatorState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // A gateway serves the API under /api/v2 (and /v2) as well as at its root; the request
    // log, counts and faults use the command's path without the prefix.
    let path = strip_gateway_prefix(parts.uri.path()).to_owned();
    let mut record = RecordedRequest {
        path: path.clone(),
        ..RecordedRequest::default()
    };
    let body = parse_body(body).await;
    if let Ok(body) = &body {
        describe_body(&mut record, body);
    }

    // Faults simulate the network and server, so they come before any command logic.
    let delay = state.lock().faults.delay(&path);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let fault = {
        let mut data = state.lock();
        // The throttle window answers before any queued fault (nothing is consumed meanwhile).
        data.faults
            .throttled(std::time::Instant::now())
            .or_else(|| data.faults.take(&path))
    };
    let response = match fault {
        Some(FaultAction::Drop) => {
            if let Some(ConnectInfo(connection)) = parts.extensions.get::<ConnectInfo<Connection>>()
            {
                connection.kill();
                tracing::debug!(path, peer = %connection.peer, "emulator dropping connection");
            }
            state.lock().record(record);
            // Never reaches the client: the connection refuses to write it.
            return error_response(StatusCode::SERVICE_UNAVAILABLE, "connection dropped");
        }
        Some(FaultAction::Fail {
            status,
            retry_after_secs,
        }) => fault_response(status, retry_after_secs),
        None => {
            // A cluster-backed k8s /auth needs a TokenReview: an async call that cannot run
            // under the state lock, so it runs first and the command applies its outcome.
            let review = match (&body, path.as_str(), &parts.method) {
                (Ok(body), "/auth", &Method::POST) => match api::review_request(&state, body) {
                    Some((config, token, audience)) => {
                        Some(config.review(&token, audience.as_deref()).await)
                    }
                    None => None,
                },
                _ => None,
            };
            run_command(&state, &parts.method, &path, body, review, &mut record)
        }
    };
    record.status = response.status().as_u16();
    tracing::debug!(path, status = record.status, "emulator request");
    state.lock().record(record);
    response
}

fn run_command(
    state: &EmulatorState,
    method: &Method,
    path: &str,
    body: Result<Value, ApiError>,
    review: Option<api::ReviewOutcome>,
    record: &mut RecordedRequest,
) -> Response {
    let Some(command) = Command::from_path(path) else {
        return error_response(StatusCode::NOT_FOUND, format!("unknown command: {path}"));
    };
    if method != Method::POST {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed; Akeyless commands are POST"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let (identity, result) = match body {
        Ok(body) => api::execute(state, command, &body, review),
        Err(e) => (None, Err(e)),
    };
    record.identity = identity;
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => {
            let (status, message) = e.render(Some(command));
            error_response(status, message)
        }
    }
}

/// Reads and parses the body; only a JSON object is a valid Akeyless request.
async fn parse_body(body: Body) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::bad_request("request body is unreadable or too large"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty; expected a JSON object",
        ));
    }
    // serde_json's syntax errors give a position, never the content.
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    Ok(value)
}

/// Fills the log entry from the raw body (works for malformed requests too) without copying
/// any secret-bearing field.
fn describe_body(record: &mut RecordedRequest, body: &Value) {
    let Value::Object(map) = body else { return };
    let mut fields: Vec<String> = map.keys().cloned().collect();
    fields.sort();
    record.fields = fields;
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(values) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    for key in ["names", "name", "cert-issuer-name"] {
        if let Some(v) = map.get(key) {
            record.items.extend(strings(v));
        }
    }
    record.version = map.get("version").and_then(Value::as_i64);
    record.ignore_cache = map.get("ignore-cache").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    if let Some(args) = map.get("args") {
        record.args = strings(args);
    }
}

fn fault_response(status: u16, retry_after_secs: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = error_response(
        status,
        format!(
            "emulated fault: Status {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    );
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Per-connection handle given to handlers as `ConnectInfo`, so a handler can cut its own
/// connection.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    peer: SocketAddr,
    killed: Arc<AtomicBool>,
}

impl Connection {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose streams fail every write once their [`Connection`] is killed: hyper
/// then abandons the response and closes the socket, which is what a crashed or overloaded
/// server looks like to the client.
pub(crate) struct KillableListener(pub(crate) TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = Connection;

    async fn accept(&mut self) -> (KillableStream, Connection) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    // Small JSON responses should not wait on Nagle (benchmarks measure latency).
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "emulator could not set TCP_NODELAY");
                    }
                    let killed = Arc::new(AtomicBool::new(false));
                    let io = KillableStream {
                        stream,
                        killed: Arc::clone(&killed),
                    };
                    return (io, Connection { peer, killed });
                }
                // Transient (e.g. aborted handshake or fd exhaustion): back off briefly and retry.
                Err(e) => {
                    tracing::debug!(error = %e, "emulator accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Connection> {
        Ok(Connection {
            peer: self.0.local_addr()?,
            killed: Arc::default(),
        })
    }
}

pub(crate) struct KillableStream {
    stream: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    fn check(&self) -> io::Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection dropped by fault injection",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
