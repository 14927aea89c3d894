//! Google for Akeyless's `gcp` auth: `cloud-id` = base64 of a Google-signed ID token for the
//! audience the Akeyless auth method expects (`akeyless.io` by default).
//!
//! Two ways to get that token:
//!
//! - **As the pod** ([`pod_cloud_id`], the default whenever the SPC names a Google service
//!   account and a workload identity provider): the pod's service-account token is exchanged at
//!   Google STS for a federated access token of the pod's principal (workload identity
//!   federation, or GKE Workload Identity), which then asks IAM Credentials `generateIdToken`
//!   for an ID token of the Google service account the pod may impersonate.
//! - **As the node** ([`cloud_id`]): the GCE/GKE metadata server answers as the node's (or, on
//!   GKE with Workload Identity, the provider DaemonSet's) Google service account: the
//!   provider's own identity, not the mounting pod's. So it is used only when the provider was
//!   started with `--gcp-metadata-identity`; every pod whose SPC says `gcp` without workload
//!   identity settings then authenticates as that account.

use base64::Engine;
use serde::Deserialize;

use crate::secret::{ExposeSecret, SecretString};
use crate::spec::GcpWorkloadIdentity;

/// The metadata server's ID-token endpoint of the instance's default service account
/// (asked with `audience` and `format=full`, header `Metadata-Flavor: Google`).
pub(crate) const METADATA_IDENTITY_PATH: &str =
    "/computeMetadata/v1/instance/service-accounts/default/identity";

/// Where the metadata server answers inside GCP.
pub(crate) const DEFAULT_METADATA_URL: &str = "http://metadata.google.internal";
/// Google's Security Token Service.
pub(crate) const DEFAULT_STS_URL: &str = "https://sts.googleapis.com";
/// Google's IAM Service Account Credentials API.
pub(crate) const DEFAULT_IAM_CREDENTIALS_URL: &str = "https://iamcredentials.googleapis.com";
/// RFC 8693 token exchange.
pub(crate) const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The pod's token is a JWT.
pub(crate) const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// STS issues an OAuth access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The scope IAM Credentials needs.
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Where the per-pod exchange talks to Google (flags, so tests can point them elsewhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GoogleEndpoints {
    pub sts: String,
    pub iam_credentials: String,
}

impl Default for GoogleEndpoints {
    fn default() -> Self {
        GoogleEndpoints {
            sts: DEFAULT_STS_URL.to_string(),
            iam_credentials: DEFAULT_IAM_CREDENTIALS_URL.to_string(),
        }
    }
}

/// Why the per-pod exchange failed, in words a user can act on (never a token).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkloadIdentityError {
    #[error(
        "Google STS at {url} refused the pod's token for workload identity provider {provider:?} ({status}: {error}); check that the provider trusts this cluster's service-account issuer and accepts the pod token's audience {audience:?} (set akeylessTokenAudience and the CSIDriver tokenRequests to the audience it accepts)"
    )]
    StsRefused {
        url: String,
        provider: String,
        audience: String,
        status: u16,
        error: String,
    },
    #[error(
        "Google IAM Credentials at {url} refused an ID token of service account {service_account} ({status}: {error}); grant this pod's principal (its namespace and Kubernetes service account in the workload identity pool) roles/iam.workloadIdentityUser on that Google service account, or check akeylessGCPServiceAccount"
    )]
    ImpersonationRefused {
        url: String,
        service_account: String,
        status: u16,
        error: String,
    },
    #[error("cannot reach Google {what} at {url}: {detail}")]
    Unreachable {
        what: &'static str,
        url: String,
        detail: String,
    },
    #[error("unexpected answer from Google {what} at {url}: {detail}")]
    BadResponse {
        what: &'static str,
        url: String,
        detail: &'static str,
    },
}

/// The form body of the STS token exchange (it holds the pod's token, so it is secret).
pub(crate) fn sts_request_body(provider: &str, pod_token: &SecretString) -> SecretString {
    SecretString::from(
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", TOKEN_EXCHANGE_GRANT)
            .append_pair("audience", provider)
            .append_pair("scope", CLOUD_PLATFORM_SCOPE)
            .append_pair("requested_token_type", ACCESS_TOKEN_TYPE)
            .append_pair("subject_token_type", JWT_TOKEN_TYPE)
            .append_pair("subject_token", pod_token.expose_secret())
            .finish(),
    )
}

#[derive(Deserialize)]
struct StsResponse {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
}

/// The federated access token of an STS answer (`Err`: what is wrong, never the content).
pub(crate) fn parse_sts_response(body: &[u8]) -> Result<SecretString, &'static str> {
    let answer: StsResponse =
        serde_json::from_slice(body).map_err(|_| "no access_token in the answer")?;
    if answer.access_token.expose_secret().is_empty() {
        return Err("the access_token is empty");
    }
    match answer.token_type.as_deref() {
        None => Ok(answer.access_token),
        Some(t) if t.eq_ignore_ascii_case("bearer") => Ok(answer.access_token),
        Some(_) => Err("the token_type is not Bearer"),
    }
}

/// `{base}/v1/projects/-/serviceAccounts/{email}:generateIdToken`.
pub(crate) fn generate_id_token_url(
    base: &str,
    service_account: &str,
) -> Result<url::Url, &'static str> {
    let mut url = url::Url::parse(base.trim_end_matches('/')).map_err(|_| "not a URL")?;
    url.path_segments_mut()
        .map_err(|_| "not a base URL")?
        .pop_if_empty()
        .extend(["v1", "projects", "-", "serviceAccounts"])
        .push(&format!("{service_account}:generateIdToken"));
    Ok(url)
}

/// The JSON body of `generateIdToken`.
pub(crate) fn generate_id_token_body(audience: &str) -> serde_json::Value {
    serde_json::json!({"audience": audience, "includeEmail": true})
}

#[derive(Deserialize)]
struct IdTokenResponse {
    token: SecretString,
}

/// The ID token of a `generateIdToken` answer; it must look like a JWT.
pub(crate) fn parse_id_token_response(body: &[u8]) -> Result<SecretString, &'static str> {
    let answer: IdTokenResponse =
        serde_json::from_slice(body).map_err(|_| "no token in the answer")?;
    if answer.token.expose_secret().split('.').count() != 3 {
        return Err("the token is not a JWT");
    }
    Ok(answer.token)
}

/// A Google error body, scrubbed: STS answers `{"error": "invalid_grant", "error_description":
/// …}`, Google APIs `{"error": {"code", "message", "status"}}`.
pub(crate) fn google_error(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return "no error description".into();
    };
    let text = match json.get("error") {
        Some(serde_json::Value::String(code)) => format!(
            "{code} {}",
            json.get("error_description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        ),
        Some(serde_json::Value::Object(e)) => format!(
            "{} {}",
            e.get("status")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default(),
            e.get("message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        ),
        _ => return "no error description".into(),
    };
    let scrubbed = crate::akeyless::scrub(text.trim());
    if scrubbed.is_empty() {
        "no error description".into()
    } else {
        scrubbed
    }
}

/// As the pod: the pod's token → Google STS → federated access token → IAM Credentials
/// `generateIdToken` of the Google service account for `audience` → Akeyless's `cloud-id`.
pub(crate) async fn pod_cloud_id(
    http: &reqwest::Client,
    endpoints: &GoogleEndpoints,
    identity: &GcpWorkloadIdentity,
    token_audience: &str,
    audience: &str,
    pod_token: &SecretString,
) -> Result<SecretString, WorkloadIdentityError> {
    let access_token = sts_exchange(http, endpoints, identity, token_audience, pod_token).await?;
    let id_token = generate_id_token(http, endpoints, identity, audience, &access_token).await?;
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(id_token.expose_secret()),
    ))
}

/// Google STS: the pod's token for a federated access token.
async fn sts_exchange(
    http: &reqwest::Client,
    endpoints: &GoogleEndpoints,
    identity: &GcpWorkloadIdentity,
    token_audience: &str,
    pod_token: &SecretString,
) -> Result<SecretString, WorkloadIdentityError> {
    let sts_base = endpoints.sts.trim_end_matches('/').to_string();
    let response = http
        .post(format!("{sts_base}/v1/token"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(
            sts_request_body(&identity.provider, pod_token)
                .expose_secret()
                .to_string(),
        )
        .send()
        .await
        .map_err(unreachable("STS", &sts_base))?;
    let status = response.status().as_u16();
    let body =
        super::read_body(response)
            .await
            .map_err(|detail| WorkloadIdentityError::Unreachable {
                what: "STS",
                url: sts_base.clone(),
                detail,
            })?;
    if !(200..300).contains(&status) {
        return Err(WorkloadIdentityError::StsRefused {
            url: sts_base,
            provider: identity.provider.clone(),
            audience: token_audience.to_string(),
            status,
            error: google_error(&body),
        });
    }
    parse_sts_response(&body).map_err(|detail| WorkloadIdentityError::BadResponse {
        what: "STS",
        url: sts_base.clone(),
        detail,
    })
}

/// IAM Credentials `generateIdToken`: an ID token of the Google service account for `audience`,
/// with the federated access token.
async fn generate_id_token(
    http: &reqwest::Client,
    endpoints: &GoogleEndpoints,
    identity: &GcpWorkloadIdentity,
    audience: &str,
    access_token: &SecretString,
) -> Result<SecretString, WorkloadIdentityError> {
    let iam_base = endpoints.iam_credentials.trim_end_matches('/').to_string();
    let url = generate_id_token_url(&iam_base, &identity.service_account).map_err(|detail| {
        WorkloadIdentityError::BadResponse {
            what: "IAM Credentials",
            url: iam_base.clone(),
            detail,
        }
    })?;
    let response = http
        .post(url)
        .bearer_auth(access_token.expose_secret())
        .json(&generate_id_token_body(audience))
        .send()
        .await
        .map_err(unreachable("IAM Credentials", &iam_base))?;
    let status = response.status().as_u16();
    let body =
        super::read_body(response)
            .await
            .map_err(|detail| WorkloadIdentityError::Unreachable {
                what: "IAM Credentials",
                url: iam_base.clone(),
                detail,
            })?;
    if !(200..300).contains(&status) {
        return Err(WorkloadIdentityError::ImpersonationRefused {
            url: iam_base,
            service_account: identity.service_account.clone(),
            status,
            error: google_error(&body),
        });
    }
    parse_id_token_response(&body).map_err(|detail| WorkloadIdentityError::BadResponse {
        what: "IAM Credentials",
        url: iam_base,
        detail,
    })
}

/// A failed request to `url` (`what`: STS or IAM Credentials).
fn unreachable(
    what: &'static str,
    url: &str,
) -> impl FnOnce(reqwest::Error) -> WorkloadIdentityError {
    let url = url.to_string();
    move |e: reqwest::Error| WorkloadIdentityError::Unreachable {
        what,
        url,
        detail: e.without_url().to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    #[error(
        "the GCP metadata server at {url} refused an ID token for audience {audience:?} ({status}); check that the node (or the provider's Kubernetes service account under GKE Workload Identity) has a Google service account"
    )]
    Refused {
        url: String,
        audience: String,
        status: u16,
    },
    #[error("cannot reach the GCP metadata server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the GCP metadata server at {url} answered something that is not an ID token")]
    BadResponse { url: String },
}

/// Fetches an ID token for `audience` from the metadata server at `base_url` and returns
/// Akeyless's `cloud-id`.
pub async fn cloud_id(
    http: &reqwest::Client,
    base_url: &str,
    audience: &str,
) -> Result<SecretString, GcpError> {
    let base = base_url.trim_end_matches('/');
    let mut url = url::Url::parse(&format!("{base}{METADATA_IDENTITY_PATH}")).map_err(|e| {
        GcpError::Unreachable {
            url: base.to_string(),
            detail: e.to_string(),
        }
    })?;
    url.query_pairs_mut()
        .append_pair("audience", audience)
        .append_pair("format", "full");
    let unreachable = |e: reqwest::Error| GcpError::Unreachable {
        url: base.to_string(),
        detail: e.without_url().to_string(),
    };
    let response = http
        .get(url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(GcpError::Refused {
            url: base.to_string(),
            audience: audience.to_string(),
            status,
        });
    }
    let body = super::read_body(response)
        .await
        .map_err(|detail| GcpError::Unreachable {
            url: base.to_string(),
            detail,
        })?;
    let token = SecretString::from(String::from_utf8_lossy(&body).trim().to_string());
    if token.expose_secret().split('.').count() != 3 {
        return Err(GcpError::BadResponse {
            url: base.to_string(),
        });
    }
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(token.expose_secret()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_request_is_an_rfc8693_exchange_of_the_pod_token() {
        let provider =
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k";
        let body = sts_request_body(provider, &SecretString::from("a.b.c".to_string()));
        let form: std::collections::BTreeMap<String, String> =
            url::form_urlencoded::parse(body.expose_secret().as_bytes())
                .into_owned()
                .collect();
        let field = |k: &str| form.get(k).map(String::as_str);
        assert_eq!(field("grant_type"), Some(TOKEN_EXCHANGE_GRANT));
        assert_eq!(field("audience"), Some(provider));
        assert_eq!(field("scope"), Some(CLOUD_PLATFORM_SCOPE));
        assert_eq!(field("requested_token_type"), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(field("subject_token_type"), Some(JWT_TOKEN_TYPE));
        assert_eq!(field("subject_token"), Some("a.b.c"));
        assert_eq!(form.len(), 6);
        assert!(!format!("{body:?}").contains("a.b.c"), "Debug redacts");
    }

    #[test]
    fn sts_responses() {
        let ok = br#"{"access_token":"ya29.abc","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#;
        assert_eq!(parse_sts_response(ok).unwrap().expose_secret(), "ya29.abc");
        assert!(parse_sts_response(br#"{"access_token":"x","token_type":"N_A"}"#).is_err());
        assert!(parse_sts_response(br#"{"access_token":""}"#).is_err());
        assert!(parse_sts_response(b"<html>").is_err());
    }

    #[test]
    fn generate_id_token_request() {
        let url = generate_id_token_url(
            "https://iamcredentials.googleapis.com/",
            "app@proj.iam.gserviceaccount.com",
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/app@proj.iam.gserviceaccount.com:generateIdToken"
        );
        // A base with a path keeps it; odd characters stay inside their segment.
        let url = generate_id_token_url("http://127.0.0.1:9/google", "a/b@c.d").unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/google/v1/projects/-/serviceAccounts/a%2Fb@c.d:generateIdToken"
        );
        assert_eq!(
            generate_id_token_body("akeyless.io"),
            serde_json::json!({"audience": "akeyless.io", "includeEmail": true})
        );
        assert_eq!(
            parse_id_token_response(br#"{"token":"h.p.s"}"#)
                .unwrap()
                .expose_secret(),
            "h.p.s"
        );
        assert!(parse_id_token_response(br#"{"token":"opaque"}"#).is_err());
        assert!(parse_id_token_response(br#"{"error":{}}"#).is_err());
    }

    #[test]
    fn google_errors_are_scrubbed() {
        let sts = br#"{"error":"invalid_grant","error_description":"The audience in ID Token does not match. eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlc2lnbmF0dXJl"}"#;
        let e = google_error(sts);
        assert!(e.starts_with("invalid_grant The audience"), "{e}");
        assert!(!e.contains("eyJ"), "{e}");
        let iam = br#"{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).","status":"PERMISSION_DENIED"}}"#;
        let e = google_error(iam);
        assert!(e.starts_with("PERMISSION_DENIED Permission"), "{e}");
        assert_eq!(google_error(b"nope"), "no error description");
        let refused = WorkloadIdentityError::ImpersonationRefused {
            url: "u".into(),
            service_account: "app@p.iam.gserviceaccount.com".into(),
            status: 403,
            error: e,
        };
        let text = refused.to_string();
        assert!(
            text.contains("app@p.iam.gserviceaccount.com")
                && text.contains("roles/iam.workloadIdentityUser"),
            "{text}"
        );
    }
}
