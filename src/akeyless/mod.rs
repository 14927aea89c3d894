//! A small typed client for the Akeyless endpoints the provider calls. It knows nothing about
//! pods or files: it turns requests into HTTP calls against an ordered gateway list and HTTP
//! outcomes into [`BackendError`]s, which map onto the public error codes.

pub mod api;
mod call;
pub mod gate;
mod items;
mod transport;

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;

pub(crate) use call::BackendPolicy;
pub use items::{CertificateValue, IssuedCertificate};
pub(crate) use transport::ClientFactory;

use crate::error::ErrorCode;
use crate::secret::{ExposeSecret, SecretString};
use api::*;

/// Default of the largest response body read from Akeyless (`--max-response-bytes`).
pub(crate) const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The Akeyless operations we perform (also the metrics/log label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Auth,
    DescribeItem,
    GetSecretValue,
    GetRotatedSecretValue,
    GetCertificateValue,
    GetDynamicSecretValue,
    GetPkiCertificate,
    UidRotateToken,
}

impl Operation {
    /// The metrics label: the path without its slash.
    pub fn label(self) -> &'static str {
        let path = self.path();
        &path[1..]
    }

    /// Whether a call creates something new in Akeyless each time (a credential, a token, a
    /// certificate). Such calls are repeated only when the request cannot have reached the
    /// server (a connection that never opened) or was refused unprocessed (429); any other
    /// failure may have minted something already.
    pub fn mints(self) -> bool {
        matches!(
            self,
            Operation::GetDynamicSecretValue
                | Operation::GetPkiCertificate
                | Operation::UidRotateToken
        )
    }

    pub fn path(self) -> &'static str {
        match self {
            Operation::Auth => "/auth",
            Operation::DescribeItem => "/describe-item",
            Operation::GetSecretValue => "/get-secret-value",
            Operation::GetRotatedSecretValue => "/get-rotated-secret-value",
            Operation::GetCertificateValue => "/get-certificate-value",
            Operation::GetDynamicSecretValue => "/get-dynamic-secret-value",
            Operation::GetPkiCertificate => "/get-pki-certificate",
            Operation::UidRotateToken => "/uid-rotate-token",
        }
    }
}

/// A failed call to Akeyless. Messages hold statuses, gateway URLs and Akeyless's own error text
/// (scrubbed of anything token-like), never request bodies.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("Akeyless answered {status} to {path} at {gateway}: {message}", path = op.path())]
    Status {
        op: Operation,
        gateway: String,
        status: u16,
        message: String,
    },
    #[error("cannot reach Akeyless at {gateway} ({detail})")]
    Unreachable {
        op: Operation,
        gateway: String,
        detail: String,
        /// Whether the request may have reached the server (false: the connection never opened).
        sent: bool,
    },
    #[error("Akeyless at {gateway} did not answer {path} in time", path = op.path())]
    Timeout { op: Operation, gateway: String },
    #[error("unexpected answer from Akeyless at {gateway} to {path}: {detail}", path = op.path())]
    BadResponse {
        op: Operation,
        gateway: String,
        detail: String,
    },
}

impl BackendError {
    pub fn code(&self) -> ErrorCode {
        match self {
            BackendError::Status { op, status, .. } => match (*status, op) {
                // No /auth here: the URL is wrong (usually a gateway URL without /api/v2).
                (404 | 405, Operation::Auth) => ErrorCode::InvalidConfig,
                // Redirects are never followed (see transport.rs): the URL needs fixing.
                (300..=399, _) => ErrorCode::InvalidConfig,
                (401 | 403, Operation::Auth | Operation::UidRotateToken) => ErrorCode::AuthFailed,
                (401 | 403, _) => ErrorCode::PermissionDenied,
                (404, _) => ErrorCode::NotFound,
                (429, _) => ErrorCode::Throttled,
                (400 | 422, _) => ErrorCode::InvalidConfig,
                (408 | 504, _) => ErrorCode::Timeout,
                (s, _) if s >= 500 => ErrorCode::BackendUnavailable,
                _ => ErrorCode::Internal,
            },
            BackendError::Unreachable { .. } => ErrorCode::BackendUnavailable,
            BackendError::Timeout { .. } => ErrorCode::Timeout,
            BackendError::BadResponse { .. } => ErrorCode::BackendUnavailable,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            BackendError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (throttling, server failure, connection
    /// failure) and may safely be tried (see [`Operation::mints`]).
    fn is_transient(&self) -> bool {
        match self {
            BackendError::Unreachable { op, sent, .. } => !(op.mints() && *sent),
            BackendError::Status { op, status, .. } => {
                *status == 429 || (*status >= 500 && !op.mints())
            }
            _ => false,
        }
    }

    /// Whether the next gateway of a failover list may do better (and may safely be asked).
    fn should_fail_over(&self) -> bool {
        match self {
            BackendError::Unreachable { op, sent, .. } => !(op.mints() && *sent),
            BackendError::Status { op, status, .. } => *status >= 500 && !op.mints(),
            _ => false,
        }
    }
}

/// An Akeyless access token (`t-…`) of one identity. `Debug` redacts.
#[derive(Clone)]
pub struct AkeylessToken {
    pub token: SecretString,
    /// When the token expires, as `/auth` stated it (see [`token_expiry`]); `None` when the
    /// answer carried no usable expiry.
    pub expires_at: Option<SystemTime>,
}

/// Unix times above this many seconds are read as milliseconds: 10^11 s is in the year 5138,
/// while 10^11 ms was in 1973, so no plausible expiry is ambiguous.
const MILLIS_THRESHOLD: u64 = 100_000_000_000;

/// The expiry an `/auth` answer states. `creds.expiry` is the published field (int64 Unix time:
/// seconds, or milliseconds when the magnitude shows it); `expiration` (RFC 3339) is the newer
/// one. When both are present the earlier wins: renewing a token early costs one `/auth`,
/// presenting an expired one fails a read. Unreadable values are ignored (the caller then
/// assumes [`crate::identity::DEFAULT_TOKEN_LIFETIME`]); no value can panic or overflow.
pub fn token_expiry(
    creds_expiry: Option<&serde_json::Value>,
    expiration: Option<&str>,
) -> Option<SystemTime> {
    let from_creds = creds_expiry
        .and_then(serde_json::Value::as_u64)
        .filter(|v| *v > 0)
        .and_then(|v| {
            let since_epoch = if v > MILLIS_THRESHOLD {
                Duration::from_millis(v)
            } else {
                Duration::from_secs(v)
            };
            SystemTime::UNIX_EPOCH.checked_add(since_epoch)
        });
    let from_expiration = expiration.and_then(crate::timefmt::parse_rfc3339);
    match (from_creds, from_expiration) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl fmt::Debug for AkeylessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AkeylessToken")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What `/auth` is asked to verify.
pub enum AuthCredential<'a> {
    AccessKey(&'a SecretString),
    Kubernetes {
        config_name: &'a str,
        service_account_token: &'a SecretString,
    },
    Jwt(&'a SecretString),
    /// Azure AD: base64 of the ARM access token obtained for the pod.
    AzureAd {
        cloud_id: &'a SecretString,
    },
    /// AWS IAM: base64 of the signed, unsent STS GetCallerIdentity request.
    AwsIam {
        cloud_id: &'a SecretString,
    },
    /// GCP: base64 of a Google ID token.
    Gcp {
        cloud_id: &'a SecretString,
    },
    /// Universal Identity: a `u-` token.
    UniversalIdentity(&'a SecretString),
}

/// A client bound to one connection spec (gateway list, TLS roots, cache preference) and one
/// deadline. The HTTP mechanics (retries, failover, limits) are in `call.rs`.
#[derive(Clone)]
pub struct AkeylessClient {
    http: reqwest::Client,
    gateways: Vec<String>,
    ignore_cache: bool,
    policy: BackendPolicy,
    deadline: Option<std::time::Instant>,
}

impl fmt::Debug for AkeylessClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AkeylessClient")
            .field("gateways", &self.gateways)
            .field("ignore_cache", &self.ignore_cache)
            .finish()
    }
}

/// Removes token-like words (Akeyless `t-`/`u-` tokens, long base64/hex runs such as JWTs or
/// keys) from a backend message and bounds its length, so it can be shown to users.
pub fn scrub(message: &str) -> String {
    const MAX: usize = 300;
    let looks_secret = |w: &str| {
        let body = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        let tokenish = (body.starts_with("t-") || body.starts_with("u-")) && body.len() >= 12;
        let long_opaque = body.len() >= 32
            && body.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.')
            });
        tokenish || long_opaque
    };
    let scrubbed: Vec<&str> = message
        .split_whitespace()
        .map(|w| if looks_secret(w) { "[REDACTED]" } else { w })
        .collect();
    let mut out = scrubbed.join(" ");
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut = cut.saturating_sub(1);
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl AkeylessClient {
    pub fn new(http: reqwest::Client, gateways: Vec<String>, ignore_cache: bool) -> Self {
        AkeylessClient {
            http,
            gateways,
            ignore_cache,
            policy: BackendPolicy::default(),
            deadline: None,
        }
    }

    /// Retries, backoff and the shared concurrency limit.
    pub(crate) fn with_policy(mut self, policy: BackendPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// No call (including retries and waiting for a slot) runs past `deadline`.
    pub(crate) fn with_deadline(mut self, deadline: std::time::Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The instant no call of this client runs past, if any.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline
    }

    /// The HTTP client (same TLS roots), for the cloud exchanges that precede `/auth`.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `POST /auth`: logs in as `access_id` and returns the identity's token.
    pub async fn authenticate(
        &self,
        access_id: &str,
        credential: AuthCredential<'_>,
    ) -> Result<AkeylessToken, BackendError> {
        let mut request = AuthRequest {
            access_id,
            ..Default::default()
        };
        match credential {
            AuthCredential::AccessKey(key) => {
                request.access_type = "access_key";
                request.access_key = Some(key.expose_secret());
            }
            AuthCredential::Kubernetes {
                config_name,
                service_account_token,
            } => {
                request.access_type = "k8s";
                request.k8s_auth_config_name = Some(config_name);
                request.k8s_service_account_token = Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(service_account_token.expose_secret()),
                );
            }
            AuthCredential::Jwt(jwt) => {
                request.access_type = "jwt";
                request.jwt = Some(jwt.expose_secret());
            }
            AuthCredential::AzureAd { cloud_id } => {
                request.access_type = "azure_ad";
                request.cloud_id = Some(cloud_id.expose_secret());
            }
            AuthCredential::AwsIam { cloud_id } => {
                request.access_type = "aws_iam";
                request.cloud_id = Some(cloud_id.expose_secret());
            }
            AuthCredential::Gcp { cloud_id } => {
                request.access_type = "gcp";
                request.cloud_id = Some(cloud_id.expose_secret());
            }
            AuthCredential::UniversalIdentity(token) => {
                request.access_type = "universal_identity";
                request.uid_token = Some(token.expose_secret());
                request.uid_token_v41 = Some(token.expose_secret());
            }
        }
        let response: AuthResponse = self.call(Operation::Auth, &request).await?;
        let creds_expiry = match &response.creds {
            Some(CredsField::Object(creds)) => creds.expiry.as_ref(),
            _ => None,
        };
        let expires_at = token_expiry(creds_expiry, response.expiration.as_deref());
        Ok(AkeylessToken {
            token: response.token,
            expires_at,
        })
    }

    /// `POST /uid-rotate-token`: the next token of a Universal Identity. `fork` creates a new
    /// child token and leaves `uid_token` valid; without it `uid_token` is replaced.
    pub async fn rotate_uid_token(
        &self,
        uid_token: &SecretString,
        fork: bool,
    ) -> Result<SecretString, BackendError> {
        let request = UidRotateTokenRequest {
            uid_token: uid_token.expose_secret(),
            fork,
        };
        let response: UidRotateTokenResponse =
            self.call(Operation::UidRotateToken, &request).await?;
        if response.token.expose_secret().trim().is_empty() {
            return Err(self.bad_response(Operation::UidRotateToken, "the answer has no token"));
        }
        Ok(response.token)
    }

    fn bad_response(&self, op: Operation, detail: impl Into<String>) -> BackendError {
        BackendError::BadResponse {
            op,
            gateway: self.gateways.first().cloned().unwrap_or_default(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_tokens_and_bounds_length() {
        let m = scrub(
            "token t-0123456789abcdef0123 expired; jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.abcdefghijklmnop rejected",
        );
        assert!(!m.contains("t-0123456789abcdef"), "{m}");
        assert!(!m.contains("eyJ"), "{m}");
        assert!(m.contains("expired"));
        assert!(scrub(&"word ".repeat(200)).chars().count() <= 301);
        assert_eq!(
            scrub("Status 404 Not Found, item /a/b"),
            "Status 404 Not Found, item /a/b"
        );
    }

    #[test]
    fn token_expiry_reads_creds_expiry_and_expiration() {
        use serde_json::json;
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let now = 1_800_000_000;
        // Seconds and milliseconds, told apart by magnitude.
        assert_eq!(token_expiry(Some(&json!(now)), None), Some(at(now)));
        assert_eq!(
            token_expiry(Some(&json!(now * 1000 + 500)), None),
            Some(at(now) + Duration::from_millis(500))
        );
        // Both present: the earlier one, whichever it is.
        let later = crate::timefmt::rfc3339(at(now + 60)).unwrap();
        let earlier = crate::timefmt::rfc3339(at(now - 60)).unwrap();
        assert_eq!(token_expiry(Some(&json!(now)), Some(&later)), Some(at(now)));
        assert_eq!(
            token_expiry(Some(&json!(now)), Some(&earlier)),
            Some(at(now - 60))
        );
        assert_eq!(token_expiry(None, Some(&later)), Some(at(now + 60)));
        // Hostile or absent values are ignored, never a panic or an overflow.
        for bad in [
            json!(-5),
            json!(0),
            json!(u64::MAX),
            json!(i64::MAX),
            json!(1.5e300),
            json!("1800000000"),
            json!(null),
            json!({"x": 1}),
        ] {
            let got = token_expiry(Some(&bad), None);
            assert!(got.is_none() || got > Some(at(now)), "{bad} gave {got:?}");
        }
        assert_eq!(token_expiry(None, Some("not a date")), None);
        assert_eq!(token_expiry(None, None), None);
        // The /auth answer's shapes, including a creds that is not an object.
        let parse = |v: serde_json::Value| {
            let r: AuthResponse = serde_json::from_value(v).unwrap();
            let e = match &r.creds {
                Some(CredsField::Object(c)) => c.expiry.clone(),
                _ => None,
            };
            token_expiry(e.as_ref(), r.expiration.as_deref())
        };
        assert_eq!(
            parse(json!({"token": "t-1", "creds": {"expiry": now, "token": "t-1"}})),
            Some(at(now))
        );
        assert_eq!(parse(json!({"token": "t-1", "creds": "odd"})), None);
        assert_eq!(parse(json!({"token": "t-1", "creds": null})), None);
    }

    #[test]
    fn status_mapping() {
        let st = |op, status| {
            BackendError::Status {
                op,
                gateway: "g".into(),
                status,
                message: String::new(),
            }
            .code()
        };
        assert_eq!(st(Operation::Auth, 401), ErrorCode::AuthFailed);
        assert_eq!(
            st(Operation::GetSecretValue, 401),
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            st(Operation::GetSecretValue, 403),
            ErrorCode::PermissionDenied
        );
        assert_eq!(st(Operation::GetSecretValue, 404), ErrorCode::NotFound);
        assert_eq!(st(Operation::GetSecretValue, 429), ErrorCode::Throttled);
        assert_eq!(
            st(Operation::GetSecretValue, 500),
            ErrorCode::BackendUnavailable
        );
        assert_eq!(
            st(Operation::GetSecretValue, 503),
            ErrorCode::BackendUnavailable
        );
    }
}
