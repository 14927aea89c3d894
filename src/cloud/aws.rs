//! AWS IAM for Akeyless's `aws_iam` auth. Akeyless verifies an AWS identity by replaying a
//! SigV4-signed STS `GetCallerIdentity` request that the client builds and does **not** send:
//! `cloud-id` = base64 of `{"sts_request_method", "sts_request_url", "sts_request_body",
//! "sts_request_headers"}` (each value base64; the headers a JSON map of lists).
//!
//! The credentials that sign it are the pod's: its service-account token (EKS IRSA audience
//! `sts.amazonaws.com`) is exchanged at STS `AssumeRoleWithWebIdentity` for temporary credentials
//! of the SPC's role. Only when the provider was started with `--aws-provider-credentials` may an
//! SPC without a role sign with the provider's own credentials instead.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::sigv4;
use crate::secret::{ExposeSecret, SecretString};

/// The body of the signed request.
pub(crate) const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
pub(crate) const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// AWS credentials. `Debug` shows only the access key ID.
#[derive(Clone)]
pub(crate) struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    /// The provider's own credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// (optionally) `AWS_SESSION_TOKEN`.
    pub(crate) fn from_env() -> Result<AwsCredentials, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (Some(access_key_id), Some(secret)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(
                "--aws-provider-credentials needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the provider's environment"
                    .into(),
            );
        };
        Ok(AwsCredentials {
            access_key_id: access_key_id.trim().to_string(),
            secret_access_key: SecretString::from(secret.trim().to_string()),
            session_token: var("AWS_SESSION_TOKEN")
                .map(|t| SecretString::from(t.trim().to_string())),
        })
    }
}

/// The regional STS endpoint (`amazonaws.com.cn` in China), with a trailing slash.
pub(crate) fn sts_url(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}/")
}

/// `YYYYMMDD'T'HHMMSS'Z'` in UTC.
pub(crate) fn amz_date(t: SystemTime) -> String {
    crate::timefmt::rfc3339(t)
        .unwrap_or_default()
        .replace(['-', ':'], "")
}

/// Builds Akeyless's `cloud-id` for `credentials`: a signed, unsent `GetCallerIdentity`.
pub(crate) fn cloud_id(
    credentials: &AwsCredentials,
    region: &str,
    now: SystemTime,
) -> SecretString {
    let url = sts_url(region);
    let host = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let date = amz_date(now);
    let mut headers = vec![
        ("Content-Type".to_string(), FORM_CONTENT_TYPE.to_string()),
        ("Host".to_string(), host),
        ("X-Amz-Date".to_string(), date.clone()),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push((
            "X-Amz-Security-Token".to_string(),
            token.expose_secret().to_string(),
        ));
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
    let authorization = sigv4::authorization(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        &scope,
        &request,
    );
    // Go's http.Header shape (map[string][]string); Host travels in the URL, as Go sends it.
    let mut header_map: BTreeMap<String, Vec<String>> = headers
        .into_iter()
        .filter(|(name, _)| name != "Host")
        .map(|(name, value)| (name, vec![value]))
        .collect();
    header_map.insert("Authorization".into(), vec![authorization]);
    let headers_json = serde_json::to_string(&header_map).unwrap_or_default();
    let document = serde_json::json!({
        "sts_request_method": "POST",
        "sts_request_url": STANDARD.encode(&url),
        "sts_request_body": STANDARD.encode(GET_CALLER_IDENTITY_BODY),
        "sts_request_headers": STANDARD.encode(headers_json),
    });
    SecretString::from(STANDARD.encode(document.to_string()))
}

/// Why getting AWS credentials for the pod failed (never quotes a token or key).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AwsError {
    #[error(
        "AWS STS at {endpoint} refused AssumeRoleWithWebIdentity for role {role_arn} ({status} {code}: {message}); check the role's trust policy: it must trust this cluster's OIDC provider and the pod's service account (sub system:serviceaccount:<namespace>:<name>) and audience"
    )]
    Refused {
        endpoint: String,
        role_arn: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach AWS STS at {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error("unexpected answer from AWS STS at {endpoint}: {detail}")]
    BadResponse { endpoint: String, detail: String },
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let (_, after_open) = xml.split_once(&open)?;
    let (text, _) = after_open.split_once(&close)?;
    Some(text.trim())
}

/// A `RoleSessionName` (`[\w+=,.@-]{2,64}`) naming the pod.
pub(crate) fn session_name(namespace: Option<&str>, pod: Option<&str>) -> String {
    let raw = format!(
        "akeyless-csi-{}-{}",
        namespace.unwrap_or("unknown"),
        pod.unwrap_or("pod")
    );
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

/// STS `AssumeRoleWithWebIdentity` (an unsigned call): the pod's token for temporary
/// credentials of `role_arn`.
pub(crate) async fn assume_role_with_web_identity(
    http: &reqwest::Client,
    endpoint: &str,
    role_arn: &str,
    session_name: &str,
    web_identity_token: &SecretString,
) -> Result<AwsCredentials, AwsError> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithWebIdentity")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", role_arn)
        .append_pair("RoleSessionName", session_name)
        .append_pair("WebIdentityToken", web_identity_token.expose_secret())
        .finish();
    let unreachable = |e: reqwest::Error| AwsError::Unreachable {
        endpoint: endpoint.to_string(),
        detail: e.without_url().to_string(),
    };
    let response = http
        .post(endpoint)
        .header(reqwest::header::CONTENT_TYPE, FORM_CONTENT_TYPE)
        .body(form)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let bytes = super::read_body(response)
        .await
        .map_err(|detail| AwsError::Unreachable {
            endpoint: endpoint.to_string(),
            detail,
        })?;
    let xml = String::from_utf8_lossy(&bytes);
    if !(200..300).contains(&status) {
        return Err(AwsError::Refused {
            endpoint: endpoint.to_string(),
            role_arn: role_arn.to_string(),
            status,
            code: crate::akeyless::scrub(xml_text(&xml, "Code").unwrap_or("no error code")),
            message: crate::akeyless::scrub(xml_text(&xml, "Message").unwrap_or("")),
        });
    }
    let bad = |detail: &str| AwsError::BadResponse {
        endpoint: endpoint.to_string(),
        detail: detail.to_string(),
    };
    let credentials = xml_text(&xml, "Credentials").ok_or_else(|| bad("no Credentials"))?;
    let field = |tag: &str| {
        xml_text(credentials, tag)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(&format!("no {tag} in Credentials")))
    };
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?.to_string(),
        secret_access_key: SecretString::from(field("SecretAccessKey")?.to_string()),
        session_token: Some(SecretString::from(field("SessionToken")?.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_id_has_akeyless_shape() {
        let creds = AwsCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: SecretString::from("secret-key".to_string()),
            session_token: Some(SecretString::from("session-token".to_string())),
        };
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let id = cloud_id(&creds, "eu-west-1", now);
        let doc: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(id.expose_secret()).unwrap()).unwrap();
        let field = |k: &str| {
            String::from_utf8(STANDARD.decode(doc[k].as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(doc["sts_request_method"], "POST");
        assert_eq!(
            field("sts_request_url"),
            "https://sts.eu-west-1.amazonaws.com/"
        );
        assert_eq!(field("sts_request_body"), GET_CALLER_IDENTITY_BODY);
        let headers: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&field("sts_request_headers")).unwrap();
        assert_eq!(headers["X-Amz-Date"], vec!["20231114T221320Z"]);
        assert_eq!(headers["X-Amz-Security-Token"], vec!["session-token"]);
        let auth = sigv4::parse_authorization(&headers["Authorization"][0]).unwrap();
        assert_eq!(
            (
                auth.access_key_id.as_str(),
                auth.date.as_str(),
                auth.region.as_str()
            ),
            ("ASIAEXAMPLE", "20231114", "eu-west-1")
        );
        assert_eq!(
            auth.signed_headers,
            ["content-type", "host", "x-amz-date", "x-amz-security-token"]
        );
        assert!(!format!("{creds:?}").contains("secret-key"));
        assert_eq!(
            sts_url("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn session_names_are_valid() {
        let n = session_name(Some("team a"), Some(&"x".repeat(100)));
        assert!(
            n.len() <= 64 && n.starts_with("akeyless-csi-team-a-"),
            "{n}"
        );
    }
}
