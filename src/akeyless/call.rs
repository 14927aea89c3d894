//! How one Akeyless call is made: a slot under the process-wide concurrency limit, each gateway
//! of the failover list in turn, jittered exponential backoff between rounds on transient
//! failures, and never past the mount's deadline. A gateway that answers 429 or 503 is backed
//! off once for every caller (see [`super::gate`]): calls wait for its shared backoff instead of
//! retrying on their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::api::ErrorBody;
use super::gate::{self, Closed, GatewayGates, Outcome};
use super::{AkeylessClient, BackendError, MAX_RESPONSE_BYTES, Operation, error_chain, scrub};
use crate::telemetry::{BackendHealth, Metrics};

/// How hard to try, shared by every client of the process.
#[derive(Clone, Debug)]
pub(crate) struct BackendPolicy {
    /// Caps backend requests in flight across all mounts, so a burst of pods cannot exhaust
    /// sockets or overwhelm the gateway; excess requests wait (within their deadline).
    pub concurrency: Arc<tokio::sync::Semaphore>,
    /// Attempts per call (the first included) on 429, 5xx and connection failures.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Largest answer read from Akeyless; a larger one is refused, not buffered.
    pub max_response_bytes: usize,
    /// Where every call is counted (operation, status, duration) and retries recorded.
    pub metrics: Metrics,
    /// Whether Akeyless answered recently (for /readyz).
    pub health: BackendHealth,
    /// The shared backoff of every gateway (429/503), bounded.
    pub gates: Arc<GatewayGates>,
}

impl BackendPolicy {
    pub fn new(max_concurrency: usize) -> Self {
        BackendPolicy {
            concurrency: Arc::new(tokio::sync::Semaphore::new(max_concurrency.max(1))),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_response_bytes: MAX_RESPONSE_BYTES,
            metrics: Metrics::default(),
            health: BackendHealth::default(),
            gates: Arc::new(GatewayGates::default()),
        }
    }

    /// Full-jitter exponential backoff before retry number `retry` (1-based).
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

impl Default for BackendPolicy {
    fn default() -> Self {
        BackendPolicy::new(64)
    }
}

/// A failed attempt and the server's `Retry-After`, if it sent one.
type Failure = (BackendError, Option<Duration>);

/// Most throttled (429/503) answers one call takes before it fails, however long its deadline:
/// the shared backoff spaces them out, so this bounds a call, not the load.
const MAX_THROTTLED_ATTEMPTS: u32 = 16;

/// Whether an answer throttles its gateway for everyone (429, 503).
fn throttles(err: &BackendError) -> bool {
    matches!(err.status(), Some(429 | 503))
}

impl AkeylessClient {
    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Runs `work` (a cloud exchange that precedes `/auth`) within this client's deadline;
    /// `None` when the deadline passes first (the work is dropped, its connection closed).
    pub(crate) async fn within_deadline<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        match self.remaining() {
            Some(left) => tokio::time::timeout(left, work).await.ok(),
            None => Some(work.await),
        }
    }

    /// POSTs `body` to `op`; see the module comment for the retry and failover rules.
    pub(super) async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        op: Operation,
        body: &B,
    ) -> Result<R, BackendError> {
        let (mut attempt, mut throttled) = (1u32, 0u32);
        loop {
            let (err, unsent) = match self.call_gateways(op, body).await {
                Ok(r) => return Ok(r),
                Err(failure) => failure,
            };
            if !err.is_transient() || unsent {
                return Err(err);
            }
            if throttles(&err) {
                // The gateway's shared backoff (entered before the next send) does the waiting.
                throttled = throttled.saturating_add(1);
                if throttled >= MAX_THROTTLED_ATTEMPTS
                    || self.remaining().is_some_and(|l| l.is_zero())
                {
                    return Err(err);
                }
                self.policy.metrics.retry(op.label());
                continue;
            }
            if attempt >= self.policy.max_attempts {
                return Err(err);
            }
            let wait = self.policy.backoff(attempt);
            // Retry only when the wait leaves time for another attempt.
            if self
                .remaining()
                .is_some_and(|left| left <= wait.saturating_add(Duration::from_millis(50)))
            {
                return Err(err);
            }
            tracing::debug!(op = op.path(), attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying Akeyless call");
            self.policy.metrics.retry(op.label());
            tokio::time::sleep(wait).await;
            attempt = attempt.saturating_add(1);
        }
    }

    /// One round over the gateway list: the next gateway is tried only after a connection
    /// failure or 5xx, or when a gateway that is not the last is backing off after a 503.
    /// Before each send, the gateway's shared backoff is waited out (within the deadline). The
    /// flag of an error says the call gave up unsent: the backoff outlasts the deadline.
    async fn call_gateways<B: Serialize, R: DeserializeOwned>(
        &self,
        op: Operation,
        body: &B,
    ) -> Result<R, (BackendError, bool)> {
        let mut last = None;
        let count = self.gateways.len();
        for (i, gateway) in self.gateways.iter().enumerate() {
            let is_last = i.saturating_add(1) >= count;
            let gates = &self.policy.gates;
            let metrics = &self.policy.metrics;
            let admitted = match gates.admit(gateway, self.deadline, false, metrics).await {
                Err(Closed::Throttled) if !is_last && gates.last_status(gateway) != Some(429) => {
                    // Unavailable (503): another gateway may serve meanwhile.
                    last = Some(self.backing_off(gateway, op));
                    continue;
                }
                Err(_) => gates.admit(gateway, self.deadline, true, metrics).await,
                ok => ok,
            };
            let ticket = match admitted {
                Ok(ticket) => ticket,
                Err(_) => {
                    let err = last.unwrap_or_else(|| self.backing_off(gateway, op));
                    return Err((err, true));
                }
            };
            let result = self.call_once(gateway, op, body).await;
            let outcome = match &result {
                Err((e, retry_after)) if throttles(e) => {
                    Outcome::Throttled(e.status().unwrap_or(429), *retry_after)
                }
                Err((BackendError::Unreachable { .. } | BackendError::Timeout { .. }, _)) => {
                    Outcome::NoAnswer
                }
                _ => Outcome::Answered,
            };
            ticket.finish(outcome, metrics);
            match result {
                Err((e, _)) if e.should_fail_over() => {
                    tracing::warn!(gateway = %gateway, op = op.path(), error = %e, "Akeyless call failed; trying the next gateway if any");
                    last = Some(e);
                }
                other => return other.map_err(|(e, _)| (e, false)),
            }
        }
        let err = last.unwrap_or_else(|| BackendError::Unreachable {
            op,
            gateway: "(none)".into(),
            detail: "no gateway URL configured".into(),
            sent: false,
        });
        Err((err, false))
    }

    /// The error of a call that could not be sent because `gateway` is backing off.
    fn backing_off(&self, gateway: &str, op: Operation) -> BackendError {
        let status = self.policy.gates.last_status(gateway).unwrap_or(429);
        BackendError::Status {
            op,
            gateway: gateway.to_string(),
            status,
            message: format!(
                "the gateway answered {status} and is backed off for every mount; not sent before \
                 the mount's deadline"
            ),
        }
    }

    /// One HTTP exchange with one gateway, holding a concurrency slot, within the deadline.
    async fn call_once<B: Serialize, R: DeserializeOwned>(
        &self,
        gateway: &str,
        op: Operation,
        body: &B,
    ) -> Result<R, Failure> {
        let timeout = || {
            (
                BackendError::Timeout {
                    op,
                    gateway: gateway.to_string(),
                },
                None,
            )
        };
        let exchange = async {
            let _slot = self
                .policy
                .concurrency
                .acquire()
                .await
                .map_err(|_| timeout())?;
            let started = Instant::now();
            let result = self.exchange(gateway, op, body).await;
            self.observe(op, &result, started.elapsed());
            result
        };
        match self.remaining() {
            Some(left) => tokio::time::timeout(left, exchange)
                .await
                .unwrap_or_else(|_| Err(timeout())),
            None => exchange.await,
        }
    }

    /// Counts one exchange and notes whether Akeyless answered at all.
    fn observe<R>(&self, op: Operation, result: &Result<R, Failure>, took: Duration) {
        let status = match result {
            Ok(_) => "200".to_string(),
            Err((BackendError::Status { status, .. }, _)) => status.to_string(),
            Err((BackendError::Unreachable { detail, .. }, _)) => {
                let tls = ["certificate", "tls", "TLS", "handshake"]
                    .iter()
                    .any(|w| detail.contains(w));
                if tls { "tls_error" } else { "connect_error" }.to_string()
            }
            Err((BackendError::Timeout { .. }, _)) => "timeout".to_string(),
            Err((BackendError::BadResponse { .. }, _)) => "decode_error".to_string(),
        };
        let reachable = !matches!(
            result,
            Err((
                BackendError::Unreachable { .. } | BackendError::Timeout { .. },
                _
            ))
        );
        self.policy
            .metrics
            .backend_request(op.label(), &status, took);
        self.policy.health.record(reachable);
    }

    async fn exchange<B: Serialize, R: DeserializeOwned>(
        &self,
        gateway: &str,
        op: Operation,
        body: &B,
    ) -> Result<R, Failure> {
        let url = format!("{gateway}{}", op.path());
        let transport_error = |e: reqwest::Error| {
            let err = if e.is_timeout() {
                BackendError::Timeout {
                    op,
                    gateway: gateway.to_string(),
                }
            } else {
                BackendError::Unreachable {
                    op,
                    gateway: gateway.to_string(),
                    sent: !e.is_connect(),
                    detail: error_chain(&e.without_url()),
                }
            };
            (err, None)
        };
        let mut response = self
            .http
            .post(&url)
            .header("akeylessclienttype", "akeyless-csi-provider")
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        // Seconds only (an HTTP date is ignored: backoff applies), capped.
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(gate::parse_retry_after);
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            let limit = self.policy.max_response_bytes;
            if bytes.len().saturating_add(chunk.len()) > limit {
                let detail =
                    format!("the response is larger than {limit} bytes (--max-response-bytes)");
                return Err((
                    BackendError::BadResponse {
                        op,
                        gateway: gateway.to_string(),
                        detail,
                    },
                    None,
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| scrub(&b.error))
                .unwrap_or_else(|_| "(no error message)".into());
            let err = BackendError::Status {
                op,
                gateway: gateway.to_string(),
                status,
                message,
            };
            return Err((err, retry_after));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            // Category and position only: the body may hold secret values.
            let detail = format!(
                "not the expected JSON (line {} column {})",
                e.line(),
                e.column()
            );
            (
                BackendError::BadResponse {
                    op,
                    gateway: gateway.to_string(),
                    detail,
                },
                None,
            )
        })
    }
}
