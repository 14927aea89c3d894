//! How an SPC authenticates: the access type, its token scope and audience, and the settings
//! of each auth family (the cloud ones live in `aws`, `azure` and `gcp`).

use std::fmt;

use super::aws::{self, AWS_TOKEN_AUDIENCE, AwsSettings};
use super::azure::{self, AZURE_TOKEN_AUDIENCE, AzureWorkloadIdentity};
use super::gcp::{self, GCP_DEFAULT_AUDIENCE, GcpWorkloadIdentity};
use super::{Problem, SpecDefaults, keys, param_problem, trimmed_param};
use crate::request::Parameters;

/// How an SPC authenticates to Akeyless (`akeylessAccessType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessType {
    AccessKey,
    Kubernetes,
    Jwt,
    UniversalIdentity,
    AwsIam,
    AzureAd,
    Gcp,
}

impl AccessType {
    pub(crate) const ACCEPTED: &'static str =
        "access_key, k8s, jwt, universal_identity, aws_iam, azure_ad, gcp";

    pub(crate) fn parse(s: &str) -> Option<AccessType> {
        match s.trim() {
            "access_key" | "api_key" => Some(AccessType::AccessKey),
            "k8s" => Some(AccessType::Kubernetes),
            "jwt" => Some(AccessType::Jwt),
            "universal_identity" => Some(AccessType::UniversalIdentity),
            "aws_iam" => Some(AccessType::AwsIam),
            "azure_ad" => Some(AccessType::AzureAd),
            "gcp" => Some(AccessType::Gcp),
            _ => None,
        }
    }

    /// The `access-type` value Akeyless's `/auth` expects.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AccessType::AccessKey => "access_key",
            AccessType::Kubernetes => "k8s",
            AccessType::Jwt => "jwt",
            AccessType::UniversalIdentity => "universal_identity",
            AccessType::AwsIam => "aws_iam",
            AccessType::AzureAd => "azure_ad",
            AccessType::Gcp => "gcp",
        }
    }
}

impl fmt::Display for AccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose Akeyless token a mount may reuse (`akeylessTokenScope`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TokenScope {
    /// One token per pod (default).
    #[default]
    Pod,
    /// Shared by the pods of one service account in one namespace.
    ServiceAccount,
}

/// Authentication settings from the parameters (no credential material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    pub access_type: AccessType,
    /// From the parameters; may instead come from the nodePublishSecretRef at mount time.
    pub access_id: Option<String>,
    pub k8s_auth_config_name: Option<String>,
    pub token_audience: Option<String>,
    pub token_scope: TokenScope,
    /// `universal_identity` only: whether logins fork and rotate a token chain.
    pub uid_rotation: UidRotation,
    pub azure_object_id: Option<String>,
    /// Azure AD workload identity: the pod's token is exchanged for an ARM token of this app.
    /// `None`: the node's managed identity behind `--azure-provider-identity`
    /// (`azure_object_id` selecting a user-assigned one).
    pub azure: Option<AzureWorkloadIdentity>,
    pub gcp_audience: Option<String>,
    /// GCP workload identity (`gcp` as the pod); `None`: the node's identity behind
    /// `--gcp-metadata-identity`.
    pub gcp: Option<GcpWorkloadIdentity>,
    /// AWS IAM settings (`aws_iam` only).
    pub aws: Option<AwsSettings>,
}

impl AuthSettings {
    /// The audience of the Google ID token sent to Akeyless (`akeylessGCPAudience`).
    pub(crate) fn gcp_id_audience(&self) -> &str {
        self.gcp_audience.as_deref().unwrap_or(GCP_DEFAULT_AUDIENCE)
    }

    /// The audience of the pod token this SPC authenticates with: `akeylessTokenAudience`, else
    /// the access type's own (Azure AD's exchange audience, EKS's STS audience, the GCP
    /// workload identity provider's). `None`: the only token the driver delivers. Mounts pick
    /// the token with it; the sync controller mints its token for it.
    pub(crate) fn pod_token_audience(&self) -> Option<String> {
        self.token_audience
            .clone()
            .or_else(|| match self.access_type {
                AccessType::AzureAd => self.azure.as_ref().map(|_| AZURE_TOKEN_AUDIENCE.to_owned()),
                AccessType::AwsIam => Some(AWS_TOKEN_AUDIENCE.to_owned()),
                AccessType::Gcp => self.gcp.as_ref()?.default_token_audience(),
                _ => None,
            })
    }
}

/// How a Universal Identity logs in (`akeylessUIDRotation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UidRotation {
    /// `/auth` with the presented token, as other Akeyless clients do; works for every auth
    /// method, including `deny-inheritance` and `deny-rotate` ones.
    #[default]
    None,
    /// Fork a child token from the presented one (`/uid-rotate-token` with `fork`), then
    /// rotate that child at every login.
    Fork,
}

/// Parses the authentication parameters: the access type, then the settings of its family.
pub(super) fn parse(
    params: &Parameters,
    defaults: &SpecDefaults,
    problems: &mut Vec<Problem>,
) -> AuthSettings {
    let (access_type, k8s_auth_config_name) = parse_access_type(params, problems);
    let azure = match access_type {
        AccessType::AzureAd => azure::parse(params, defaults, problems),
        _ => None,
    };
    let aws = match access_type {
        AccessType::AwsIam => Some(aws::parse(params, problems)),
        _ => None,
    };
    let gcp_audience = gcp::parse_audience(params, problems);
    let gcp = match access_type {
        AccessType::Gcp => gcp::parse(params, problems),
        _ => None,
    };
    let uid_rotation = parse_uid_rotation(params, problems);
    let token_scope = parse_token_scope(params, problems);
    AuthSettings {
        access_type,
        access_id: params.get(keys::ACCESS_ID).map(str::to_string),
        k8s_auth_config_name,
        token_audience: params.get(keys::TOKEN_AUDIENCE).map(str::to_string),
        token_scope,
        uid_rotation,
        azure_object_id: trimmed_param(params, keys::AZURE_OBJECT_ID),
        azure,
        gcp_audience,
        gcp,
        aws,
    }
}

/// `akeylessAccessType` (k8s when only a Kubernetes auth config is named) and that config.
fn parse_access_type(
    params: &Parameters,
    problems: &mut Vec<Problem>,
) -> (AccessType, Option<String>) {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    let k8s_auth_config_name = params.get(keys::K8S_AUTH_CONFIG).map(str::to_string);
    let access_type = match params.get(keys::ACCESS_TYPE) {
        Some(t) => AccessType::parse(t).unwrap_or_else(|| {
            problem(
                keys::ACCESS_TYPE,
                format!(
                    "parameter {} {t:?} is not supported; use one of: {}",
                    keys::ACCESS_TYPE,
                    AccessType::ACCEPTED
                ),
            );
            AccessType::AccessKey
        }),
        None if k8s_auth_config_name.is_some() => AccessType::Kubernetes,
        None => AccessType::AccessKey,
    };
    if access_type == AccessType::Kubernetes && k8s_auth_config_name.is_none() {
        problem(
            keys::K8S_AUTH_CONFIG,
            format!(
                "access type k8s needs parameter {}: the name of the gateway's Kubernetes auth config",
                keys::K8S_AUTH_CONFIG
            ),
        );
    }
    (access_type, k8s_auth_config_name)
}

/// `akeylessUIDRotation`.
fn parse_uid_rotation(params: &Parameters, problems: &mut Vec<Problem>) -> UidRotation {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    match params.get(keys::UID_ROTATION).map(str::trim) {
        None | Some("none") => UidRotation::None,
        Some("fork") => UidRotation::Fork,
        Some(other) => {
            problem(
                keys::UID_ROTATION,
                format!(
                    "parameter {} {other:?} is not supported; use none (the default: log in \
                     with the presented token) or fork (fork a child token and rotate it)",
                    keys::UID_ROTATION
                ),
            );
            UidRotation::None
        }
    }
}

/// `akeylessTokenScope`.
fn parse_token_scope(params: &Parameters, problems: &mut Vec<Problem>) -> TokenScope {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    match params.get(keys::TOKEN_SCOPE) {
        None | Some("pod") => TokenScope::Pod,
        Some("serviceAccount") => TokenScope::ServiceAccount,
        Some(other) => {
            problem(
                keys::TOKEN_SCOPE,
                format!(
                    "parameter {} {other:?} is not supported; use pod or serviceAccount",
                    keys::TOKEN_SCOPE
                ),
            );
            TokenScope::Pod
        }
    }
}
