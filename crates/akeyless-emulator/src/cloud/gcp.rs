//! The emulated Google identity services Akeyless's `gcp` auth method trusts:
//!
//! - The GCE metadata server's identity endpoint (`GET /computeMetadata/v1/instance/
//!   service-accounts/default/identity?audience=…&format=full`, header `Metadata-Flavor: Google`): an ID token of the
//!   configured node service account, signed by the emulator; `/auth` `gcp` verifies it.
//! - Google STS token exchange (`POST /v1/token`, form or JSON body, errors like Google's
//!   `{"error": "invalid_grant", "error_description": …}` with 400): takes a service-account
//!   token minted by the emulator's issuer whose audience the named workload identity provider
//!   accepts, and issues an opaque federated access token bound to the pod's (namespace,
//!   service account) principal.
//! - IAM Credentials `generateIdToken` (`POST /v1/projects/-/serviceAccounts/{email}:generateIdToken`,
//!   Bearer = that access token; 403 `PERMISSION_DENIED` unless the principal may impersonate
//!   the Google service account): an ID token signed by the emulator with `email` = the Google
//!   service account and `aud` = the requested audience, which `/auth` `gcp` accepts.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::jwt::{has_audience, k8s_subject};
use crate::state::{EmulatorState, GcpPrincipal};
use crate::util::random_alphanumeric;

/// Google STS's token-exchange grant and the token type it issues (RFC 8693 names).
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=…&format=full`.
/// Like the real server it refuses a request without `Metadata-Flavor: Google`; the emulator
/// also refuses one without `format=full` (the client always asks for the full token, whose
/// claims the GCP auth method checks).
pub(crate) async fn gcp_identity(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = |name: &str| {
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let audience = query("audience");
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header",
        )
            .into_response();
    }
    let Some(audience) = audience.filter(|a| !a.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "non-empty audience parameter required",
        )
            .into_response();
    };
    if query("format").as_deref() != Some("full") {
        return (
            StatusCode::BAD_REQUEST,
            "this emulator serves only format=full identity tokens",
        )
            .into_response();
    }
    let Some(email) = state.lock().gcp_node_account.clone() else {
        return (StatusCode::NOT_FOUND, "no service account").into_response();
    };
    let now = SystemTime::now();
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let token = state.key().sign(&json!({
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": email,
        "email": email,
        "email_verified": true,
        "sub": format!("1{:020}", secs(now)),
        "iat": secs(now),
        "exp": secs(now + Duration::from_secs(3600)),
    }));
    (StatusCode::OK, token).into_response()
}

/// Most ID tokens remembered for leak checks.
const MAX_REMEMBERED_ID_TOKENS: usize = 1000;

/// The pod-token audience Google accepts for a provider when none is configured.
fn default_provider_audience(provider: &str) -> Option<String> {
    if let Some(rest) = provider.strip_prefix("identitynamespace:") {
        return rest.split(':').next().map(str::to_owned);
    }
    provider
        .strip_prefix("//iam.googleapis.com/")
        .map(|rest| format!("https://iam.googleapis.com/{rest}"))
}

fn google_sts_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn google_api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": status.as_u16(), "message": message, "status": code}})),
    )
        .into_response()
}

/// The fields of an STS request: a form, or JSON with snake_case or camelCase names.
fn sts_fields(headers: &HeaderMap, body: &str) -> HashMap<String, String> {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body) else {
        return HashMap::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| {
            let snake: String = k
                .chars()
                .flat_map(|c| {
                    if c.is_ascii_uppercase() {
                        vec!['_', c.to_ascii_lowercase()]
                    } else {
                        vec![c]
                    }
                })
                .collect();
            Some((snake, v.as_str()?.to_owned()))
        })
        .collect()
}

/// `POST /v1/token`: Google STS token exchange of a Kubernetes service-account token.
pub(crate) async fn google_sts(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = sts_fields(&headers, &body);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != TOKEN_EXCHANGE_GRANT {
        return google_sts_error(
            "unsupported_grant_type",
            "grant_type must be urn:ietf:params:oauth:grant-type:token-exchange",
        );
    }
    if !matches!(
        field("subject_token_type"),
        "urn:ietf:params:oauth:token-type:jwt" | "urn:ietf:params:oauth:token-type:id_token"
    ) {
        return google_sts_error(
            "invalid_request",
            "Invalid value for \"subject_token_type\".",
        );
    }
    if field("requested_token_type") != ACCESS_TOKEN_TYPE {
        return google_sts_error(
            "invalid_request",
            "Invalid value for \"requested_token_type\".",
        );
    }
    let provider = field("audience").to_owned();
    let Some(accepted) = state.lock().gcp_providers.get(&provider).cloned() else {
        return google_sts_error(
            "invalid_target",
            "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.",
        );
    };
    let accepted = if accepted.is_empty() {
        default_provider_audience(&provider).into_iter().collect()
    } else {
        accepted
    };
    let now = SystemTime::now();
    let Ok(claims) = state.key().verify(field("subject_token"), now) else {
        return google_sts_error(
            "invalid_grant",
            "The subject token is invalid: its signature does not verify or it has expired.",
        );
    };
    if !accepted.iter().any(|a| has_audience(&claims, a)) {
        return google_sts_error(
            "invalid_grant",
            "The audience in the subject token does not match the audiences the provider accepts.",
        );
    }
    let Some(subject) = k8s_subject(&claims) else {
        return google_sts_error(
            "invalid_grant",
            "The subject token carries no Kubernetes service account.",
        );
    };
    let access_token = format!("ya29.{}", random_alphanumeric(64));
    let mut data = state.lock();
    data.gcp_access_tokens.retain(|_, p| p.expires_at > now);
    data.gcp_access_tokens.insert(
        access_token.clone(),
        GcpPrincipal {
            provider,
            namespace: subject.namespace,
            service_account: subject.service_account,
            expires_at: now + Duration::from_secs(3600),
        },
    );
    drop(data);
    axum::Json(json!({
        "access_token": access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": 3600,
    }))
    .into_response()
}

/// `POST /v1/projects/{project}/serviceAccounts/{email}:generateIdToken`.
pub(crate) async fn google_generate_id_token(
    State(state): State<EmulatorState>,
    Path((project, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(email) = account
        .strip_suffix(":generateIdToken")
        .filter(|_| project == "-")
    else {
        return google_api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "only projects/-/serviceAccounts/{email}:generateIdToken is emulated",
        );
    };
    let now = SystemTime::now();
    let principal = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.lock().gcp_access_tokens.get(t).cloned())
        .filter(|p| p.expires_at > now);
    let Some(principal) = principal else {
        return google_api_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
    };
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let Some(audience) = request
        .get("audience")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
    else {
        return google_api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument: audience is required.",
        );
    };
    let include_email = request.get("includeEmail").and_then(Value::as_bool) == Some(true);
    let allowed = state
        .lock()
        .gcp_impersonation
        .iter()
        .any(|(p, ns, sa, gsa)| {
            *p == principal.provider
                && *ns == principal.namespace
                && *sa == principal.service_account
                && gsa == email
        });
    if !allowed {
        return google_api_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).",
        );
    }
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut claims = json!({
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": email,
        "sub": format!("1{:020}", secs(now)),
        "iat": secs(now),
        "exp": secs(now + Duration::from_secs(3600)),
    });
    if include_email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!(true);
    }
    let token = state.key().sign(&claims);
    let mut data = state.lock();
    if data.gcp_id_tokens.len() >= MAX_REMEMBERED_ID_TOKENS {
        data.gcp_id_tokens.pop_front();
    }
    data.gcp_id_tokens.push_back(token.clone());
    drop(data);
    axum::Json(json!({ "token": token })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_default_provider_audiences() {
        assert_eq!(
            default_provider_audience(
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k"
            )
            .as_deref(),
            Some("https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k")
        );
        assert_eq!(
            default_provider_audience(
                "identitynamespace:p.svc.id.goog:https://container.googleapis.com/v1/x"
            )
            .as_deref(),
            Some("p.svc.id.goog")
        );
        assert_eq!(default_provider_audience("elsewhere"), None);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let f = sts_fields(&headers, r#"{"grantType":"g","subject_token":"t","n":1}"#);
        assert_eq!(
            (
                f.get("grant_type").map(String::as_str),
                f.get("subject_token").map(String::as_str),
                f.len()
            ),
            (Some("g"), Some("t"), 2)
        );
    }
}
