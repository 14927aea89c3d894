//! An in-process emulator of the Akeyless REST API v2, for the `demo` command, local
//! development, integration tests and benchmarks.
//!
//! It answers like Akeyless: `POST /<command>` with kebab-case JSON bodies, snake_case
//! responses, `{"error": "..."}` bodies, 401 for any unauthorized access (whether or not the
//! item exists), 404 only for items the caller may see, 400 for malformed requests. Implemented
//! commands: `/auth` (access_key, k8s, jwt, azure_ad, universal_identity, aws_iam, gcp),
//! `/uid-rotate-token`, `/validate-token`, `/describe-item`,
//! `/get-secret-value`, `/get-rotated-secret-value`, `/get-certificate-value`,
//! `/get-dynamic-secret-value`.
//!
//! It also plays the cloud services the provider's cloud identities talk to, at its own address:
//! Azure AD's token endpoint and Azure IMDS's managed identity endpoint
//! (`/metadata/identity/oauth2/token`), AWS STS, the GCP metadata server, Google STS and IAM
//! Credentials.
//!
//! Kubernetes auth has two modes. Self-contained: [`EmulatorState::issue_service_account_token`]
//! mints a service-account JWT signed with the emulator's key and `/auth` verifies it in place of
//! a gateway's TokenReview. Against a real cluster: an auth method whose config name has a
//! `SeedK8sAuthConfig` (API server, CA, reviewer token) validates the pod's token with a real
//! `TokenReview` (audience-aware) and applies its bound namespaces and service accounts to the
//! review's answer, as a gateway does (the `tokenreview` module).
//!
//! Tests drive it through [`EmulatorState`] (setup, fault injection, request log); other
//! processes use the admin routes under `/__emulator/` (see the `admin` module).
//!
//! Files, from the wire inwards: `http` (listener, dispatcher, router) and `admin` (the
//! `/__emulator/` routes); `api/` (the Akeyless commands, one file per family); `azure` and
//! `cloud/` (the cloud identity services), `tokenreview` (a real TokenReview); `seed` (declarative
//! setup); `state/` (the model and the [`EmulatorState`] setup API, one file per concern) over
//! `items`, `faults`, `jwt`, `pki` and `util`. Each file imports only from files below it; a
//! directory's `mod.rs` only declares its files and re-exports.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use akeyless_emulator::Emulator;
//! let emulator = Emulator::start("127.0.0.1:0".parse().unwrap()).await?;
//! let state = emulator.state();
//! state.add_access_key_auth("p-demo", "demo-key");
//! state.grant_read("p-demo", "/demo/*", &[]);
//! state.put_static_secret("/demo/password", "s3cret");
//! println!("Akeyless API at {}", emulator.url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

// The size rule of the workspace (clippy.toml: 80 lines; files: hack/check-file-size.sh).
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

mod admin;
mod api;
mod azure;
mod cloud;
mod faults;
mod http;
mod items;
mod jwt;
mod pki;
mod seed;
mod state;
mod tokenreview;
mod util;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use seed::Seed;

pub use api::accepted_request_fields;
pub use state::{EmulatorState, Identity, RecordedRequest};

/// How long [`Emulator::shutdown`] waits for in-flight requests before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running emulator. Serves until dropped or [`shutdown`](Self::shutdown).
pub struct Emulator {
    addr: SocketAddr,
    state: EmulatorState,
    /// Dropping the sender (with the emulator) also triggers the graceful shutdown.
    shutdown_tx: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds `addr` (use `127.0.0.1:0` in tests) and serves in a background tokio task.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Emulator> {
        Self::start_with_state(addr, EmulatorState::new()).await
    }

    /// Like [`start`](Self::start), serving an existing (e.g. pre-seeded) state.
    pub(crate) async fn start_with_state(
        addr: SocketAddr,
        state: EmulatorState,
    ) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app =
            http::router(state.clone()).into_make_service_with_connect_info::<http::Connection>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(http::KillableListener(listener), app).with_graceful_shutdown(
                async move {
                    // Fires on an explicit send or when the sender is dropped.
                    let _ = shutdown_rx.await;
                },
            );
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "akeyless emulator stopped with an error");
            }
        });
        tracing::debug!(%addr, "akeyless emulator listening");
        Ok(Emulator {
            addr,
            state,
            shutdown_tx,
            task,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 5 s), then returns.
    pub async fn shutdown(self) {
        let Emulator {
            shutdown_tx,
            mut task,
            ..
        } = self;
        let _ = shutdown_tx.send(());
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Options of a standalone emulator: the `akeyless-emulator` binary, and the provider's
/// `emulator` subcommand in builds with the `tools` feature.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "AKEYLESS_CSI_EMULATOR_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub listen: SocketAddr,
    /// Seed file (YAML or JSON) with auth methods, grants and items.
    #[arg(long, env = "AKEYLESS_CSI_EMULATOR_SEED")]
    pub seed: Option<PathBuf>,
}

/// Starts an emulator as `args` say, prints `Akeyless emulator listening on URL` (the line test
/// harnesses wait for) and serves until `shutdown` resolves.
pub async fn serve(
    args: &ServeArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let emulator = Emulator::start(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    if let Some(path) = &args.seed {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("--seed {}: {e}", path.display()))?;
        let seed: Seed = serde_yaml_ng::from_str(&text)
            .map_err(|e| format!("--seed {}: {e}", path.display()))?;
        emulator
            .state()
            .try_load_seed(&seed)
            .map_err(|e| format!("--seed {}: {e}", path.display()))?;
    }
    println!("Akeyless emulator listening on {}", emulator.url());
    shutdown.await;
    emulator.shutdown().await;
    Ok(())
}
