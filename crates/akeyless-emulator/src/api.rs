//! The Akeyless API commands: typed request bodies, validation order and response shapes.
//!
//! Checks run in the order that gives Akeyless's statuses: body shape (400), token (401),
//! read permission (401, whether or not the item exists), existence (404), then item type (400)
//! and version (404). Error messages never quote submitted secrets or tokens.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::items::{Item, ItemBody, ItemType, StoredValue, fresh_dynamic_value};
use super::jwt::{JwtError, JwtKey, K8sSubject, has_audience, k8s_subject};
use super::state::{AuthMethod, EmulatorState, Identity, Session};
use super::util::{add_saturating, normalize_name, random_hex, rfc3339, secs_until, unix_secs};

/// The commands the emulator implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Auth,
    ValidateToken,
    DescribeItem,
    GetSecretValue,
    GetRotatedSecretValue,
    GetCertificateValue,
    GetDynamicSecretValue,
    GetPkiCertificate,
    UidRotateToken,
}

impl Command {
    pub(crate) fn from_path(path: &str) -> Option<Self> {
        Some(match path {
            "/auth" => Self::Auth,
            "/validate-token" => Self::ValidateToken,
            "/describe-item" => Self::DescribeItem,
            "/get-secret-value" => Self::GetSecretValue,
            "/get-rotated-secret-value" => Self::GetRotatedSecretValue,
            "/get-certificate-value" => Self::GetCertificateValue,
            "/get-dynamic-secret-value" => Self::GetDynamicSecretValue,
            "/get-pki-certificate" => Self::GetPkiCertificate,
            "/uid-rotate-token" => Self::UidRotateToken,
            _ => return None,
        })
    }

    /// Prefix of error messages, in the style of Akeyless's own.
    fn failure(self) -> &'static str {
        match self {
            Self::Auth => "failed to authenticate",
            Self::ValidateToken => "failed to validate token",
            Self::DescribeItem => "failed to obtain item description",
            Self::GetSecretValue => "failed to get secret value",
            Self::GetRotatedSecretValue => "failed to get rotated secret value",
            Self::GetCertificateValue => "failed to get certificate value",
            Self::GetDynamicSecretValue => "failed to get dynamic secret value",
            Self::GetPkiCertificate => "failed to get pki certificate",
            Self::UidRotateToken => "failed to rotate token",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
}

/// A failed command, rendered as `{"error": "..."}` by [`ApiError::render`].
#[derive(Debug)]
pub(crate) struct ApiError {
    kind: ErrorKind,
    message: String,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadRequest,
            message: message.into(),
        }
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Unauthorized,
            message: message.into(),
        }
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Forbidden,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            message: message.into(),
        }
    }

    /// Status and message, e.g. `failed to get secret value: Status 404 Not Found,
    /// Error: NotFound. Message: item /x not found`.
    pub(crate) fn render(&self, command: Option<Command>) -> (StatusCode, String) {
        let (status, code) = match self.kind {
            ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "BadRequest"),
            ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, "UnauthorizedAccess"),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
        };
        let prefix = command.map_or("failed to process request", Command::failure);
        let message = format!(
            "{prefix}: Status {} {}, Error: {code}. Message: {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            self.message
        );
        (status, message)
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The outcome of a real TokenReview of a `k8s` `/auth` request's token, run (asynchronously)
/// before the command because the command itself runs under the state lock.
pub(crate) type ReviewOutcome = Result<K8sSubject, String>;

/// What a TokenReview-backed `/auth` needs: the config name, pod token and audience to review,
/// or `None` when `body` is not such a request (the command then reports any problem itself).
pub(crate) fn review_request(
    state: &EmulatorState,
    body: &Value,
) -> Option<(super::tokenreview::K8sAuthConfig, String, Option<String>)> {
    let req: AuthRequest = decode(body).ok()?;
    let access_id = non_empty(&req.access_id)?;
    let data = state.lock();
    let Some(AuthMethod::K8s {
        config_name,
        audience,
        ..
    }) = data.auth_methods.get(access_id)
    else {
        return None;
    };
    if req.k8s_auth_config_name.as_deref() != Some(config_name.as_str()) {
        return None;
    }
    let config = data.k8s_auth_configs.get(config_name)?.clone();
    let jwt = decode_k8s_token(&req).ok()?;
    Some((config, jwt, audience.clone()))
}

/// Runs `command` on a JSON-object body. The identity is reported even when the command
/// fails after the token was accepted, for the request log. `review` is the TokenReview
/// outcome for a `k8s` `/auth` whose auth config is backed by a cluster.
pub(crate) fn execute(
    state: &EmulatorState,
    command: Command,
    body: &Value,
    review: Option<ReviewOutcome>,
) -> (Option<Identity>, ApiResult<Value>) {
    let mut call = Call {
        state,
        identity: None,
    };
    if let Err(e) = check_fields(command, body) {
        return (None, Err(e));
    }
    let with_session;
    let body = match uid_token_session(state, command, body) {
        Ok(Some(rewritten)) => {
            with_session = rewritten;
            &with_session
        }
        Ok(None) => body,
        Err(e) => return (None, Err(e)),
    };
    let result = match command {
        Command::Auth => decode(body).and_then(|r| call.auth(r, review)),
        Command::ValidateToken => decode(body).and_then(|r| call.validate_token(r)),
        Command::DescribeItem => decode(body).and_then(|r| call.describe_item(r)),
        Command::GetSecretValue => decode(body).and_then(|r| call.get_secret_value(r)),
        Command::GetRotatedSecretValue => {
            decode(body).and_then(|r| call.get_rotated_secret_value(r))
        }
        Command::GetCertificateValue => decode(body).and_then(|r| call.get_certificate_value(r)),
        Command::GetDynamicSecretValue => {
            decode(body).and_then(|r| call.get_dynamic_secret_value(r))
        }
        Command::GetPkiCertificate => decode(body).and_then(|r| call.get_pki_certificate(r)),
        Command::UidRotateToken => decode(body).and_then(|r| call.uid_rotate_token(r)),
    };
    (call.identity, result)
}

/// The request fields Akeyless's published schema accepts for `command` (with the fields later
/// schemas added: `uid-token` on `/auth`), as `tests/contract.rs` checks against
/// `tests/data/akeyless-api-subset.json`. Any other field is refused with 400, so a client
/// that misspells a field fails here instead of being silently ignored by a real gateway.
/// `None`: a command the schema file does not cover (`/validate-token`), not checked.
pub fn accepted_request_fields(path: &str) -> Option<&'static [&'static str]> {
    let command = Command::from_path(path)?;
    command.accepted_fields()
}

impl Command {
    fn accepted_fields(self) -> Option<&'static [&'static str]> {
        match self {
            Command::Auth => Some(&[
                "access-id",
                "access-key",
                "access-type",
                "account-id",
                "admin-email",
                "admin-password",
                "cert-data",
                "cloud-id",
                "debug",
                "gateway-url",
                "gcp-audience",
                "json",
                "jwt",
                "k8s-auth-config-name",
                "k8s-service-account-token",
                "key-data",
                "ldap_password",
                "ldap_username",
                "oci-auth-type",
                "oci-group-ocid",
                "uid-token",
                "uid_token",
            ]),
            Command::DescribeItem => Some(&[
                "accessibility",
                "bastion-details",
                "display-id",
                "gateway-details",
                "item-id",
                "json",
                "name",
                "services-details",
                "show-versions",
                "token",
                "uid-token",
            ]),
            Command::GetSecretValue => Some(&[
                "accessibility",
                "ignore-cache",
                "json",
                "names",
                "pretty-print",
                "token",
                "uid-token",
                "version",
            ]),
            Command::GetRotatedSecretValue => Some(&[
                "host",
                "ignore-cache",
                "json",
                "names",
                "token",
                "uid-token",
                "version",
            ]),
            Command::GetDynamicSecretValue => Some(&[
                "args",
                "host",
                "json",
                "name",
                "target",
                "timeout",
                "token",
                "uid-token",
            ]),
            Command::GetCertificateValue => Some(&[
                "cert-issuer-name",
                "display-id",
                "ignore-cache",
                "issuance-token",
                "json",
                "name",
                "token",
                "uid-token",
                "version",
            ]),
            Command::GetPkiCertificate => Some(&[
                "alt-names",
                "cert-issuer-name",
                "common-name",
                "csr-data-base64",
                "extended-key-usage",
                "extra-extensions",
                "json",
                "key-data-base64",
                "token",
                "ttl",
                "uid-token",
                "uri-sans",
            ]),
            Command::UidRotateToken => Some(&[
                "fork",
                "json",
                "send-manual-ack-token",
                "uid-token",
                "with-manual-ack",
            ]),
            Command::ValidateToken => None,
        }
    }
}

/// 400 for a field the schema does not accept (see [`accepted_request_fields`]).
fn check_fields(command: Command, body: &Value) -> ApiResult<()> {
    let (Some(accepted), Some(fields)) = (command.accepted_fields(), body.as_object()) else {
        return Ok(());
    };
    match fields.keys().find(|k| !accepted.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(format!(
            "invalid request body: unknown field {unknown:?}"
        ))),
        None => Ok(()),
    }
}

/// Item commands take either `token` (a `t-` token from `/auth`) or `uid-token` (a Universal
/// Identity token, used directly). For the latter this returns the body with `token` set to a
/// session of that identity, so the command runs as it; `None` when there is nothing to do.
fn uid_token_session(
    state: &EmulatorState,
    command: Command,
    body: &Value,
) -> ApiResult<Option<Value>> {
    if matches!(
        command,
        Command::Auth | Command::ValidateToken | Command::UidRotateToken
    ) {
        return Ok(None);
    }
    let present = |field: &str| {
        body.get(field)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if present("token").is_some() {
        return Ok(None);
    }
    let Some(uid_token) = present("uid-token") else {
        return Ok(None);
    };
    let mut data = state.lock();
    let access_id = match data.uid_tokens.get(uid_token) {
        Some(t) if t.valid => t.access_id.clone(),
        _ => {
            return Err(ApiError::unauthorized(
                "invalid, expired or revoked universal identity token",
            ));
        }
    };
    let session_token = format!("t-{}", random_hex(16));
    let expires_at = add_saturating(SystemTime::now(), data.token_ttl);
    data.insert_session(
        session_token.clone(),
        Session {
            identity: Identity {
                access_id,
                access_type: "universal_identity".to_owned(),
                namespace: None,
                service_account: None,
                pod_uid: None,
                subject: None,
            },
            expires_at,
        },
    );
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        object.insert("token".to_owned(), Value::String(session_token));
    }
    Ok(Some(body))
}

/// Decodes a typed request like Go's `encoding/json` would: unknown fields are ignored, a
/// field of the wrong JSON type is a 400.
fn decode<T: DeserializeOwned>(body: &Value) -> ApiResult<T> {
    T::deserialize(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid request body: {}",
            redact_serde_error(&e.to_string())
        ))
    })
}

/// serde quotes the offending value (`invalid type: string "hunter2", expected ...`), which
/// could be a secret; keep only its JSON type.
pub(crate) fn redact_serde_error(message: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            let kind_end = rest.find([' ', ',']).unwrap_or(rest.len());
            let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
            return format!(
                "{}{marker}{}{expected}",
                &message[..start],
                &rest[..kind_end]
            );
        }
    }
    message.to_owned()
}

/// Request bodies. Optional fields are `Option`s so the handler picks the 400 message for
/// required ones; fields that exist only to be type-checked are marked.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct AuthRequest {
    access_id: Option<String>,
    access_type: Option<String>,
    access_key: Option<String>,
    k8s_auth_config_name: Option<String>,
    /// base64 (StdEncoding) of the service-account JWT.
    k8s_service_account_token: Option<String>,
    jwt: Option<String>,
    cloud_id: Option<String>,
    /// universal_identity, newer schema.
    uid_token: Option<String>,
    /// universal_identity, v4.1 schema.
    #[serde(rename = "uid_token")]
    uid_token_v41: Option<String>,
    #[allow(dead_code)]
    // decoded only so a wrong JSON type is rejected; the emulator is the gateway
    gateway_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UidRotateTokenRequest {
    uid_token: Option<String>,
    fork: Option<bool>,
    #[allow(dead_code)] // type-checked only
    with_manual_ack: Option<bool>,
}

#[derive(Deserialize)]
struct ValidateTokenRequest {
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct DescribeItemRequest {
    name: Option<String>,
    token: Option<String>,
    show_versions: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct GetSecretValueRequest {
    names: Option<Vec<String>>,
    version: Option<i32>,
    #[allow(dead_code)] // type-checked only; recorded in the request log from the raw body
    ignore_cache: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct GetRotatedSecretValueRequest {
    /// A single name, despite the plural.
    names: Option<String>,
    version: Option<i32>,
    #[allow(dead_code)] // type-checked only
    ignore_cache: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct GetCertificateValueRequest {
    name: Option<String>,
    version: Option<i32>,
    #[allow(dead_code)] // type-checked only
    ignore_cache: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct GetDynamicSecretValueRequest {
    name: Option<String>,
    #[allow(dead_code)] // type-checked only; recorded in the request log from the raw body
    args: Option<Vec<String>>,
    token: Option<String>,
}

fn required<'a>(value: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    non_empty(value).ok_or_else(|| ApiError::bad_request(format!("{field} is required")))
}

/// `version`: absent or 0 means latest. Negative N means "the last N versions" in Akeyless,
/// but that response shape is undocumented, so the emulator refuses it rather than guess.
fn requested_version(version: Option<i32>) -> ApiResult<u32> {
    match version {
        None => Ok(0),
        Some(v) => u32::try_from(v).map_err(|_| {
            ApiError::bad_request(
                "negative version (last N versions) is not supported by the emulator",
            )
        }),
    }
}

/// One command's execution context.
struct Call<'a> {
    state: &'a EmulatorState,
    /// Set once the caller is known (successful /auth, or an accepted token).
    identity: Option<Identity>,
}

impl Call<'_> {
    fn auth(&mut self, req: AuthRequest, review: Option<ReviewOutcome>) -> ApiResult<Value> {
        let access_id = required(&req.access_id, "access-id")?;
        let (method, reviewed) = {
            let data = self.state.lock();
            let method = data.auth_methods.get(access_id).cloned();
            let reviewed = match &method {
                Some(AuthMethod::K8s { config_name, .. }) => {
                    data.k8s_auth_configs.contains_key(config_name)
                }
                _ => false,
            };
            (method, reviewed)
        };
        let verifier = if reviewed {
            TokenVerifier::Review(review)
        } else {
            TokenVerifier::Key(self.state.key())
        };
        let now = SystemTime::now();
        let identity = match method {
            Some(AuthMethod::UniversalIdentity { .. }) => self.uid_login(access_id, &req),
            Some(AuthMethod::AwsIam { bound_arns }) => {
                aws_login(self.state, access_id, &bound_arns, &req, now)
            }
            other => login(verifier, access_id, other, &req, now),
        }
        .map_err(|reason| {
            ApiError::unauthorized(format!(
                "authentication failed for access id {access_id}: {reason}"
            ))
        })?;

        let token = format!("t-{}", random_hex(16));
        let (expires_at, with_expiration) = {
            let mut data = self.state.lock();
            let expires_at = add_saturating(now, data.token_ttl);
            let session = Session {
                identity: identity.clone(),
                expires_at,
            };
            data.insert_session(token.clone(), session);
            (expires_at, data.auth_expiration_field)
        };
        self.identity = Some(identity);
        let mut answer = json!({
            "token": token,
            "creds": {
                "access_id": access_id,
                "expiry": unix_secs(expires_at),
                "token": token,
            },
        });
        if with_expiration {
            answer["expiration"] = json!(rfc3339(expires_at));
        }
        Ok(answer)
    }

    /// `universal_identity`: a live `u-` token of this access id.
    fn uid_login(&self, access_id: &str, req: &AuthRequest) -> Result<Identity, String> {
        check_access_type(req, "universal_identity")?;
        let token = non_empty(&req.uid_token)
            .or(non_empty(&req.uid_token_v41))
            .ok_or("uid-token is required")?;
        let data = self.state.lock();
        match data.uid_tokens.get(token) {
            Some(t) if t.valid && t.access_id == access_id => Ok(Identity {
                access_id: access_id.to_owned(),
                access_type: "universal_identity".to_owned(),
                namespace: None,
                service_account: None,
                pod_uid: None,
                subject: None,
            }),
            _ => Err("invalid, expired or revoked universal identity token".into()),
        }
    }

    /// `/uid-rotate-token`: a new token of the same identity. Without `fork` the presented
    /// token is revoked; with it, a child token is added and the presented one stays valid.
    fn uid_rotate_token(&mut self, req: UidRotateTokenRequest) -> ApiResult<Value> {
        let token = required(&req.uid_token, "uid-token")?;
        let mut data = self.state.lock();
        let access_id = match data.uid_tokens.get(token) {
            Some(t) if t.valid => t.access_id.clone(),
            _ => {
                return Err(ApiError::unauthorized(
                    "invalid, expired or revoked universal identity token",
                ));
            }
        };
        let fork = req.fork.unwrap_or(false);
        if let Some(AuthMethod::UniversalIdentity {
            deny_inheritance,
            deny_rotate,
        }) = data.auth_methods.get(&access_id)
        {
            if *deny_rotate {
                return Err(ApiError::forbidden(
                    "the auth method of this token denies rotation (deny-rotate)",
                ));
            }
            if fork && *deny_inheritance {
                return Err(ApiError::forbidden(
                    "the auth method of this token denies child tokens (deny-inheritance)",
                ));
            }
        }
        if !fork && let Some(t) = data.uid_tokens.get_mut(token) {
            t.valid = false;
        }
        let next = format!("u-{}", super::util::random_alphanumeric(24));
        data.uid_tokens.insert(
            next.clone(),
            super::state::UidToken {
                access_id: access_id.clone(),
                valid: true,
            },
        );
        drop(data);
        self.identity = Some(Identity {
            access_id,
            access_type: "universal_identity".to_owned(),
            namespace: None,
            service_account: None,
            pod_uid: None,
            subject: None,
        });
        Ok(json!({ "token": next }))
    }

    fn validate_token(&mut self, req: ValidateTokenRequest) -> ApiResult<Value> {
        let session = self.session(&req.token)?;
        let now = SystemTime::now();
        let valid = session.expires_at > now;
        self.identity = Some(session.identity);
        Ok(json!({
            "is_valid": valid,
            "expiration": rfc3339(session.expires_at),
            "ttl": secs_until(session.expires_at, now),
            "reason": if valid { "" } else { "token expired" },
        }))
    }

    /// The session of an issued token (expired or not); 401 for missing or unknown tokens.
    fn session(&self, token: &Option<String>) -> ApiResult<Session> {
        let token = non_empty(token).ok_or_else(|| ApiError::unauthorized("missing token"))?;
        self.state
            .lock()
            .sessions
            .get(token)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("invalid token"))
    }

    /// Resolves the token to its identity, or 401.
    fn authenticate(&mut self, token: &Option<String>) -> ApiResult<Identity> {
        let session = self.session(token)?;
        if session.expires_at <= SystemTime::now() {
            self.state.lock().expired_token_presentations += 1;
            return Err(ApiError::unauthorized("token expired"));
        }
        self.identity = Some(session.identity.clone());
        Ok(session.identity)
    }

    /// Authorizes, looks up every name and runs `f` on the items (in `names` order) under the
    /// state lock: 401 if any name is unreadable (before revealing whether anything exists),
    /// then 404 if any is missing.
    fn with_items<R>(
        &mut self,
        token: &Option<String>,
        names: &[&str],
        f: impl FnOnce(&[&Item]) -> ApiResult<R>,
    ) -> ApiResult<R> {
        let identity = self.authenticate(token)?;
        let data = self.state.lock();
        let normalized: Vec<String> = names.iter().map(|n| normalize_name(n)).collect();
        if let Some(denied) = normalized.iter().find(|n| !data.can_read(&identity, n)) {
            return Err(ApiError::unauthorized(data.read_denial(&identity, denied)));
        }
        let items = normalized
            .iter()
            .map(|n| {
                data.items
                    .get(&data.item_key(&identity.access_id, n))
                    .ok_or_else(|| ApiError::not_found(format!("item {n} not found")))
            })
            .collect::<ApiResult<Vec<&Item>>>()?;
        f(&items)
    }

    fn with_item<R>(
        &mut self,
        token: &Option<String>,
        name: &str,
        f: impl FnOnce(&Item) -> ApiResult<R>,
    ) -> ApiResult<R> {
        self.with_items(token, &[name], |items| match items {
            [item] => f(item),
            _ => Err(ApiError::not_found(format!(
                "item {} not found",
                normalize_name(name)
            ))),
        })
    }

    fn describe_item(&mut self, req: DescribeItemRequest) -> ApiResult<Value> {
        let name = required(&req.name, "name")?;
        let show_versions = req.show_versions == Some(true);
        let answer = self.with_item(&req.token, name, |item| {
            Ok(describe(name, item, show_versions))
        });
        match answer {
            // Some gateways answer a missing item with 200 and no item at all.
            Err(e)
                if matches!(e.kind, ErrorKind::NotFound)
                    && self.state.lock().describe_missing_as_empty =>
            {
                Ok(json!({}))
            }
            other => other,
        }
    }

    /// A wrong item type for the command is a 400: the request cannot succeed as sent.
    fn expect_type(name: &str, item: &Item, expected: ItemType) -> ApiResult<()> {
        let actual = item.item_type();
        if actual == expected {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "item {} is a {}, not a {}",
                normalize_name(name),
                actual.as_str(),
                expected.as_str()
            )))
        }
    }

    fn version_value<'i>(name: &str, item: &'i Item, version: u32) -> ApiResult<&'i StoredValue> {
        item.version(version).map(|v| &v.value).ok_or_else(|| {
            ApiError::not_found(format!(
                "item {} has no version {version} (last version is {})",
                normalize_name(name),
                item.last_version()
            ))
        })
    }

    fn get_secret_value(&mut self, req: GetSecretValueRequest) -> ApiResult<Value> {
        let names: Vec<&str> = req
            .names
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect();
        if names.is_empty() {
            return Err(ApiError::bad_request("names is required"));
        }
        if names.iter().any(|n| n.is_empty()) {
            return Err(ApiError::bad_request("names must not contain empty names"));
        }
        let version = requested_version(req.version)?;
        self.with_items(&req.token, &names, |items| {
            let mut out = Map::new();
            for (name, item) in names.iter().zip(items) {
                Self::expect_type(name, item, ItemType::StaticSecret)?;
                if let StoredValue::Static(value) = Self::version_value(name, item, version)? {
                    // Keyed by the name as sent, which is what clients look up.
                    out.insert((*name).to_owned(), Value::String(value.clone()));
                }
            }
            Ok(Value::Object(out))
        })
    }

    fn get_rotated_secret_value(&mut self, req: GetRotatedSecretValueRequest) -> ApiResult<Value> {
        let name = required(&req.names, "names")?;
        let version = requested_version(req.version)?;
        self.with_item(&req.token, name, |item| {
            Self::expect_type(name, item, ItemType::RotatedSecret)?;
            match Self::version_value(name, item, version)? {
                StoredValue::Rotated(value) => Ok(json!({ "value": value })),
                _ => Err(ApiError::bad_request("item is not a rotated secret")),
            }
        })
    }

    fn get_certificate_value(&mut self, req: GetCertificateValueRequest) -> ApiResult<Value> {
        let name = required(&req.name, "name")?;
        let version = requested_version(req.version)?;
        self.with_item(&req.token, name, |item| {
            Self::expect_type(name, item, ItemType::Certificate)?;
            match Self::version_value(name, item, version)? {
                StoredValue::Certificate {
                    certificate_pem,
                    private_key_pem,
                } => {
                    let mut out = json!({ "certificate_pem": certificate_pem });
                    if let Some(key) = private_key_pem {
                        out["private_key_pem"] = Value::String(key.clone());
                    }
                    Ok(out)
                }
                _ => Err(ApiError::bad_request("item is not a certificate")),
            }
        })
    }

    fn get_dynamic_secret_value(&mut self, req: GetDynamicSecretValueRequest) -> ApiResult<Value> {
        let name = required(&req.name, "name")?;
        self.with_item(&req.token, name, |item| {
            Self::expect_type(name, item, ItemType::DynamicSecret)?;
            match &item.body {
                ItemBody::Dynamic { template, ttl } => Ok(fresh_dynamic_value(template, *ttl)),
                _ => Err(ApiError::bad_request("item is not a dynamic secret")),
            }
        })
    }
}

impl Call<'_> {
    fn get_pki_certificate(&mut self, req: GetPkiCertificateRequest) -> ApiResult<Value> {
        let name = required(&req.cert_issuer_name, "cert-issuer-name")?;
        let csr_b64 = required(&req.csr_data_base64, "csr-data-base64")?;
        let requested_ttl = match req.ttl.as_deref() {
            None | Some("") => None,
            Some(t) => Some(
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| ApiError::bad_request("ttl must be a number of seconds"))?,
            ),
        };
        self.with_item(&req.token, name, |item| {
            Self::expect_type(name, item, ItemType::PkiCertIssuer)?;
            let ItemBody::PkiIssuer {
                ca_cert_pem,
                ca_key_pem,
                max_ttl,
            } = &item.body
            else {
                return Err(ApiError::bad_request(
                    "item is not a PKI certificate issuer",
                ));
            };
            let csr = STANDARD
                .decode(csr_b64.trim())
                .ok()
                .and_then(|der_or_pem| String::from_utf8(der_or_pem).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("csr-data-base64 is not base64 of a PEM CSR")
                })?;
            // Like Akeyless, a ttl beyond the issuer's max is refused, not shortened.
            let ttl = match requested_ttl.map(std::time::Duration::from_secs) {
                None => *max_ttl,
                Some(t) if t > *max_ttl => {
                    return Err(ApiError::bad_request(format!(
                        "requested ttl {}s exceeds the max ttl {}s of issuer {}",
                        t.as_secs(),
                        max_ttl.as_secs(),
                        normalize_name(name)
                    )));
                }
                Some(t) => t,
            };
            let cert = super::pki::sign_csr(ca_cert_pem, ca_key_pem, &csr, ttl)
                .map_err(ApiError::bad_request)?;
            Ok(json!({
                "data": cert,
                "parent_cert": ca_cert_pem,
                "path": normalize_name(name),
                "cert_display_id": random_hex(8),
            }))
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct GetPkiCertificateRequest {
    cert_issuer_name: Option<String>,
    csr_data_base64: Option<String>,
    /// Seconds, as a string in Akeyless's schema.
    ttl: Option<String>,
    token: Option<String>,
}

/// The `Item` object of /describe-item.
fn describe(name: &str, item: &Item, show_versions: bool) -> Value {
    let item_type = item.item_type();
    let mut out = json!({
        "item_name": normalize_name(name),
        "item_id": item.id,
        "display_id": format!("emu-{}", item.id),
        "item_type": item_type.as_str(),
        "item_state": "Enabled",
        "is_enabled": true,
        "last_version": item.last_version(),
        "item_tags": [],
        "creation_date": rfc3339(item.created),
        "modification_date": rfc3339(item.modified),
        "with_customer_fragment": false,
    });
    if item_type == ItemType::StaticSecret {
        out["item_sub_type"] = json!("generic");
    }
    if show_versions {
        let versions: Vec<Value> = match &item.body {
            ItemBody::Versioned(versions) => versions
                .iter()
                .zip(1u32..)
                .map(|(v, n)| {
                    json!({
                        "version": n,
                        "item_version_state": "Enabled",
                        "creation_date": rfc3339(v.created),
                        "modification_date": rfc3339(v.created),
                        "with_customer_fragment": false,
                    })
                })
                .collect(),
            ItemBody::Dynamic { .. } | ItemBody::PkiIssuer { .. } => Vec::new(),
        };
        out["item_versions"] = Value::Array(versions);
    }
    out
}

/// How `k8s` auth checks a pod token.
enum TokenVerifier<'a> {
    /// Self-contained mode: a token the emulator minted, checked with its key.
    Key(&'a JwtKey),
    /// Cluster mode: the outcome of the real TokenReview (`None`: it did not run).
    Review(Option<ReviewOutcome>),
}

/// The pod JWT of a `k8s` auth request (sent base64 StdEncoding).
fn decode_k8s_token(req: &AuthRequest) -> Result<String, &'static str> {
    let encoded =
        non_empty(&req.k8s_service_account_token).ok_or("k8s-service-account-token is required")?;
    // Akeyless clients send base64(JWT); a raw JWT ('.' is not in the alphabet) fails here.
    STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(
            "k8s-service-account-token must be the base64 (StdEncoding) encoding of the \
             service account JWT",
        )
}

/// Checks the submitted credentials against the access id's auth method. `Err` is the denial
/// reason, which must never quote the credentials.
fn login(
    verifier: TokenVerifier<'_>,
    access_id: &str,
    method: Option<AuthMethod>,
    req: &AuthRequest,
    now: SystemTime,
) -> Result<Identity, String> {
    let method = method.ok_or("auth method not found")?;
    let requested_type = match req.access_type.as_deref() {
        None | Some("" | "api_key") => "access_key",
        Some(other) => other,
    };
    if method.access_type() != requested_type {
        return Err("access type does not match the auth method".into());
    }
    match method {
        AuthMethod::AccessKey { access_key } => {
            // Plain comparison is fine for an emulator.
            if req.access_key.as_deref() != Some(access_key.as_str()) {
                return Err("invalid access key".into());
            }
            Ok(Identity::access_key(access_id))
        }
        AuthMethod::K8s {
            config_name,
            bound_namespaces,
            bound_service_accounts,
            audience,
        } => {
            if req.k8s_auth_config_name.as_deref() != Some(config_name.as_str()) {
                return Err("k8s auth config name does not match the auth method".into());
            }
            let jwt = decode_k8s_token(req)?;
            let subject = match verifier {
                TokenVerifier::Key(key) => {
                    let claims = verify_jwt(key, &jwt, now)?;
                    if let Some(audience) = &audience
                        && !has_audience(&claims, audience)
                    {
                        return Err("service account token audience is not accepted".into());
                    }
                    k8s_subject(&claims).ok_or("token carries no service account identity")?
                }
                TokenVerifier::Review(Some(outcome)) => outcome?,
                TokenVerifier::Review(None) => {
                    return Err("token review did not run".into());
                }
            };
            if !bound(&bound_namespaces, &subject.namespace) {
                return Err(format!("namespace {} is not bound", subject.namespace));
            }
            if !bound(&bound_service_accounts, &subject.service_account) {
                return Err(format!(
                    "service account {} is not bound",
                    subject.service_account
                ));
            }
            Ok(Identity {
                access_id: access_id.to_owned(),
                access_type: "k8s".to_owned(),
                namespace: Some(subject.namespace),
                service_account: Some(subject.service_account),
                pod_uid: subject.pod_uid,
                subject: subject.subject,
            })
        }
        AuthMethod::AzureAd { bound_object_ids } => {
            let cloud_id = non_empty(&req.cloud_id).ok_or("cloud-id is required")?;
            let TokenVerifier::Key(key) = verifier else {
                return Err("azure_ad auth cannot use a token review".into());
            };
            let token = STANDARD
                .decode(cloud_id)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or("cloud-id must be base64 of an Azure access token")?;
            let claims = verify_jwt(key, &token, now)?;
            if !has_audience(&claims, super::azure::ARM_AUDIENCE) {
                return Err("the Azure token is not for Azure Resource Manager".into());
            }
            let oid = claims
                .get("oid")
                .and_then(Value::as_str)
                .ok_or("the Azure token has no oid claim")?;
            if !bound(&bound_object_ids, oid) {
                return Err("object id is not bound".into());
            }
            Ok(Identity {
                access_id: access_id.to_owned(),
                access_type: "azure_ad".to_owned(),
                namespace: None,
                service_account: None,
                pod_uid: None,
                subject: Some(oid.to_owned()),
            })
        }
        AuthMethod::Gcp {
            audience,
            bound_service_accounts,
        } => {
            let cloud_id = non_empty(&req.cloud_id).ok_or("cloud-id is required")?;
            let TokenVerifier::Key(key) = verifier else {
                return Err("gcp auth cannot use a token review".into());
            };
            let token = STANDARD
                .decode(cloud_id)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or("cloud-id must be base64 of a Google ID token")?;
            let claims = verify_jwt(key, &token, now)?;
            if claims.get("iss").and_then(Value::as_str) != Some("https://accounts.google.com") {
                return Err("the ID token is not issued by Google".into());
            }
            if !has_audience(&claims, &audience) {
                return Err("the ID token's audience is not accepted".into());
            }
            let email = claims
                .get("email")
                .and_then(Value::as_str)
                .ok_or("the ID token has no email claim")?;
            if !bound(&bound_service_accounts, email) {
                return Err("service account is not bound".into());
            }
            Ok(Identity {
                access_id: access_id.to_owned(),
                access_type: "gcp".to_owned(),
                namespace: None,
                service_account: None,
                pod_uid: None,
                subject: Some(email.to_owned()),
            })
        }
        AuthMethod::UniversalIdentity { .. } | AuthMethod::AwsIam { .. } => {
            Err("handled before the generic login".into())
        }
        AuthMethod::Jwt { bound_subjects } => {
            let jwt = non_empty(&req.jwt).ok_or("jwt is required")?;
            let TokenVerifier::Key(key) = verifier else {
                return Err("jwt auth cannot use a token review".into());
            };
            let claims = verify_jwt(key, jwt, now)?;
            let sub = claims
                .get("sub")
                .and_then(Value::as_str)
                .ok_or("JWT has no sub claim")?;
            if !bound(&bound_subjects, sub) {
                return Err("sub claim mismatch".into());
            }
            Ok(Identity {
                access_id: access_id.to_owned(),
                access_type: "jwt".to_owned(),
                namespace: None,
                service_account: None,
                pod_uid: None,
                subject: Some(sub.to_owned()),
            })
        }
    }
}

fn check_access_type(req: &AuthRequest, expected: &str) -> Result<(), String> {
    if req.access_type.as_deref() != Some(expected) {
        return Err("access type does not match the auth method".into());
    }
    Ok(())
}

/// `aws_iam`: the signed GetCallerIdentity in `cloud-id` must verify and its signer be bound.
fn aws_login(
    state: &EmulatorState,
    access_id: &str,
    bound_arns: &[String],
    req: &AuthRequest,
    now: SystemTime,
) -> Result<Identity, String> {
    check_access_type(req, "aws_iam")?;
    let cloud_id = non_empty(&req.cloud_id).ok_or("cloud-id is required")?;
    let arn = super::cloud::verify_aws_cloud_id(state, cloud_id, now)?;
    if !bound(bound_arns, &arn) {
        return Err("the signer's ARN is not bound".into());
    }
    Ok(Identity {
        access_id: access_id.to_owned(),
        access_type: "aws_iam".to_owned(),
        namespace: None,
        service_account: None,
        pod_uid: None,
        subject: Some(arn),
    })
}

fn verify_jwt(key: &JwtKey, jwt: &str, now: SystemTime) -> Result<Map<String, Value>, String> {
    key.verify(jwt, now).map_err(|e| match e {
        JwtError::Expired => "token expired".to_owned(),
        other => format!("invalid token: {other}"),
    })
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Empty bound list = anything goes.
fn bound(allowed: &[String], value: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_errors_are_redacted() {
        assert_eq!(
            redact_serde_error(r#"invalid type: string "hunter2", expected a sequence"#),
            "invalid type: string, expected a sequence"
        );
        assert_eq!(
            redact_serde_error("invalid type: integer `42`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            redact_serde_error("invalid value: integer `-5000000000`, expected i32"),
            "invalid value: integer, expected i32"
        );
        assert_eq!(redact_serde_error("missing field `x`"), "missing field `x`");
    }

    #[test]
    fn decode_ignores_unknown_fields_and_rejects_wrong_types() {
        let body = json!({"names": ["/a"], "json": true, "extra": {"x": 1}});
        let req: GetSecretValueRequest = decode(&body).unwrap();
        assert_eq!(req.names.unwrap(), vec!["/a"]);

        let body = json!({"names": "/secret-name"});
        let Err(err) = decode::<GetSecretValueRequest>(&body) else {
            panic!("a string `names` must be rejected")
        };
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(!err.message.contains("secret-name"), "{}", err.message);

        let body = json!({"names": ["/a"], "ignore-cache": true});
        assert!(decode::<GetSecretValueRequest>(&body).is_err());
    }

    #[test]
    fn render_formats_like_akeyless() {
        let (status, message) =
            ApiError::not_found("item /x not found").render(Some(Command::DescribeItem));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            message,
            "failed to obtain item description: Status 404 Not Found, Error: NotFound. Message: item /x not found"
        );
    }
}
