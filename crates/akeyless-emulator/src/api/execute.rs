//! Running one command: field check, `uid-token` sessions, decoding, then the command.

use std::time::SystemTime;

use serde_json::Value;

use super::call::Call;
use super::error::{ApiError, ApiResult, Command};
use super::fields::check_fields;
use super::login::ReviewOutcome;
use super::request::decode;
use crate::state::{EmulatorState, Identity, Session};
use crate::util::{add_saturating, random_hex};

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
