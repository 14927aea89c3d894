//! SecretProviderClass parameters → a validated [`SecretProviderSpec`]. Pure: all validation
//! happens here, before any network call, and every problem is reported with its location.
//!
//! Parsing has two steps so that offline tools can use the first alone:
//! [`SecretProviderSpec::from_parameters`] needs only the SPC parameters (the `validate` command
//! and the sync controller use it as is), and [`Credentials::resolve`] binds the credentials a
//! mount carries (nodePublishSecretRef data and the pod's service-account tokens).
//!
//! [`SecretProviderSpec::from_parameters`] reads the parameters by concern, one file each:
//! `connection` (gateways, CA, the operator's allow-list in `allow`), `auth` (access type,
//! token scope and audience, Universal Identity rotation) with one file per cloud family
//! (`aws`, `azure`, `gcp`), then `objects` (one entry in `objects/entry.rs`, its scalar values
//! in `objects/values.rs`; file names in `paths`). `credentials` binds a mount's credentials,
//! `provider_identity` explains the node-identity flags. `class` checks a whole object for
//! `validate` and the admission webhook, with its `secretObjects` (`secret_objects`).

mod allow;
mod auth;
mod aws;
mod azure;
pub(crate) mod class;
mod connection;
mod credentials;
mod gcp;
mod objects;
pub(crate) mod paths;
mod provider_identity;
pub(crate) mod secret_objects;

use std::fmt;

pub(crate) use allow::GatewayAllowList;
pub(crate) use auth::{AccessType, AuthSettings, TokenScope, UidRotation};
pub(crate) use aws::AWS_TOKEN_AUDIENCE;
pub(crate) use azure::{AZURE_TOKEN_AUDIENCE, AzureWorkloadIdentity, is_azure_guid};
pub(crate) use connection::{ConnectionSpec, normalize_gateway_url};
pub(crate) use credentials::{Credential, Credentials};
pub(crate) use gcp::{GCP_DEFAULT_AUDIENCE, GcpWorkloadIdentity};
/// `pub` for `cli`'s re-export (duration flags).
pub use objects::parse_duration;
pub(crate) use objects::{PkiOptions, listed_objects};
// The API of the fuzz targets, benchmarks and integration tests.
pub use objects::{
    CertFormat, CertOptions, Encoding, Extract, ItemType, OBJECT_FIELDS, ObjectSpec,
};
pub use provider_identity::{MIGRATION_GUIDE, ProviderIdentityFlag};

use crate::error::MountError;
use crate::request::{MountRequest, Parameters};

/// Parameter names (the SPC contract; *compat* keys match the existing Akeyless provider).
pub mod keys {
    pub(crate) const GATEWAY_URL: &str = "akeylessGatewayURL";
    pub(crate) const ACCESS_TYPE: &str = "akeylessAccessType";
    pub(crate) const ACCESS_ID: &str = "akeylessAccessID";
    pub(crate) const ACCESS_KEY: &str = "akeylessAccessKey";
    pub(crate) const K8S_AUTH_CONFIG: &str = "akeylessK8sAuthConfigName";
    pub(crate) const UID_INIT_TOKEN: &str = "akeylessUIDInitToken";
    pub(crate) const AZURE_OBJECT_ID: &str = "akeylessAzureObjectID";
    pub(crate) const AZURE_CLIENT_ID: &str = "akeylessAzureClientID";
    pub(crate) const AZURE_TENANT_ID: &str = "akeylessAzureTenantID";
    pub(crate) const AZURE_AUTHORITY_HOST: &str = "akeylessAzureAuthorityHost";
    pub(crate) const AZURE_CLOUD: &str = "akeylessAzureCloud";
    pub(crate) const UID_ROTATION: &str = "akeylessUIDRotation";
    pub(crate) const GCP_AUDIENCE: &str = "akeylessGCPAudience";
    pub(crate) const GCP_SERVICE_ACCOUNT: &str = "akeylessGCPServiceAccount";
    pub(crate) const GCP_WORKLOAD_IDENTITY_PROVIDER: &str = "akeylessGCPWorkloadIdentityProvider";
    pub(crate) const AWS_ROLE_ARN: &str = "akeylessAWSRoleARN";
    pub(crate) const AWS_REGION: &str = "akeylessAWSRegion";
    pub(crate) const TOKEN_AUDIENCE: &str = "akeylessTokenAudience";
    pub(crate) const TOKEN_SCOPE: &str = "akeylessTokenScope";
    pub(crate) const CA_CERT: &str = "akeylessCACert";
    pub(crate) const IGNORE_CACHE: &str = "akeylessIgnoreCache";
    pub const OBJECTS: &str = "objects";

    /// Every `akeyless*` parameter we accept; any other `akeyless*` key is reported as a typo.
    pub const ALL: &[&str] = &[
        GATEWAY_URL,
        ACCESS_TYPE,
        ACCESS_ID,
        ACCESS_KEY,
        K8S_AUTH_CONFIG,
        UID_INIT_TOKEN,
        AZURE_OBJECT_ID,
        AZURE_CLIENT_ID,
        AZURE_TENANT_ID,
        AZURE_AUTHORITY_HOST,
        AZURE_CLOUD,
        UID_ROTATION,
        GCP_AUDIENCE,
        GCP_SERVICE_ACCOUNT,
        GCP_WORKLOAD_IDENTITY_PROVIDER,
        AWS_ROLE_ARN,
        AWS_REGION,
        TOKEN_AUDIENCE,
        TOKEN_SCOPE,
        CA_CERT,
        IGNORE_CACHE,
    ];
}

/// One validation problem: where (`parameters.akeylessAccessType`, `objects[2].fileName`) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl Problem {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            location: location.into(),
            message: message.into(),
        }
    }
}

/// All problems found in one SecretProviderClass.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<Problem>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<&str> = self.0.iter().map(|p| p.message.as_str()).collect();
        f.write_str(&messages.join("; "))
    }
}

impl From<SpecErrors> for MountError {
    fn from(e: SpecErrors) -> Self {
        MountError::invalid(e.to_string())
    }
}

/// Parameter `key`, trimmed; `None` when it is absent or blank.
fn trimmed_param(params: &Parameters, key: &str) -> Option<String> {
    params
        .get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Records a problem with parameter `key`, located at `parameters.<key>`.
fn param_problem(problems: &mut Vec<Problem>, key: &str, message: String) {
    problems.push(Problem::new(format!("parameters.{key}"), message));
}

/// A validated SecretProviderClass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretProviderSpec {
    pub connection: ConnectionSpec,
    pub auth: AuthSettings,
    pub objects: Vec<ObjectSpec>,
}

/// Provider-wide defaults and limits that shape parsing.
#[derive(Clone, Debug)]
pub struct SpecDefaults {
    /// `--akeyless-url`: the gateway of SPCs that name none, and the only one the provider's
    /// own (node) identities ever talk to.
    pub gateway_url: String,
    /// `--allowed-gateways`: the hosts an SPC may name (empty: any). `--akeyless-url` is
    /// always allowed.
    pub allowed_gateways: GatewayAllowList,
    /// The audience of the node's Google ID token (`--gcp-metadata-audience`): the operator's
    /// choice, never the SPC's.
    pub provider_gcp_audience: String,
    pub max_objects: usize,
    /// Most bytes one mount may return (all files together).
    pub max_mount_bytes: usize,
}

/// The driver's default gRPC receive limit (`--max-call-recv-msg-size`): a larger answer fails.
pub(crate) const DRIVER_MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

impl SpecDefaults {
    /// Whether an SPC may name `url` (normalized) as its gateway.
    pub(crate) fn gateway_allowed(&self, url: &str) -> bool {
        url == self.gateway_url.trim_end_matches('/') || self.allowed_gateways.allows(url)
    }
}

impl Default for SpecDefaults {
    fn default() -> Self {
        SpecDefaults {
            gateway_url: "https://api.akeyless.io".into(),
            allowed_gateways: GatewayAllowList::default(),
            provider_gcp_audience: GCP_DEFAULT_AUDIENCE.into(),
            max_objects: 500,
            // Leave room for paths and framing under the driver's limit.
            max_mount_bytes: DRIVER_MESSAGE_LIMIT - 64 * 1024,
        }
    }
}

impl SecretProviderSpec {
    /// Parses and validates the parameters. Credential presence is checked later by
    /// [`Credentials::resolve`], because credentials may live outside the parameters.
    pub fn from_parameters(
        params: &Parameters,
        defaults: &SpecDefaults,
    ) -> Result<SecretProviderSpec, SpecErrors> {
        let mut problems = Vec::new();
        report_unknown_keys(params, &mut problems);
        let connection = connection::parse(params, defaults, &mut problems);
        let auth = auth::parse(params, defaults, &mut problems);

        let objects = match params.get(keys::OBJECTS) {
            Some(yaml) => objects::parse_objects(yaml, defaults.max_objects, &mut problems),
            None => {
                problems.push(Problem::new(
                    "parameters.objects",
                    "parameter objects is required: a YAML list such as\n- secretPath: /prod/db/password\n  fileName: db-password",
                ));
                vec![]
            }
        };

        if !problems.is_empty() {
            return Err(SpecErrors(problems));
        }
        Ok(SecretProviderSpec {
            connection,
            auth,
            objects,
        })
    }
}

/// Reports every `akeyless*` parameter that is not one of [`keys::ALL`] (a typo).
fn report_unknown_keys(params: &Parameters, problems: &mut Vec<Problem>) {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    for key in params.keys() {
        if key.starts_with("akeyless") && !keys::ALL.contains(&key) {
            problem(
                key,
                format!(
                    "parameter {key} is not known; accepted akeyless parameters: {}",
                    keys::ALL.join(", ")
                ),
            );
        }
    }
}

/// Parses a whole mount: parameters, then credentials. Convenience for the pipeline.
pub fn parse_mount(
    req: &MountRequest,
    defaults: &SpecDefaults,
) -> Result<(SecretProviderSpec, Credentials), SpecErrors> {
    let mut spec = SecretProviderSpec::from_parameters(&req.parameters, defaults)?;
    let creds = Credentials::resolve(&spec.auth, &req.parameters, &req.secrets, &req.tokens)?;
    if matches!(creds.credential, Credential::ProviderIdentity) {
        spec.bind_to_operator(defaults);
    }
    Ok((spec, creds))
}

impl SecretProviderSpec {
    /// A mount that authenticates with the provider's own (node) cloud identity talks only to
    /// `--akeyless-url`, with the operator's audience: a credential of the node must never go
    /// to a gateway, or carry an audience, that a tenant chose. The SPC's gateway, CA and
    /// audience are ignored.
    pub(crate) fn bind_to_operator(&mut self, defaults: &SpecDefaults) {
        self.connection.gateways = vec![defaults.gateway_url.trim_end_matches('/').to_string()];
        self.connection.ca_cert_pem = None;
        self.auth.gcp_audience = Some(defaults.provider_gcp_audience.clone());
    }
}

#[cfg(test)]
mod tests;
