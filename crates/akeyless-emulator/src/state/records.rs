//! The records the model keeps: who a request acted as, auth methods, tokens and sessions, the
//! cloud identities the emulated cloud services know, and the request log's entries.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Who a request acted as.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub access_id: String,
    /// `access_key`, `k8s` or `jwt`.
    pub access_type: String,
    /// Kubernetes namespace sub-claim (k8s auth).
    pub namespace: Option<String>,
    /// Kubernetes service-account name (k8s auth).
    pub service_account: Option<String>,
    /// Pod uid from a pod-bound service-account token (k8s auth).
    pub pod_uid: Option<String>,
    /// The JWT `sub` claim (k8s and jwt auth).
    pub subject: Option<String>,
}

impl Identity {
    pub(crate) fn access_key(access_id: &str) -> Self {
        Self {
            access_id: access_id.to_owned(),
            access_type: "access_key".to_owned(),
            namespace: None,
            service_account: None,
            pod_uid: None,
            subject: None,
        }
    }
}

/// One call to the Akeyless API (admin calls under `/__emulator/` are not recorded).
///
/// Built from the raw JSON body, so malformed requests are logged too. Never holds secret values,
/// access keys or tokens.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub path: String,
    /// HTTP status answered; `0` when the connection was dropped by
    /// [`EmulatorState::drop_next`](crate::EmulatorState::drop_next).
    pub status: u16,
    /// The identity the request acted as: for /auth the identity that logged in (None on
    /// failure); for item reads the identity owning the token (None if the token was rejected).
    pub identity: Option<Identity>,
    /// Item names the request touched (`names` / `name` fields), as sent.
    pub items: Vec<String>,
    /// `version` field if present (and an integer).
    pub version: Option<i64>,
    /// Value of the `ignore-cache` field if present (JSON text if it was not a string).
    pub ignore_cache: Option<String>,
    /// Fields present in the JSON body (keys only, sorted).
    pub fields: Vec<String>,
    /// `args` of /get-dynamic-secret-value (string elements only).
    pub args: Vec<String>,
}

/// A registered auth method, keyed by access id.
#[derive(Clone, Debug)]
pub(crate) enum AuthMethod {
    AccessKey {
        access_key: String,
    },
    K8s {
        config_name: String,
        bound_namespaces: Vec<String>,
        bound_service_accounts: Vec<String>,
        /// `None` accepts any audience.
        audience: Option<String>,
    },
    Jwt {
        bound_subjects: Vec<String>,
    },
    /// `azure_ad`: `cloud-id` = base64 of an ARM token from the emulated Azure AD.
    AzureAd {
        bound_object_ids: Vec<String>,
    },
    /// `universal_identity`: a live `u-` token issued for this access id. `deny_inheritance`
    /// refuses child tokens (`/uid-rotate-token` with `fork`); `deny_rotate` refuses every
    /// `/uid-rotate-token`. `/auth` with the token itself works either way.
    UniversalIdentity {
        deny_inheritance: bool,
        deny_rotate: bool,
    },
    /// `aws_iam`: a signed GetCallerIdentity whose signer's ARN is bound (empty: any).
    AwsIam {
        bound_arns: Vec<String>,
    },
    /// `gcp`: a Google ID token (from the emulated metadata server) for `audience` whose
    /// `email` is bound (empty: any).
    Gcp {
        audience: String,
        bound_service_accounts: Vec<String>,
    },
}

impl AuthMethod {
    pub(crate) fn access_type(&self) -> &'static str {
        match self {
            Self::AccessKey { .. } => "access_key",
            Self::K8s { .. } => "k8s",
            Self::Jwt { .. } => "jwt",
            Self::AzureAd { .. } => "azure_ad",
            Self::UniversalIdentity { .. } => "universal_identity",
            Self::AwsIam { .. } => "aws_iam",
            Self::Gcp { .. } => "gcp",
        }
    }
}

/// A Universal Identity token.
#[derive(Clone, Debug)]
pub(crate) struct UidToken {
    pub access_id: String,
    /// False once rotated (without fork) or revoked.
    pub valid: bool,
}

/// An issued `t-` token.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub identity: Identity,
    pub expires_at: SystemTime,
}

/// AWS credentials the emulated STS issued (or a registered IAM user's static key).
#[derive(Clone, Debug)]
pub(crate) struct AwsKey {
    pub secret_access_key: String,
    /// Temporary credentials only.
    pub session_token: Option<String>,
    /// The role (or user) ARN these credentials act as.
    pub arn: String,
}

/// An app (or user-assigned managed identity) with a federated credential for one service account.
#[derive(Clone, Debug)]
pub(crate) struct AzureApp {
    pub tenant_id: String,
    pub object_id: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub subject: String,
}

/// A managed identity assigned to the emulated node.
#[derive(Clone, Debug)]
pub(crate) struct NodeIdentity {
    pub tenant_id: String,
    pub object_id: String,
    /// `None`: the system-assigned identity.
    pub client_id: Option<String>,
}

/// The principal a federated access token stands for.
#[derive(Clone, Debug)]
pub(crate) struct GcpPrincipal {
    pub provider: String,
    pub namespace: String,
    pub service_account: String,
    pub expires_at: SystemTime,
}
