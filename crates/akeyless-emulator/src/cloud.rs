//! Emulated cloud identity services and the checks Akeyless's cloud auth methods make:
//!
//! - AWS STS `AssumeRoleWithWebIdentity` (`POST /aws-sts`, form body, XML answer like AWS): takes a
//!   service-account token minted by the emulator's issuer for audience `sts.amazonaws.com` whose
//!   subject a registered role trusts, and issues temporary credentials. `/auth` `aws_iam` then
//!   decodes the `cloud-id`, **verifies the SigV4 signature** of the unsent GetCallerIdentity with
//!   the secret it issued, and binds the role ARN.
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

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::jwt::{has_audience, k8s_subject};
use super::state::{AwsKey, EmulatorState, GcpPrincipal};
use super::util::{random_alphanumeric, rfc3339};
use secrecy::SecretString;

/// The only STS call an `aws_iam` cloud-id may carry, as AWS documents it.
const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// Google STS's token-exchange grant and the token type it issues (RFC 8693 names).
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The audience STS requires on EKS web-identity tokens.
pub(crate) const STS_AUDIENCE: &str = "sts.amazonaws.com";
/// How far a signed request's date may be from now.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

fn sts_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        random_alphanumeric(16)
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

/// `POST /aws-sts`: AssumeRoleWithWebIdentity.
pub(crate) async fn sts(State(state): State<EmulatorState>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("Action") != "AssumeRoleWithWebIdentity" || field("Version") != "2011-06-15" {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "only AssumeRoleWithWebIdentity (Version 2011-06-15) is emulated",
        );
    }
    let session_name = field("RoleSessionName");
    if session_name.len() < 2
        || session_name.len() > 64
        || !session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
    {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "RoleSessionName must match [\\w+=,.@-]{2,64}",
        );
    }
    let role_arn = field("RoleArn").to_owned();
    let Some(trusted_subject) = state.lock().aws_roles.get(&role_arn).cloned() else {
        return sts_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    };
    let now = SystemTime::now();
    let Ok(claims) = state.key().verify(field("WebIdentityToken"), now) else {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "The web identity token is not valid",
        );
    };
    let subject = k8s_subject(&claims).map(|s| {
        format!(
            "system:serviceaccount:{}:{}",
            s.namespace, s.service_account
        )
    });
    if !has_audience(&claims, STS_AUDIENCE) || subject.as_deref() != Some(&trusted_subject) {
        return sts_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    }
    let access_key_id = format!("ASIA{}", random_alphanumeric(16).to_ascii_uppercase());
    let secret_access_key = random_alphanumeric(40);
    let session_token = random_alphanumeric(64);
    state.lock().aws_keys.insert(
        access_key_id.clone(),
        AwsKey {
            secret_access_key: secret_access_key.clone(),
            session_token: Some(session_token.clone()),
            arn: role_arn.clone(),
        },
    );
    let expiration = rfc3339(now + Duration::from_secs(3600));
    let body = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{access_key_id}</AccessKeyId>\
         <SecretAccessKey>{secret_access_key}</SecretAccessKey><SessionToken>{session_token}</SessionToken>\
         <Expiration>{expiration}</Expiration></Credentials><AssumedRoleUser>\
         <Arn>{role_arn}/{session_name}</Arn></AssumedRoleUser></AssumeRoleWithWebIdentityResult>\
         </AssumeRoleWithWebIdentityResponse>"
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

/// The region an STS host belongs to (`sts.amazonaws.com` is us-east-1), if it is one.
fn sts_region(host: &str) -> Option<&str> {
    if host == "sts.amazonaws.com" {
        return Some("us-east-1");
    }
    let rest = host.strip_prefix("sts.")?;
    rest.strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
        .filter(|r| !r.is_empty() && !r.contains('.'))
}

/// Checks an `aws_iam` `cloud-id` as Akeyless would by replaying it, but offline: the
/// signature must verify with the secret of credentials the emulator knows. Returns the ARN
/// the credentials act as. Errors never quote the submitted values.
pub(crate) fn verify_aws_cloud_id(
    state: &EmulatorState,
    cloud_id: &str,
    now: SystemTime,
) -> Result<String, String> {
    let b64 = |v: &Value, what: &str| -> Result<String, String> {
        v.as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("{what} must be base64 text"))
    };
    let document: Value = STANDARD
        .decode(cloud_id)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("cloud-id must be base64 of a JSON document")?;
    if document.get("sts_request_method").and_then(Value::as_str) != Some("POST") {
        return Err("sts_request_method must be POST".into());
    }
    let url = b64(&document["sts_request_url"], "sts_request_url")?;
    let url = url::Url::parse(&url).map_err(|_| "sts_request_url is not a URL".to_string())?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let region = sts_region(&host).ok_or("sts_request_url is not an AWS STS endpoint")?;
    let body = b64(&document["sts_request_body"], "sts_request_body")?;
    if body != GET_CALLER_IDENTITY_BODY {
        return Err("the signed request is not GetCallerIdentity".into());
    }
    let headers: BTreeMap<String, Vec<String>> = serde_json::from_str(&b64(
        &document["sts_request_headers"],
        "sts_request_headers",
    )?)
    .map_err(|_| "sts_request_headers must be a JSON map of string lists".to_string())?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    };
    let authorization = header("authorization")
        .and_then(sigv4::parse_authorization)
        .ok_or("the request carries no SigV4 Authorization header")?;
    if authorization.service != "sts" || authorization.region != region {
        return Err("the signature's scope is not STS in the endpoint's region".into());
    }
    let amz_date = header("x-amz-date").ok_or("the request has no X-Amz-Date")?;
    let signed_at = super::util::parse_rfc3339(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        amz_date.get(0..4).unwrap_or(""),
        amz_date.get(4..6).unwrap_or(""),
        amz_date.get(6..8).unwrap_or(""),
        amz_date.get(9..11).unwrap_or(""),
        amz_date.get(11..13).unwrap_or(""),
        amz_date.get(13..15).unwrap_or(""),
    ))
    .ok_or("X-Amz-Date is malformed")?;
    let skew = now
        .duration_since(signed_at)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > MAX_CLOCK_SKEW || !amz_date.starts_with(&authorization.date) {
        return Err("the signed request is expired or not yet valid".into());
    }
    let key = state
        .lock()
        .aws_keys
        .get(&authorization.access_key_id)
        .cloned()
        .ok_or("the signing access key is not known to AWS")?;
    let signed = &authorization.signed_headers;
    if !signed.iter().any(|h| h == "host") || !signed.iter().any(|h| h == "x-amz-date") {
        return Err("host and x-amz-date must be signed".into());
    }
    if let Some(expected) = &key.session_token
        && (header("x-amz-security-token") != Some(expected.as_str())
            || !signed.iter().any(|h| h == "x-amz-security-token"))
    {
        return Err("the security token is missing or invalid".into());
    }
    let mut canonical = Vec::new();
    for name in signed {
        let value = if name == "host" {
            host.clone()
        } else {
            header(name)
                .ok_or("a signed header is missing from the request")?
                .to_owned()
        };
        canonical.push((name.clone(), value));
    }
    let request = sigv4::Request {
        method: "POST",
        path: url.path(),
        query: url.query().unwrap_or(""),
        headers: &canonical,
        payload: body.as_bytes(),
    };
    let scope = sigv4::Scope {
        amz_date,
        region,
        service: "sts",
    };
    let expected = sigv4::signature(
        &SecretString::from(key.secret_access_key.clone()),
        &scope,
        &request,
    );
    if expected != authorization.signature {
        return Err("the request signature does not match".into());
    }
    Ok(key.arn)
}

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
    use secrecy::ExposeSecret;

    /// An access key of the test's AWS user: its secret, and a session token for temporary
    /// credentials.
    struct Creds {
        secret: &'static str,
        session: Option<&'static str>,
    }

    fn creds(secret: &'static str, session: Option<&'static str>) -> Creds {
        Creds { secret, session }
    }

    /// A client's `aws_iam` cloud-id for `creds`, signed for `region` at `now` (the document the
    /// provider sends, signed with the same SigV4 code).
    fn cloud_id(creds: &Creds, region: &str, now: SystemTime) -> SecretString {
        let date = rfc3339(now).replace(['-', ':'], "");
        let url = format!("https://sts.{region}.amazonaws.com/");
        let mut headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("Host".to_string(), format!("sts.{region}.amazonaws.com")),
            ("X-Amz-Date".to_string(), date.clone()),
        ];
        if let Some(token) = creds.session {
            headers.push(("X-Amz-Security-Token".to_string(), token.to_string()));
        }
        let request = sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload: GET_CALLER_IDENTITY_BODY.as_bytes(),
        };
        let scope = sigv4::Scope {
            amz_date: &date,
            region,
            service: "sts",
        };
        let secret = SecretString::from(creds.secret.to_string());
        let signed = sigv4::authorization("AKIATEST0000000001", &secret, &scope, &request);
        let mut sent: BTreeMap<String, Vec<String>> = headers
            .into_iter()
            .filter(|(name, _)| name != "Host")
            .map(|(name, value)| (name, vec![value]))
            .collect();
        sent.insert("Authorization".into(), vec![signed]);
        let document = json!({
            "sts_request_method": "POST",
            "sts_request_url": STANDARD.encode(&url),
            "sts_request_body": STANDARD.encode(GET_CALLER_IDENTITY_BODY),
            "sts_request_headers": STANDARD.encode(serde_json::to_string(&sent).unwrap()),
        });
        SecretString::from(STANDARD.encode(document.to_string()))
    }

    /// Re-encodes a cloud-id after `edit` changed its decoded document.
    fn tamper(id: &SecretString, edit: impl FnOnce(&mut Value)) -> String {
        let mut doc: Value =
            serde_json::from_slice(&STANDARD.decode(id.expose_secret()).unwrap()).unwrap();
        edit(&mut doc);
        STANDARD.encode(doc.to_string())
    }

    #[test]
    fn verifies_sigv4_and_rejects_tampering() {
        let state = EmulatorState::new();
        state.add_aws_user("AKIATEST0000000001", "right", "arn:aws:iam::1:user/u");
        let now = SystemTime::now();
        let good = cloud_id(&creds("right", None), "us-east-1", now);
        assert_eq!(
            verify_aws_cloud_id(&state, good.expose_secret(), now).unwrap(),
            "arn:aws:iam::1:user/u"
        );
        let wrong_secret = cloud_id(&creds("wrong", None), "us-east-1", now);
        let e = verify_aws_cloud_id(&state, wrong_secret.expose_secret(), now).unwrap_err();
        assert!(e.contains("signature"), "{e}");
        // Another region's endpoint than the one signed for.
        let moved = tamper(&good, |d| {
            d["sts_request_url"] = STANDARD
                .encode("https://sts.eu-west-1.amazonaws.com/")
                .into()
        });
        assert!(verify_aws_cloud_id(&state, &moved, now).is_err());
        // Another action than GetCallerIdentity.
        let other_body = tamper(&good, |d| {
            d["sts_request_body"] = STANDARD
                .encode("Action=AssumeRole&Version=2011-06-15")
                .into()
        });
        assert!(verify_aws_cloud_id(&state, &other_body, now).is_err());
        // Replayed an hour later.
        let late = now + Duration::from_secs(3600);
        let e = verify_aws_cloud_id(&state, good.expose_secret(), late).unwrap_err();
        assert!(e.contains("expired"), "{e}");
        // Temporary credentials need their session token.
        state.lock().aws_keys.insert(
            "AKIATEST0000000001".into(),
            AwsKey {
                secret_access_key: "right".into(),
                session_token: Some("session".into()),
                arn: "arn:aws:iam::1:role/r".into(),
            },
        );
        let e = verify_aws_cloud_id(&state, good.expose_secret(), now).unwrap_err();
        assert!(e.contains("security token"), "{e}");
        let with_token = cloud_id(&creds("right", Some("session")), "us-east-1", now);
        assert!(verify_aws_cloud_id(&state, with_token.expose_secret(), now).is_ok());
        assert!(verify_aws_cloud_id(&state, "not base64!", now).is_err());
    }
}
