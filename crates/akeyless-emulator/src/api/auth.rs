//! The token commands: `/auth`, `/uid-rotate-token` and `/validate-token`.

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Value, json};

use super::call::Call;
use super::error::{ApiError, ApiResult};
use super::login::{
    AuthRequest, ReviewOutcome, TokenVerifier, aws_login, check_access_type, login,
};
use super::request::{non_empty, required};
use crate::state::{AuthMethod, Identity, Session, UidToken};
use crate::util::{
    add_saturating, random_alphanumeric, random_hex, rfc3339, secs_until, unix_secs,
};

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct UidRotateTokenRequest {
    uid_token: Option<String>,
    fork: Option<bool>,
    #[allow(dead_code)] // type-checked only
    with_manual_ack: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct ValidateTokenRequest {
    token: Option<String>,
}

impl Call<'_> {
    pub(super) fn auth(
        &mut self,
        req: AuthRequest,
        review: Option<ReviewOutcome>,
    ) -> ApiResult<Value> {
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
    pub(super) fn uid_rotate_token(&mut self, req: UidRotateTokenRequest) -> ApiResult<Value> {
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
        let next = format!("u-{}", random_alphanumeric(24));
        data.uid_tokens.insert(
            next.clone(),
            UidToken {
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

    pub(super) fn validate_token(&mut self, req: ValidateTokenRequest) -> ApiResult<Value> {
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
}
