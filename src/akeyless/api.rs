//! Request and response bodies of the Akeyless endpoints we call. Requests are kebab-case,
//! responses snake_case (Akeyless API v2). Tokens travel in the body, never in a header.

use serde::{Deserialize, Serialize};

use crate::secret::SecretString;

/// `POST /auth`. Only the fields of the chosen access type are sent.
#[derive(Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct AuthRequest<'a> {
    pub access_id: &'a str,
    pub access_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_auth_config_name: Option<&'a str>,
    /// base64 of the pod's service-account JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_service_account_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<&'a str>,
    /// base64 of a cloud credential (azure_ad: the ARM access token; aws_iam: the signed
    /// GetCallerIdentity request; gcp: the ID token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_id: Option<&'a str>,
    /// universal_identity: the `u-` token. Akeyless's v4.1 schema names it `uid_token`, the
    /// newer one `uid-token`; both are sent.
    #[serde(rename = "uid_token", skip_serializing_if = "Option::is_none")]
    pub uid_token_v41: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid_token: Option<&'a str>,
}

/// `POST /uid-rotate-token`: a new token of the same Universal Identity. With `fork`, a new
/// child token is created and the presented token stays valid.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct UidRotateTokenRequest<'a> {
    pub uid_token: &'a str,
    pub fork: bool,
}

#[derive(Deserialize)]
pub(crate) struct UidRotateTokenResponse {
    pub token: SecretString,
}

/// `POST /auth`'s answer. The published schema carries the token's lifetime as
/// `creds.expiry` (int64, Unix time); later schemas add `expiration` (RFC 3339 text).
#[derive(Deserialize)]
pub struct AuthResponse {
    pub token: SecretString,
    #[serde(default)]
    pub expiration: Option<String>,
    /// Anything but an object (never sent by Akeyless) is ignored rather than refused.
    #[serde(default)]
    pub creds: Option<CredsField>,
}

/// `creds` of an `/auth` answer, or whatever a hostile gateway put there instead.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum CredsField {
    Object(AuthCreds),
    Other(serde::de::IgnoredAny),
}

/// The part of `creds` we read (its token duplicates the top-level one and is not kept).
#[derive(Deserialize)]
pub struct AuthCreds {
    /// int64 in the schema; kept as JSON so that a wrong type is ignored, not fatal.
    #[serde(default)]
    pub expiry: Option<serde_json::Value>,
}

/// `POST /describe-item`.
#[derive(Serialize)]
pub(crate) struct DescribeItemRequest<'a> {
    pub name: &'a str,
    pub token: &'a str,
}

#[derive(Deserialize)]
pub struct DescribeItemResponse {
    #[serde(default)]
    pub item_type: Option<String>,
    #[serde(default)]
    pub last_version: Option<i64>,
}

/// `POST /get-secret-value`: one call reads many static secrets at one version.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct GetSecretValueRequest<'a> {
    pub names: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// A string, not a bool, in Akeyless's schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_cache: Option<&'static str>,
    pub token: &'a str,
}

/// Akeyless's error body: `{"error": "..."}`.
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub error: String,
}

/// `POST /get-rotated-secret-value`: `names` is a single string in Akeyless's schema.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct GetRotatedSecretValueRequest<'a> {
    pub names: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_cache: Option<&'static str>,
    pub token: &'a str,
}

/// `POST /get-certificate-value`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct GetCertificateValueRequest<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_cache: Option<&'static str>,
    pub token: &'a str,
}

#[derive(Deserialize)]
pub struct CertificateValueResponse {
    #[serde(default)]
    pub certificate_pem: Option<String>,
    #[serde(default)]
    pub private_key_pem: Option<SecretString>,
}

/// `POST /get-dynamic-secret-value`: every call creates a new credential (a lease).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct GetDynamicSecretValueRequest<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub args: &'a [String],
    pub token: &'a str,
}

/// `POST /get-pki-certificate`: the issuer signs our CSR (the key never leaves the node).
/// Common name and SANs travel inside the CSR, which Akeyless prefers over body fields.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct GetPkiCertificateRequest<'a> {
    pub cert_issuer_name: &'a str,
    pub csr_data_base64: String,
    /// Seconds, as a string in Akeyless's schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    pub token: &'a str,
}

#[derive(Deserialize)]
pub struct PkiCertificateResponse {
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub parent_cert: Option<String>,
}
