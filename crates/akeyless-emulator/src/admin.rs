//! Admin API under `/__emulator/`, for driving the emulator from another process (Go tests,
//! the `emulator` CLI). Not part of Akeyless: these calls are neither faulted nor recorded.
//!
//! | Route | Body | Answer |
//! |---|---|---|
//! | `GET /health` | | `{"status":"ok"}` |
//! | `POST /seed` | [`Seed`] JSON (may hold `k8s_auth_configs`: TokenReview against a cluster) | `{}`; 400 if a k8s auth config is invalid |
//! | `POST /static-secret` | `{"name","value"}` | `{"version": n}` |
//! | `POST /fault` | `{"path","status","count"=1,"retry_after_secs"?}` | `{}` |
//! | `POST /drop` | `{"path","count"=1}` | `{}` |
//! | `POST /delay` | `{"path","delay_ms"}` (0 clears) | `{}` |
//! | `POST /clear-faults` | | `{}` |
//! | `GET /requests` | | `[RecordedRequest]` |
//! | `POST /reset-requests` | | `{}` |
//! | `POST /issue-sa-token` | `{"namespace","service_account","pod_name"?,"pod_uid"?,"audience"?,"ttl_seconds"=3600}` | `{"token"}` |
//! | `POST /issue-jwt` | `{"claims":{...}}` | `{"token"}` |
//! | `POST /revoke-tokens` | | `{}` |

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::api::redact_serde_error;
use super::seed::Seed;
use super::state::EmulatorState;
use super::util::error_response;

pub(crate) fn router() -> Router<EmulatorState> {
    Router::new()
        .route("/health", get_only(health))
        .route("/seed", post_only(seed))
        .route("/static-secret", post_only(static_secret))
        .route("/fault", post_only(fault))
        .route("/drop", post_only(drop_connections))
        .route("/delay", post_only(delay))
        .route("/clear-faults", post_only(clear_faults))
        .route("/requests", get_only(requests))
        .route("/reset-requests", post_only(reset_requests))
        .route("/issue-sa-token", post_only(issue_sa_token))
        .route("/issue-jwt", post_only(issue_jwt))
        .route("/revoke-tokens", post_only(revoke_tokens))
        .fallback(|| async {
            error_response(StatusCode::NOT_FOUND, "unknown emulator admin route")
        })
}

fn post_only<H, T>(handler: H) -> MethodRouter<EmulatorState>
where
    H: Handler<T, EmulatorState>,
    T: 'static,
{
    post(handler).fallback(method_not_allowed)
}

fn get_only<H, T>(handler: H) -> MethodRouter<EmulatorState>
where
    H: Handler<T, EmulatorState>,
    T: 'static,
{
    get(handler).fallback(method_not_allowed)
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

fn ok() -> Response {
    axum::Json(json!({})).into_response()
}

/// Parses an admin body and runs `f` on it; a bad body is a 400 `{"error"}` that does not
/// quote values.
fn with_body<T: DeserializeOwned>(body: &[u8], f: impl FnOnce(T) -> Response) -> Response {
    match serde_json::from_slice(body) {
        Ok(parsed) => f(parsed),
        Err(e) => error_response(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid request body: {}",
                redact_serde_error(&e.to_string())
            ),
        ),
    }
}

fn one() -> usize {
    1
}

fn one_hour() -> u64 {
    3600
}

#[derive(Deserialize)]
struct StaticSecretBody {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct FaultBody {
    path: String,
    status: u16,
    #[serde(default = "one")]
    count: usize,
    retry_after_secs: Option<u64>,
}

#[derive(Deserialize)]
struct DropBody {
    path: String,
    #[serde(default = "one")]
    count: usize,
}

#[derive(Deserialize)]
struct DelayBody {
    path: String,
    delay_ms: u64,
}

#[derive(Deserialize)]
struct IssueSaTokenBody {
    namespace: String,
    service_account: String,
    #[serde(default)]
    pod_name: String,
    #[serde(default)]
    pod_uid: String,
    #[serde(default)]
    audience: String,
    #[serde(default = "one_hour")]
    ttl_seconds: u64,
}

#[derive(Deserialize)]
struct IssueJwtBody {
    claims: Value,
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn seed(State(state): State<EmulatorState>, body: Bytes) -> Response {
    with_body(&body, |seed: Seed| match state.try_load_seed(&seed) {
        Ok(()) => ok(),
        Err(e) => error_response(StatusCode::BAD_REQUEST, e),
    })
}

async fn static_secret(State(state): State<EmulatorState>, body: Bytes) -> Response {
    with_body(&body, |b: StaticSecretBody| {
        let version = state.put_static_secret(&b.name, &b.value);
        axum::Json(json!({ "version": version })).into_response()
    })
}

async fn fault(State(state): State<EmulatorState>, body: Bytes) -> Response {
    with_body(&body, |b: FaultBody| {
        match b.retry_after_secs {
            Some(secs) => state.fail_next_with_retry_after(&b.path, b.status, b.count, secs),
            None => state.fail_next(&b.path, b.status, b.count),
        }
        ok()
    })
}

async fn drop_connections(State(state): State<EmulatorState>, body: Bytes) -> Response {
    with_body(&body, |b: DropBody| {
        state.drop_next(&b.path, b.count);
        ok()
    })
}

async fn delay(State(state): State<EmulatorState>, body: Bytes) -> Response {
    with_body(&body, |b: DelayBody| {
        state.set_delay(&b.path, Duration::from_millis(b.delay_ms));
        ok()
    })
}

async fn clear_faults(State(state): State<EmulatorState>) -> Response {
    state.clear_faults();
    ok()
}

async fn requests(State(state): State<EmulatorState>) -> Response {
    axum::Json(state.requests()).into_response()
}

async fn reset_requests(State(state): State<EmulatorState>) -> Response {
    state.clear_requests();
    ok()
}

async fn issue_sa_token(State(state): State<EmulatorState>, body: Bytes) -> Response {
    with_body(&body, |b: IssueSaTokenBody| {
        let token = state.issue_service_account_token(
            &b.namespace,
            &b.service_account,
            &b.pod_name,
            &b.pod_uid,
            &b.audience,
            Duration::from_secs(b.ttl_seconds),
        );
        axum::Json(json!({ "token": token })).into_response()
    })
}

async fn issue_jwt(State(state): State<EmulatorState>, body: Bytes) -> Response {
    with_body(&body, |b: IssueJwtBody| {
        axum::Json(json!({ "token": state.issue_jwt(b.claims) })).into_response()
    })
}

async fn revoke_tokens(State(state): State<EmulatorState>) -> Response {
    state.revoke_all_tokens();
    ok()
}
