//! An emulated Azure AD token endpoint for workload identity (`POST /azure-ad/{tenant}/oauth2/v2.0/token`):
//! it accepts a service-account token minted by the emulator's issuer for the audience
//! `api://AzureADTokenExchange` as the client assertion of a registered app whose federated
//! credential names that service account, and answers with an ARM access token (a JWT signed
//! by the emulator, `aud` = ARM, `oid` = the app's object ID) that `/auth` `azure_ad` accepts.
//!
//! It also plays Azure IMDS's managed identity endpoint (`GET /metadata/identity/oauth2/token`),
//! answering as the node's managed identities with the same kind of token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::jwt::k8s_subject;
use super::state::{EmulatorState, NodeIdentity};

/// The audience Azure AD requires on federated service-account tokens.
pub(crate) const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The audience of the ARM tokens it issues.
pub(crate) const ARM_AUDIENCE: &str = "https://management.azure.com/";

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(crate) async fn token(
    State(state): State<EmulatorState>,
    Path(tenant): Path<String>,
    body: String,
) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials"
        || field("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unsupported grant or assertion type",
        );
    }
    let Some(app) = state.lock().azure_apps.get(field("client_id")).cloned() else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "application not found in the directory",
        );
    };
    if app.tenant_id != tenant {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "application not found in this tenant",
        );
    }
    let now = SystemTime::now();
    let claims = match state.key().verify(field("client_assertion"), now) {
        Ok(c) => c,
        Err(_) => {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client assertion is not valid",
            );
        }
    };
    if !super::jwt::has_audience(&claims, EXCHANGE_AUDIENCE) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client assertion audience is not api://AzureADTokenExchange",
        );
    }
    let subject = k8s_subject(&claims).map(|s| {
        format!(
            "system:serviceaccount:{}:{}",
            s.namespace, s.service_account
        )
    });
    if subject.as_deref() != Some(app.subject.as_str()) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no federated credential matches the assertion's subject",
        );
    }
    let exp = now + Duration::from_secs(3600);
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let access_token = state.key().sign(&json!({
        "aud": ARM_AUDIENCE,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "oid": app.object_id,
        "tid": tenant,
        "sub": app.object_id,
        "iat": secs(now),
        "exp": secs(exp),
    }));
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": access_token}))
        .into_response()
}

/// `GET /metadata/identity/oauth2/token?api-version=…&resource=…[&object_id|client_id|msi_res_id=…]`
/// with `Metadata: true`, as Azure IMDS answers on a VM: one token of the node identity asked
/// for, or of its only (or system-assigned) identity when none is named.
pub(crate) async fn imds_token(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if headers.contains_key("x-forwarded-for") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Request rejected: X-Forwarded-For header present",
        );
    }
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let field = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if field("api-version").is_none() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = field("resource") else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required audience (resource) not specified",
        );
    };
    let identities = state.lock().azure_node_identities.clone();
    let chosen = match choose_identity(
        &identities,
        field("object_id"),
        field("client_id"),
        field("msi_res_id"),
    ) {
        Ok(chosen) => chosen,
        Err(description) => {
            return aad_error(StatusCode::BAD_REQUEST, "invalid_request", description);
        }
    };
    let Some(identity) = chosen.cloned() else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    let now = SystemTime::now();
    let exp = now + Duration::from_secs(3600);
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tenant = identity.tenant_id;
    let access_token = state.key().sign(&json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "oid": identity.object_id,
        "tid": tenant,
        "sub": identity.object_id,
        "iat": secs(now),
        "exp": secs(exp),
    }));
    axum::Json(json!({
        "access_token": access_token,
        "expires_in": "3599",
        "expires_on": secs(exp).to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// The node identity an IMDS request names by `object_id` or `client_id`; naming none, the
/// system-assigned one or else the only one. `Err`: more than one selector.
fn choose_identity<'a>(
    identities: &'a [NodeIdentity],
    object_id: Option<&str>,
    client_id: Option<&str>,
    msi_res_id: Option<&str>,
) -> Result<Option<&'a NodeIdentity>, &'static str> {
    Ok(match (object_id, client_id, msi_res_id) {
        (Some(oid), None, None) => identities.iter().find(|i| i.object_id == oid),
        (None, Some(client), None) => identities
            .iter()
            .find(|i| i.client_id.as_deref() == Some(client)),
        (None, None, None) => {
            identities
                .iter()
                .find(|i| i.client_id.is_none())
                .or(match identities {
                    [only] => Some(only),
                    _ => None,
                })
        }
        _ => {
            return Err("Only one of object_id, client_id or msi_res_id may be specified");
        }
    })
}
