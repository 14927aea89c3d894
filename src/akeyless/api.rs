//! Request and response bodies of the Akeyless endpoints we call. Requests are kebab-case,
//! responses snake_case (Akeyless API v2). Tokens travel in the body, never in a header.

use serde::{Deserialize, Serialize};

use crate::secret::SecretString;

/// `POST /auth`. Only the fields of the chosen access type are sent.
#[derive(Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct AuthRequest<'a> {
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
}

#[derive(Deserialize)]
pub struct AuthResponse {
    pub token: SecretString,
    #[serde(default)]
    pub expiration: Option<String>,
}

/// `POST /describe-item`.
#[derive(Serialize)]
pub struct DescribeItemRequest<'a> {
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
pub struct GetSecretValueRequest<'a> {
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
pub struct ErrorBody {
    pub error: String,
}
