//! Checking `/auth` credentials against the access id's auth method, one access type at a time.
//! Denial reasons never quote the credentials.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::request::{decode, non_empty};
use crate::jwt::{JwtError, JwtKey, K8sSubject, has_audience, k8s_subject};
use crate::state::{AuthMethod, EmulatorState, Identity};
use crate::tokenreview::K8sAuthConfig;

/// The body of `/auth`: the credentials of every access type.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct AuthRequest {
    pub(super) access_id: Option<String>,
    pub(super) access_type: Option<String>,
    pub(super) access_key: Option<String>,
    pub(super) k8s_auth_config_name: Option<String>,
    /// base64 (StdEncoding) of the service-account JWT.
    pub(super) k8s_service_account_token: Option<String>,
    pub(super) jwt: Option<String>,
    pub(super) cloud_id: Option<String>,
    /// universal_identity, newer schema.
    pub(super) uid_token: Option<String>,
    /// universal_identity, v4.1 schema.
    #[serde(rename = "uid_token")]
    pub(super) uid_token_v41: Option<String>,
    #[allow(dead_code)]
    // decoded only so a wrong JSON type is rejected; the emulator is the gateway
    pub(super) gateway_url: Option<String>,
}

/// The outcome of a real TokenReview of a `k8s` `/auth` request's token, run (asynchronously)
/// before the command because the command itself runs under the state lock.
pub(crate) type ReviewOutcome = Result<K8sSubject, String>;

/// What a TokenReview-backed `/auth` needs: the config name, pod token and audience to review,
/// or `None` when `body` is not such a request (the command then reports any problem itself).
pub(crate) fn review_request(
    state: &EmulatorState,
    body: &Value,
) -> Option<(K8sAuthConfig, String, Option<String>)> {
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

/// How `k8s` auth checks a pod token.
pub(super) enum TokenVerifier<'a> {
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
pub(super) fn login(
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
    let login = Login {
        verifier,
        access_id,
        req,
        now,
    };
    match method {
        AuthMethod::AccessKey { access_key } => login.access_key(&access_key),
        AuthMethod::K8s {
            config_name,
            bound_namespaces,
            bound_service_accounts,
            audience,
        } => login.k8s(
            &config_name,
            &bound_namespaces,
            &bound_service_accounts,
            audience.as_deref(),
        ),
        AuthMethod::AzureAd { bound_object_ids } => login.azure_ad(&bound_object_ids),
        AuthMethod::Gcp {
            audience,
            bound_service_accounts,
        } => login.gcp(&audience, &bound_service_accounts),
        AuthMethod::UniversalIdentity { .. } | AuthMethod::AwsIam { .. } => {
            Err("handled before the generic login".into())
        }
        AuthMethod::Jwt { bound_subjects } => login.jwt(&bound_subjects),
    }
}

/// One `/auth` request's credentials, checked by the method of its access type.
struct Login<'a> {
    verifier: TokenVerifier<'a>,
    access_id: &'a str,
    req: &'a AuthRequest,
    now: SystemTime,
}

impl Login<'_> {
    fn access_key(self, access_key: &str) -> Result<Identity, String> {
        // Plain comparison is fine for an emulator.
        if self.req.access_key.as_deref() != Some(access_key) {
            return Err("invalid access key".into());
        }
        Ok(Identity::access_key(self.access_id))
    }

    fn k8s(
        self,
        config_name: &str,
        bound_namespaces: &[String],
        bound_service_accounts: &[String],
        audience: Option<&str>,
    ) -> Result<Identity, String> {
        if self.req.k8s_auth_config_name.as_deref() != Some(config_name) {
            return Err("k8s auth config name does not match the auth method".into());
        }
        let jwt = decode_k8s_token(self.req)?;
        let subject = match self.verifier {
            TokenVerifier::Key(key) => {
                let claims = verify_jwt(key, &jwt, self.now)?;
                if let Some(audience) = audience
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
        if !bound(bound_namespaces, &subject.namespace) {
            return Err(format!("namespace {} is not bound", subject.namespace));
        }
        if !bound(bound_service_accounts, &subject.service_account) {
            return Err(format!(
                "service account {} is not bound",
                subject.service_account
            ));
        }
        Ok(Identity {
            access_id: self.access_id.to_owned(),
            access_type: "k8s".to_owned(),
            namespace: Some(subject.namespace),
            service_account: Some(subject.service_account),
            pod_uid: subject.pod_uid,
            subject: subject.subject,
        })
    }

    fn azure_ad(self, bound_object_ids: &[String]) -> Result<Identity, String> {
        let cloud_id = non_empty(&self.req.cloud_id).ok_or("cloud-id is required")?;
        let TokenVerifier::Key(key) = self.verifier else {
            return Err("azure_ad auth cannot use a token review".into());
        };
        let token = STANDARD
            .decode(cloud_id)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("cloud-id must be base64 of an Azure access token")?;
        let claims = verify_jwt(key, &token, self.now)?;
        if !has_audience(&claims, crate::azure::ARM_AUDIENCE) {
            return Err("the Azure token is not for Azure Resource Manager".into());
        }
        let oid = claims
            .get("oid")
            .and_then(Value::as_str)
            .ok_or("the Azure token has no oid claim")?;
        if !bound(bound_object_ids, oid) {
            return Err("object id is not bound".into());
        }
        Ok(Identity {
            access_id: self.access_id.to_owned(),
            access_type: "azure_ad".to_owned(),
            namespace: None,
            service_account: None,
            pod_uid: None,
            subject: Some(oid.to_owned()),
        })
    }

    fn gcp(self, audience: &str, bound_service_accounts: &[String]) -> Result<Identity, String> {
        let cloud_id = non_empty(&self.req.cloud_id).ok_or("cloud-id is required")?;
        let TokenVerifier::Key(key) = self.verifier else {
            return Err("gcp auth cannot use a token review".into());
        };
        let token = STANDARD
            .decode(cloud_id)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("cloud-id must be base64 of a Google ID token")?;
        let claims = verify_jwt(key, &token, self.now)?;
        if claims.get("iss").and_then(Value::as_str) != Some("https://accounts.google.com") {
            return Err("the ID token is not issued by Google".into());
        }
        if !has_audience(&claims, audience) {
            return Err("the ID token's audience is not accepted".into());
        }
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .ok_or("the ID token has no email claim")?;
        if !bound(bound_service_accounts, email) {
            return Err("service account is not bound".into());
        }
        Ok(Identity {
            access_id: self.access_id.to_owned(),
            access_type: "gcp".to_owned(),
            namespace: None,
            service_account: None,
            pod_uid: None,
            subject: Some(email.to_owned()),
        })
    }

    fn jwt(self, bound_subjects: &[String]) -> Result<Identity, String> {
        let jwt = non_empty(&self.req.jwt).ok_or("jwt is required")?;
        let TokenVerifier::Key(key) = self.verifier else {
            return Err("jwt auth cannot use a token review".into());
        };
        let claims = verify_jwt(key, jwt, self.now)?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or("JWT has no sub claim")?;
        if !bound(bound_subjects, sub) {
            return Err("sub claim mismatch".into());
        }
        Ok(Identity {
            access_id: self.access_id.to_owned(),
            access_type: "jwt".to_owned(),
            namespace: None,
            service_account: None,
            pod_uid: None,
            subject: Some(sub.to_owned()),
        })
    }
}

pub(super) fn check_access_type(req: &AuthRequest, expected: &str) -> Result<(), String> {
    if req.access_type.as_deref() != Some(expected) {
        return Err("access type does not match the auth method".into());
    }
    Ok(())
}

/// `aws_iam`: the signed GetCallerIdentity in `cloud-id` must verify and its signer be bound.
pub(super) fn aws_login(
    state: &EmulatorState,
    access_id: &str,
    bound_arns: &[String],
    req: &AuthRequest,
    now: SystemTime,
) -> Result<Identity, String> {
    check_access_type(req, "aws_iam")?;
    let cloud_id = non_empty(&req.cloud_id).ok_or("cloud-id is required")?;
    let arn = crate::cloud::verify_aws_cloud_id(state, cloud_id, now)?;
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

/// Empty bound list = anything goes.
fn bound(allowed: &[String], value: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a == value)
}
