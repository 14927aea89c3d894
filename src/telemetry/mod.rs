//! Logging, metrics, the record of whether Akeyless answers, and the HTTP listener they share.
//!
//! Logs go to stderr, JSON by default (one object per line) or text. Each mount logs one line
//! (see `server`); no log line carries a secret value, key or token.

pub mod backend;
pub mod metrics;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tracing_subscriber::EnvFilter;

pub use backend::BackendHealth;
pub use metrics::Metrics;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global tracing subscriber (stderr). `level` accepts `RUST_LOG`-style filters.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: container logs and files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Replaces the default panic report (which prints the panic's message) with a log line that
/// names only where it happened. A message may quote the value being processed (a slice of a
/// secret, a token), so it is never printed. Every shipped profile unwinds, and a panicking
/// mount becomes an `Internal` answer (see `server`), so the process serves on.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown".into());
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        if tracing::dispatcher::has_been_set() {
            tracing::error!(
                %location,
                %thread,
                "panic: a bug in the provider (its message is withheld because it may quote input)"
            );
        } else {
            eprintln!(
                "panic at {location} in thread {thread} (message withheld: it may quote input)"
            );
        }
    }));
}

/// `/metrics` in the Prometheus text format.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                    metrics.encode(),
                )
            }
        }),
    )
}

/// Serves `router` on `addr` in the background; returns the bound address.
pub async fn spawn_http(addr: SocketAddr, router: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "HTTP listener stopped");
        }
    });
    Ok(bound)
}
