//! SecretProviderClass parameters → a validated [`SecretProviderSpec`]. Pure: all validation
//! happens here, before any network call, and every problem is reported with its location.
//!
//! Parsing has two steps so that offline tools can use the first alone:
//! [`SecretProviderSpec::from_parameters`] needs only the SPC parameters (the `validate` command
//! and the sync controller use it as is), and [`Credentials::resolve`] binds the credentials a
//! mount carries (nodePublishSecretRef data and the pod's service-account tokens).

mod allow;
pub mod class;
mod objects;
pub mod paths;
pub mod secret_objects;

use std::fmt;

use url::Url;

pub use allow::GatewayAllowList;
pub use objects::{
    CertFormat, CertOptions, Encoding, Extract, ItemType, OBJECT_FIELDS, ObjectSpec, PkiOptions,
    listed_objects, parse_duration, parse_mode,
};

use crate::error::MountError;
use crate::request::{MountRequest, NodePublishSecrets, Parameters, ServiceAccountTokens};
use crate::secret::{ExposeSecret, SecretString};

/// Parameter names (the SPC contract; *compat* keys match the existing Akeyless provider).
pub mod keys {
    pub const GATEWAY_URL: &str = "akeylessGatewayURL";
    pub const ACCESS_TYPE: &str = "akeylessAccessType";
    pub const ACCESS_ID: &str = "akeylessAccessID";
    pub const ACCESS_KEY: &str = "akeylessAccessKey";
    pub const K8S_AUTH_CONFIG: &str = "akeylessK8sAuthConfigName";
    pub const UID_INIT_TOKEN: &str = "akeylessUIDInitToken";
    pub const AZURE_OBJECT_ID: &str = "akeylessAzureObjectID";
    pub const AZURE_CLIENT_ID: &str = "akeylessAzureClientID";
    pub const AZURE_TENANT_ID: &str = "akeylessAzureTenantID";
    pub const AZURE_AUTHORITY_HOST: &str = "akeylessAzureAuthorityHost";
    pub const AZURE_CLOUD: &str = "akeylessAzureCloud";
    pub const UID_ROTATION: &str = "akeylessUIDRotation";
    pub const GCP_AUDIENCE: &str = "akeylessGCPAudience";
    pub const GCP_SERVICE_ACCOUNT: &str = "akeylessGCPServiceAccount";
    pub const GCP_WORKLOAD_IDENTITY_PROVIDER: &str = "akeylessGCPWorkloadIdentityProvider";
    pub const AWS_ROLE_ARN: &str = "akeylessAWSRoleARN";
    pub const AWS_REGION: &str = "akeylessAWSRegion";
    pub const TOKEN_AUDIENCE: &str = "akeylessTokenAudience";
    pub const TOKEN_SCOPE: &str = "akeylessTokenScope";
    pub const CA_CERT: &str = "akeylessCACert";
    pub const IGNORE_CACHE: &str = "akeylessIgnoreCache";
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
    pub const ACCEPTED: &'static str =
        "access_key, k8s, jwt, universal_identity, aws_iam, azure_ad, gcp";

    pub fn parse(s: &str) -> Option<AccessType> {
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
    pub fn as_str(self) -> &'static str {
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

/// Where to reach Akeyless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSpec {
    /// Ordered failover list of API base URLs, without trailing slash.
    pub gateways: Vec<String>,
    /// Extra PEM CA certificates trusted for this SPC's gateway.
    pub ca_cert_pem: Option<String>,
    /// Send `ignore-cache: "true"` so a gateway reads through its cache.
    pub ignore_cache: bool,
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
    pub fn gcp_id_audience(&self) -> &str {
        self.gcp_audience.as_deref().unwrap_or(GCP_DEFAULT_AUDIENCE)
    }

    /// The audience of the pod token this SPC authenticates with: `akeylessTokenAudience`, else
    /// the access type's own (Azure AD's exchange audience, EKS's STS audience, the GCP
    /// workload identity provider's). `None`: the only token the driver delivers. Mounts pick
    /// the token with it; the sync controller mints its token for it.
    pub fn pod_token_audience(&self) -> Option<String> {
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

/// How `aws_iam` obtains AWS credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// The role the pod assumes with its own service-account token (EKS IRSA style). `None`:
    /// the provider's own AWS credentials, only when the provider was started with
    /// `--aws-provider-credentials`.
    pub role_arn: Option<String>,
    /// Region of the STS endpoints (default `us-east-1`).
    pub region: String,
}

/// The audience AWS STS expects on a web-identity token (EKS IRSA).
pub const AWS_TOKEN_AUDIENCE: &str = "sts.amazonaws.com";
/// The region used when `akeylessAWSRegion` is not set.
pub const AWS_DEFAULT_REGION: &str = "us-east-1";
/// The audience of the Google ID token when `akeylessGCPAudience` is not set.
pub const GCP_DEFAULT_AUDIENCE: &str = "akeyless.io";

/// The Google service account a pod impersonates through workload identity federation (GKE
/// Workload Identity or a workload identity pool that trusts the cluster's issuer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpWorkloadIdentity {
    /// The Google service account's email, whose ID token goes to Akeyless.
    pub service_account: String,
    /// The STS audience: `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/R`
    /// or, for GKE, `identitynamespace:PROJECT.svc.id.goog:https://container.googleapis.com/v1/…`.
    pub provider: String,
}

impl GcpWorkloadIdentity {
    /// The pod-token audience the provider accepts unless configured otherwise: the identity
    /// namespace (`PROJECT.svc.id.goog`) for GKE, `https://iam.googleapis.com/…` for a pool
    /// provider (Google's default allowed audience).
    pub fn default_token_audience(&self) -> Option<String> {
        if let Some(rest) = self.provider.strip_prefix("identitynamespace:") {
            return rest
                .split(':')
                .next()
                .filter(|ns| !ns.is_empty())
                .map(str::to_string);
        }
        self.provider
            .strip_prefix("//iam.googleapis.com/")
            .map(|rest| format!("https://iam.googleapis.com/{rest}"))
    }
}

/// `name@domain` with characters safe in a URL path segment (what Google service account
/// emails look like: `app@PROJECT.iam.gserviceaccount.com`).
fn valid_gsa_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    ok(local) && ok(domain) && domain.contains('.')
}

/// A workload identity pool provider's resource name or a GKE identity namespace audience.
fn valid_wi_provider(provider: &str) -> bool {
    if provider.is_empty()
        || provider
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    if let Some(rest) = provider.strip_prefix("identitynamespace:") {
        return matches!(rest.split_once(':'), Some((ns, url))
            if ns.ends_with(".svc.id.goog") && ns.len() > ".svc.id.goog".len() && url.starts_with("https://"));
    }
    let Some(rest) = provider.strip_prefix("//iam.googleapis.com/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), ["projects", project, "locations", location, "workloadIdentityPools", pool, "providers", name]
        if [project, location, pool, name].iter().all(|p| !p.is_empty()))
}

/// The Azure AD application a pod federates into (AKS workload identity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureWorkloadIdentity {
    pub client_id: String,
    pub tenant_id: String,
    /// `akeylessAzureAuthorityHost`, else the cloud's own Azure AD host.
    pub authority_host: String,
    /// `akeylessAzureCloud`: which ARM resource the token is asked for.
    pub cloud: AzureCloud,
}

/// The Azure cloud of an `azure_ad` identity (`akeylessAzureCloud`): it fixes the ARM scope the
/// token is asked for and the default Azure AD authority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AzureCloud {
    #[default]
    Public,
    UsGovernment,
    China,
}

impl AzureCloud {
    pub const ACCEPTED: &'static str = "public, usgovernment or china";

    pub fn parse(value: &str) -> Option<AzureCloud> {
        match value.trim().to_ascii_lowercase().as_str() {
            "public" | "azurepubliccloud" => Some(AzureCloud::Public),
            "usgovernment" | "azureusgovernment" | "azureusgovernmentcloud" => {
                Some(AzureCloud::UsGovernment)
            }
            "china" | "azurechinacloud" => Some(AzureCloud::China),
            _ => None,
        }
    }

    /// The OAuth scope of an ARM (Azure Resource Manager) token in this cloud.
    pub fn arm_scope(self) -> &'static str {
        match self {
            AzureCloud::Public => "https://management.azure.com/.default",
            AzureCloud::UsGovernment => "https://management.usgovcloudapi.net/.default",
            AzureCloud::China => "https://management.chinacloudapi.cn/.default",
        }
    }

    /// This cloud's Azure AD authority host (one of [`AZURE_AUTHORITY_HOSTS`]).
    pub fn authority_host(self) -> &'static str {
        match self {
            AzureCloud::Public => AZURE_PUBLIC_AUTHORITY,
            AzureCloud::UsGovernment => "https://login.microsoftonline.us",
            AzureCloud::China => "https://login.chinacloudapi.cn",
        }
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

/// Azure AD's authority host in the public cloud (the default).
pub const AZURE_PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Azure AD's authority hosts (public cloud first, then US Government and China), always
/// allowed as `akeylessAzureAuthorityHost`.
pub const AZURE_AUTHORITY_HOSTS: &[&str] = &[
    AZURE_PUBLIC_AUTHORITY,
    "https://login.microsoftonline.us",
    "https://login.chinacloudapi.cn",
];

/// The audience Azure AD expects on a federated service-account token.
pub const AZURE_TOKEN_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A GUID as Azure writes object, client and tenant IDs (`8-4-4-4-12` hex digits).
pub fn is_azure_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The README section that tells a user of the existing Akeyless provider what to change.
/// Errors and warnings about the node-identity cases link to it.
pub const MIGRATION_GUIDE: &str = "README.md#migrating-from-the-akeyless-go-provider";

/// The operator flags that let a cloud access type authenticate as the node (the provider)
/// when the SPC names no per-pod identity: what the existing Akeyless provider always did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderIdentityFlag {
    Aws,
    Gcp,
    Azure,
}

impl ProviderIdentityFlag {
    /// The flag for a cloud access type (`None` for the others).
    pub fn for_access_type(access_type: AccessType) -> Option<Self> {
        match access_type {
            AccessType::AwsIam => Some(ProviderIdentityFlag::Aws),
            AccessType::Gcp => Some(ProviderIdentityFlag::Gcp),
            AccessType::AzureAd => Some(ProviderIdentityFlag::Azure),
            _ => None,
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            ProviderIdentityFlag::Aws => "--aws-provider-credentials",
            ProviderIdentityFlag::Gcp => "--gcp-metadata-identity",
            ProviderIdentityFlag::Azure => "--azure-provider-identity",
        }
    }

    /// The chart value that sets the flag.
    pub fn chart_value(self) -> &'static str {
        match self {
            ProviderIdentityFlag::Aws => "providerIdentity.aws.enabled",
            ProviderIdentityFlag::Gcp => "providerIdentity.gcp.enabled",
            ProviderIdentityFlag::Azure => "providerIdentity.azure.enabled",
        }
    }

    fn access_type(self) -> AccessType {
        match self {
            ProviderIdentityFlag::Aws => AccessType::AwsIam,
            ProviderIdentityFlag::Gcp => AccessType::Gcp,
            ProviderIdentityFlag::Azure => AccessType::AzureAd,
        }
    }

    /// The per-pod parameters the SPC lacks.
    pub fn per_pod_parameters(self) -> &'static [&'static str] {
        match self {
            ProviderIdentityFlag::Aws => &[keys::AWS_ROLE_ARN],
            ProviderIdentityFlag::Gcp => &[
                keys::GCP_SERVICE_ACCOUNT,
                keys::GCP_WORKLOAD_IDENTITY_PROVIDER,
            ],
            ProviderIdentityFlag::Azure => &[keys::AZURE_CLIENT_ID, keys::AZURE_TENANT_ID],
        }
    }

    /// A one-line warning (`validate`, the admission webhook) located at
    /// `spec.parameters.akeylessAccessType`: both ways forward, the flag and the README
    /// section, short enough for the API server's 256 characters with its location. It never
    /// quotes a parameter's value.
    pub fn warning(self) -> String {
        format!(
            "{} without {} needs provider flag {}, or add {} to authenticate as the pod; see {MIGRATION_GUIDE}",
            self.access_type(),
            self.per_pod_parameters().join("/"),
            self.flag(),
            if self.per_pod_parameters().len() > 1 {
                "them"
            } else {
                "it"
            },
        )
    }

    /// The mount error when the flag is off: both ways forward in full, and the README section.
    pub fn refusal(self) -> String {
        let (node, pod) = match self {
            ProviderIdentityFlag::Aws => (
                "the provider's own AWS credentials (from its environment)",
                format!(
                    "set {} to an IAM role whose trust policy trusts the pod's service account \
                     (EKS IRSA), and add the audience {AWS_TOKEN_AUDIENCE} to the CSIDriver tokenRequests",
                    keys::AWS_ROLE_ARN
                ),
            ),
            ProviderIdentityFlag::Gcp => (
                "the node's Google service account (the metadata server)",
                format!(
                    "set {} (the Google service account to impersonate) and {} (the workload \
                     identity provider's STS audience), grant the pod's principal \
                     roles/iam.workloadIdentityUser on that service account, and add the provider's \
                     pod-token audience to the CSIDriver tokenRequests",
                    keys::GCP_SERVICE_ACCOUNT,
                    keys::GCP_WORKLOAD_IDENTITY_PROVIDER
                ),
            ),
            ProviderIdentityFlag::Azure => (
                "the node's managed identity (Azure IMDS; akeylessAzureObjectID selects a user-assigned one)",
                format!(
                    "set {} and {} (the client and tenant IDs of a managed identity or app with a \
                     federated credential for the pod's service account: AKS workload identity), and \
                     add the audience {AZURE_TOKEN_AUDIENCE} to the CSIDriver tokenRequests",
                    keys::AZURE_CLIENT_ID,
                    keys::AZURE_TENANT_ID
                ),
            ),
        };
        format!(
            "access type {} without {} authenticates as {node}, shared by every pod on the node; \
             this provider does that only when its operator starts it with the provider flag {} \
             (chart value {}). To authenticate as the pod instead, {pod}. See {MIGRATION_GUIDE}",
            self.access_type(),
            self.per_pod_parameters().join(" and "),
            self.flag(),
            self.chart_value(),
        )
    }
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
pub const DRIVER_MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

impl SpecDefaults {
    /// Whether an SPC may name `url` (normalized) as its gateway.
    pub fn gateway_allowed(&self, url: &str) -> bool {
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

/// Checks one gateway URL and returns it without a trailing slash.
pub fn normalize_gateway_url(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!(
            "{raw:?} must start with https:// (or http:// for local gateways)"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?} must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Counts the certificates in a PEM bundle; an error when there are none or one is malformed.
pub fn count_pem_certificates(pem: &str) -> Result<usize, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut n: usize = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        cert.map_err(|e| format!("is not valid PEM ({e})"))?;
        n = n.saturating_add(1);
    }
    if n == 0 {
        return Err("holds no PEM CERTIFICATE block".into());
    }
    Ok(n)
}

impl SecretProviderSpec {
    /// Parses and validates the parameters. Credential presence is checked later by
    /// [`Credentials::resolve`], because credentials may live outside the parameters.
    pub fn from_parameters(
        params: &Parameters,
        defaults: &SpecDefaults,
    ) -> Result<SecretProviderSpec, SpecErrors> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(Problem::new(format!("parameters.{key}"), message));
        };

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

        let gateway_list = params
            .get(keys::GATEWAY_URL)
            .unwrap_or(&defaults.gateway_url);
        let mut gateways = Vec::new();
        for raw in gateway_list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match normalize_gateway_url(raw) {
                Ok(url) if !defaults.gateway_allowed(&url) => problem(
                    keys::GATEWAY_URL,
                    format!(
                        "parameter {}: {url} is not allowed on this cluster; the provider's operator \
                         allows only {} (provider flag --allowed-gateways) and {}",
                        keys::GATEWAY_URL,
                        defaults.allowed_gateways.describe(),
                        defaults.gateway_url
                    ),
                ),
                Ok(url) => gateways.push(url),
                Err(why) => problem(
                    keys::GATEWAY_URL,
                    format!("parameter {}: {why}", keys::GATEWAY_URL),
                ),
            }
        }
        if gateways.is_empty() && !gateway_list.trim().is_empty() {
            // Only commas: treat as unset.
            gateways.push(defaults.gateway_url.trim_end_matches('/').to_string());
        }

        let ca_cert_pem = params.get(keys::CA_CERT).map(str::to_string);
        if let Some(pem) = &ca_cert_pem
            && let Err(why) = count_pem_certificates(pem)
        {
            problem(keys::CA_CERT, format!("parameter {} {why}", keys::CA_CERT));
        }

        let ignore_cache = match params.get(keys::IGNORE_CACHE) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                problem(
                    keys::IGNORE_CACHE,
                    format!(
                        "parameter {} must be \"true\" or \"false\", not {v:?}",
                        keys::IGNORE_CACHE
                    ),
                );
                false
            }
        };

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
        let azure = match access_type {
            AccessType::AzureAd => {
                let get = |key: &str| {
                    params
                        .get(key)
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                };
                let client_id = get(keys::AZURE_CLIENT_ID);
                let tenant_id = get(keys::AZURE_TENANT_ID);
                if let Some(oid) = get(keys::AZURE_OBJECT_ID)
                    && !is_azure_guid(&oid)
                {
                    problem(
                        keys::AZURE_OBJECT_ID,
                        format!(
                            "parameter {} {oid:?} is not an object ID (a GUID such as \
                             00000000-0000-0000-0000-000000000000): the object (principal) ID of a \
                             user-assigned managed identity of the node",
                            keys::AZURE_OBJECT_ID
                        ),
                    );
                }
                if client_id.is_some() != tenant_id.is_some() {
                    problem(
                        keys::AZURE_CLIENT_ID,
                        format!(
                            "access type azure_ad authenticates as the pod (Azure AD workload identity) only with both {} and {} \
                             (the client and tenant IDs of the managed identity or app the pod's service account federates with); \
                             set both, or neither to use the node's managed identity (provider flag {}); see {MIGRATION_GUIDE}",
                            keys::AZURE_CLIENT_ID,
                            keys::AZURE_TENANT_ID,
                            ProviderIdentityFlag::Azure.flag(),
                        ),
                    );
                }
                let cloud = match params.get(keys::AZURE_CLOUD) {
                    None => AzureCloud::Public,
                    Some(v) => AzureCloud::parse(v).unwrap_or_else(|| {
                        problem(
                            keys::AZURE_CLOUD,
                            format!(
                                "parameter {} {v:?} is not an Azure cloud; use {} (default public)",
                                keys::AZURE_CLOUD,
                                AzureCloud::ACCEPTED
                            ),
                        );
                        AzureCloud::Public
                    }),
                };
                let authority_host = match params.get(keys::AZURE_AUTHORITY_HOST) {
                    None => cloud.authority_host().to_string(),
                    Some(url) => match normalize_gateway_url(url) {
                        Ok(url)
                            if !AZURE_AUTHORITY_HOSTS.contains(&url.as_str())
                                && !defaults.allowed_gateways.allows_any()
                                && !defaults.allowed_gateways.allows(&url) =>
                        {
                            problem(
                                keys::AZURE_AUTHORITY_HOST,
                                format!(
                                    "parameter {}: {url} is neither an Azure AD authority ({}) nor \
                                     allowed by the provider flag --allowed-gateways ({})",
                                    keys::AZURE_AUTHORITY_HOST,
                                    AZURE_AUTHORITY_HOSTS.join(", "),
                                    defaults.allowed_gateways.describe()
                                ),
                            );
                            String::new()
                        }
                        Ok(url) => url,
                        Err(why) => {
                            problem(
                                keys::AZURE_AUTHORITY_HOST,
                                format!("parameter {}: {why}", keys::AZURE_AUTHORITY_HOST),
                            );
                            String::new()
                        }
                    },
                };
                match (client_id, tenant_id) {
                    (Some(client_id), Some(tenant_id)) => Some(AzureWorkloadIdentity {
                        client_id,
                        tenant_id,
                        authority_host,
                        cloud,
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        let aws = match access_type {
            AccessType::AwsIam => {
                let role_arn = params.get(keys::AWS_ROLE_ARN).map(|r| r.trim().to_string());
                if let Some(arn) = &role_arn
                    && !valid_role_arn(arn)
                {
                    problem(
                        keys::AWS_ROLE_ARN,
                        format!(
                            "parameter {} {arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                            keys::AWS_ROLE_ARN
                        ),
                    );
                }
                let region = params
                    .get(keys::AWS_REGION)
                    .map(|r| r.trim().to_string())
                    .unwrap_or_else(|| AWS_DEFAULT_REGION.to_string());
                if region.is_empty()
                    || !region
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    problem(
                        keys::AWS_REGION,
                        format!(
                            "parameter {} {region:?} is not an AWS region such as us-east-1",
                            keys::AWS_REGION
                        ),
                    );
                }
                Some(AwsSettings { role_arn, region })
            }
            _ => None,
        };
        let gcp_audience = params.get(keys::GCP_AUDIENCE).map(|a| a.trim().to_string());
        if gcp_audience.as_deref() == Some("") {
            problem(
                keys::GCP_AUDIENCE,
                format!(
                    "parameter {} is empty; leave it out for the default {GCP_DEFAULT_AUDIENCE}",
                    keys::GCP_AUDIENCE
                ),
            );
        }
        let gcp = match access_type {
            AccessType::Gcp => {
                let get = |key: &str| {
                    params
                        .get(key)
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                };
                let service_account = get(keys::GCP_SERVICE_ACCOUNT);
                let provider = get(keys::GCP_WORKLOAD_IDENTITY_PROVIDER);
                if let Some(gsa) = &service_account
                    && !valid_gsa_email(gsa)
                {
                    problem(
                        keys::GCP_SERVICE_ACCOUNT,
                        format!(
                            "parameter {} {gsa:?} is not a Google service account email such as \
                             app@PROJECT_ID.iam.gserviceaccount.com",
                            keys::GCP_SERVICE_ACCOUNT
                        ),
                    );
                }
                if let Some(p) = &provider
                    && !valid_wi_provider(p)
                {
                    problem(
                        keys::GCP_WORKLOAD_IDENTITY_PROVIDER,
                        format!(
                            "parameter {} {p:?} is not a workload identity provider: use \
                             //iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER, \
                             or on GKE identitynamespace:PROJECT_ID.svc.id.goog:https://container.googleapis.com/v1/projects/PROJECT_ID/locations/LOCATION/clusters/CLUSTER",
                            keys::GCP_WORKLOAD_IDENTITY_PROVIDER
                        ),
                    );
                }
                match (service_account, provider) {
                    (Some(service_account), Some(provider)) => Some(GcpWorkloadIdentity {
                        service_account,
                        provider,
                    }),
                    (None, None) => None,
                    (Some(_), None) | (None, Some(_)) => {
                        problem(
                            keys::GCP_SERVICE_ACCOUNT,
                            format!(
                                "access type gcp authenticates as the pod only with both {} (the Google service \
                                 account to impersonate) and {} (the STS audience of the workload identity \
                                 provider); set both, or neither to use the node's identity (provider flag \
                                 --gcp-metadata-identity); see {MIGRATION_GUIDE}",
                                keys::GCP_SERVICE_ACCOUNT,
                                keys::GCP_WORKLOAD_IDENTITY_PROVIDER
                            ),
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        let uid_rotation = match params.get(keys::UID_ROTATION).map(str::trim) {
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
        };
        let token_scope = match params.get(keys::TOKEN_SCOPE) {
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
        };

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
            connection: ConnectionSpec {
                gateways,
                ca_cert_pem,
                ignore_cache,
            },
            auth: AuthSettings {
                access_type,
                access_id: params.get(keys::ACCESS_ID).map(str::to_string),
                k8s_auth_config_name,
                token_audience: params.get(keys::TOKEN_AUDIENCE).map(str::to_string),
                token_scope,
                uid_rotation,
                azure_object_id: params
                    .get(keys::AZURE_OBJECT_ID)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty()),
                azure,
                gcp_audience,
                gcp,
                aws,
            },
            objects,
        })
    }
}

/// `arn:<partition>:iam::<account>:role/<name>`.
fn valid_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && !account.is_empty()
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}

/// The secret half of authentication, bound from one mount request.
#[derive(Debug)]
pub enum Credential {
    AccessKey(SecretString),
    /// A Universal Identity token (`u-…`) from the nodePublishSecretRef (or the parameters):
    /// the start of this identity's rotation chain.
    UidToken(SecretString),
    /// No credential comes with the mount: the provider's own cloud identity (`aws_iam`
    /// without a role, `gcp` without workload identity, `azure_ad` without a client and tenant
    /// ID), usable only when the provider was started with the matching opt-in flag.
    ProviderIdentity,
    /// The mounting pod's service-account token for `audience`.
    PodToken {
        audience: String,
        token: SecretString,
    },
}

/// Everything `/auth` needs for one mount. `Debug` redacts the credential.
#[derive(Debug)]
pub struct Credentials {
    pub access_id: String,
    pub credential: Credential,
}

fn copy_secret(s: &SecretString) -> SecretString {
    SecretString::from(s.expose_secret().to_string())
}

/// Picks the pod token for `audience`, or the only one delivered.
fn select_pod_token(
    tokens: &ServiceAccountTokens,
    audience: Option<&str>,
    access_type: AccessType,
) -> Result<(String, SecretString), String> {
    let how_to_fix = "add a tokenRequests entry (an audience) to the secrets-store.csi.k8s.io CSIDriver \
                      object, e.g. helm --set tokenRequests[0].audience=akeyless on the driver's chart";
    match audience {
        Some(aud) => match tokens.get(aud) {
            Some(t) => Ok((aud.to_string(), copy_secret(&t.token))),
            None if tokens.is_empty() => Err(format!(
                "access type {access_type} needs the pod's service-account token for audience {aud:?}, \
                 but the driver sent no tokens: {how_to_fix}"
            )),
            None => Err(format!(
                "access type {access_type} uses the pod's token for audience {aud:?} (parameter {}, \
                 or the access type's default) but the driver sent tokens only for audiences: {}; \
                 add {aud:?} to the CSIDriver tokenRequests or choose one of these with {}",
                keys::TOKEN_AUDIENCE,
                tokens.audiences().collect::<Vec<_>>().join(", "),
                keys::TOKEN_AUDIENCE
            )),
        },
        None => match tokens.single() {
            Some((aud, t)) => Ok((aud.to_string(), copy_secret(&t.token))),
            None if tokens.is_empty() => Err(format!(
                "access type {access_type} authenticates as the pod, but the driver sent no \
                 service-account token: {how_to_fix}"
            )),
            None => Err(format!(
                "the driver sent tokens for several audiences ({}); choose one with parameter {}",
                tokens.audiences().collect::<Vec<_>>().join(", "),
                keys::TOKEN_AUDIENCE
            )),
        },
    }
}

impl Credentials {
    /// Binds the credentials of one mount. The nodePublishSecretRef is preferred to inline
    /// parameters, because SPCs are readable by namespace users.
    pub fn resolve(
        auth: &AuthSettings,
        params: &Parameters,
        secrets: &NodePublishSecrets,
        tokens: &ServiceAccountTokens,
    ) -> Result<Credentials, SpecErrors> {
        let fail = |key: &str, message: String| {
            SpecErrors(vec![Problem::new(format!("parameters.{key}"), message)])
        };
        let access_id = secrets
            .get(keys::ACCESS_ID)
            .map(|s| s.expose_secret().trim().to_string())
            .or_else(|| auth.access_id.clone())
            .ok_or_else(|| {
                fail(
                    keys::ACCESS_ID,
                    format!(
                        "parameter {} is required (the Akeyless access ID, p-…), in the \
                         SecretProviderClass or the nodePublishSecretRef Secret",
                        keys::ACCESS_ID
                    ),
                )
            })?;
        let secret_or_param = |key: &str| {
            secrets
                .get(key)
                .map(copy_secret)
                .or_else(|| params.get(key).map(|v| SecretString::from(v.to_string())))
        };
        let pod_token = |audience: Option<String>| {
            select_pod_token(tokens, audience.as_deref(), auth.access_type)
                .map(|(audience, token)| Credential::PodToken { audience, token })
                .map_err(|m| fail(keys::TOKEN_AUDIENCE, m))
        };
        let credential = match auth.access_type {
            AccessType::AccessKey => Credential::AccessKey(secret_or_param(keys::ACCESS_KEY).ok_or_else(|| {
                fail(
                    keys::ACCESS_KEY,
                    format!(
                        "access type access_key needs an access key: put it in the Secret named by the \
                         volume's nodePublishSecretRef under key {}",
                        keys::ACCESS_KEY
                    ),
                )
            })?),
            AccessType::UniversalIdentity => {
                let token = secret_or_param(keys::UID_INIT_TOKEN)
                    .map(|t| SecretString::from(t.expose_secret().trim().to_string()))
                    .filter(|t| !t.expose_secret().is_empty());
                Credential::UidToken(token.ok_or_else(|| {
                    fail(
                        keys::UID_INIT_TOKEN,
                        format!(
                            "access type universal_identity needs a Universal Identity token (u-…): put it in \
                             the Secret named by the volume's nodePublishSecretRef under key {}",
                            keys::UID_INIT_TOKEN
                        ),
                    )
                })?)
            }
            AccessType::Kubernetes | AccessType::Jwt => pod_token(auth.pod_token_audience())?,
            AccessType::AzureAd if auth.azure.is_some() => pod_token(auth.pod_token_audience())?,
            // aws_iam without a role and gcp without workload identity use the provider's own
            // identity (only when its flag allows).
            AccessType::AwsIam if auth.aws.as_ref().is_some_and(|a| a.role_arn.is_some()) => {
                pod_token(auth.pod_token_audience())?
            }
            AccessType::Gcp if auth.gcp.is_some() => pod_token(auth.pod_token_audience())?,
            AccessType::AwsIam | AccessType::Gcp | AccessType::AzureAd => {
                Credential::ProviderIdentity
            }
        };
        Ok(Credentials {
            access_id,
            credential,
        })
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
    pub fn bind_to_operator(&mut self, defaults: &SpecDefaults) {
        self.connection.gateways = vec![defaults.gateway_url.trim_end_matches('/').to_string()];
        self.connection.ca_cert_pem = None;
        self.auth.gcp_audience = Some(defaults.provider_gcp_audience.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::request::ServiceAccountToken;

    fn params(pairs: &[(&str, &str)]) -> Parameters {
        Parameters::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn secrets(pairs: &[(&str, &str)]) -> NodePublishSecrets {
        NodePublishSecrets::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
                .collect(),
        )
    }

    fn tokens(auds: &[&str]) -> ServiceAccountTokens {
        ServiceAccountTokens::new(
            auds.iter()
                .map(|a| {
                    (
                        a.to_string(),
                        ServiceAccountToken {
                            token: SecretString::from(format!("jwt-for-{a}")),
                            expiration: None,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        )
    }

    const OBJ: &str = "- secretPath: /a\n";

    fn spec(pairs: &[(&str, &str)]) -> Result<SecretProviderSpec, SpecErrors> {
        SecretProviderSpec::from_parameters(&params(pairs), &SpecDefaults::default())
    }

    #[test]
    fn defaults_and_access_type_inference() {
        let s = spec(&[("objects", OBJ)]).unwrap();
        assert_eq!(s.connection.gateways, vec!["https://api.akeyless.io"]);
        assert_eq!(s.auth.access_type, AccessType::AccessKey);
        let s = spec(&[("objects", OBJ), (keys::K8S_AUTH_CONFIG, "conf")]).unwrap();
        assert_eq!(s.auth.access_type, AccessType::Kubernetes);
    }

    #[test]
    fn azure_cloud_picks_the_arm_scope_and_the_authority() {
        let azure = |extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("objects", OBJ),
                (keys::ACCESS_TYPE, "azure_ad"),
                (keys::AZURE_CLIENT_ID, "c"),
                (keys::AZURE_TENANT_ID, "t"),
            ];
            pairs.extend_from_slice(extra);
            spec(&pairs).map(|s| s.auth.azure.unwrap())
        };
        let public = azure(&[]).unwrap();
        assert_eq!(public.cloud, AzureCloud::Public);
        assert_eq!(public.authority_host, "https://login.microsoftonline.com");
        assert_eq!(
            public.cloud.arm_scope(),
            "https://management.azure.com/.default"
        );
        assert_eq!(
            public.cloud.arm_scope(),
            crate::cloud::azure::ARM_SCOPE,
            "the public cloud keeps today's scope"
        );
        let gov = azure(&[(keys::AZURE_CLOUD, "usgovernment")]).unwrap();
        assert_eq!(gov.cloud, AzureCloud::UsGovernment);
        assert_eq!(gov.authority_host, "https://login.microsoftonline.us");
        assert_eq!(
            gov.cloud.arm_scope(),
            "https://management.usgovcloudapi.net/.default"
        );
        let china = azure(&[(keys::AZURE_CLOUD, "China")]).unwrap();
        assert_eq!(china.cloud, AzureCloud::China);
        assert_eq!(china.authority_host, "https://login.chinacloudapi.cn");
        assert_eq!(
            china.cloud.arm_scope(),
            "https://management.chinacloudapi.cn/.default"
        );
        // Each cloud's authority is one of the always-allowed Azure AD hosts.
        for cloud in [
            AzureCloud::Public,
            AzureCloud::UsGovernment,
            AzureCloud::China,
        ] {
            assert!(AZURE_AUTHORITY_HOSTS.contains(&cloud.authority_host()));
        }
        // The sovereign hosts are accepted as akeylessAzureAuthorityHost without an allow-list
        // entry; an explicit host wins over the cloud's default.
        for host in [
            "https://login.microsoftonline.us",
            "https://login.chinacloudapi.cn/",
        ] {
            let a = azure(&[
                (keys::AZURE_CLOUD, "usgovernment"),
                (keys::AZURE_AUTHORITY_HOST, host),
            ])
            .unwrap();
            assert_eq!(a.authority_host, host.trim_end_matches('/'));
        }
        let e = azure(&[(keys::AZURE_CLOUD, "germany")]).unwrap_err();
        assert_eq!(e.0[0].location, "parameters.akeylessAzureCloud");
        assert!(
            e.to_string().contains("public, usgovernment or china"),
            "{e}"
        );
    }

    #[test]
    fn uid_rotation_parameter() {
        let uid = |extra: &[(&str, &str)]| {
            let mut pairs = vec![("objects", OBJ), (keys::ACCESS_TYPE, "universal_identity")];
            pairs.extend_from_slice(extra);
            spec(&pairs).map(|s| s.auth.uid_rotation)
        };
        assert_eq!(uid(&[]).unwrap(), UidRotation::None);
        assert_eq!(
            uid(&[(keys::UID_ROTATION, "none")]).unwrap(),
            UidRotation::None
        );
        assert_eq!(
            uid(&[(keys::UID_ROTATION, "fork")]).unwrap(),
            UidRotation::Fork
        );
        let e = uid(&[(keys::UID_ROTATION, "always")]).unwrap_err();
        assert_eq!(e.0[0].location, "parameters.akeylessUIDRotation");
        assert!(e.to_string().contains("use none"), "{e}");
    }

    #[test]
    fn gateway_failover_list() {
        let s = spec(&[
            ("objects", OBJ),
            (
                keys::GATEWAY_URL,
                "https://gw1:8000/api/v2/, http://127.0.0.1:8081",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.connection.gateways,
            vec!["https://gw1:8000/api/v2", "http://127.0.0.1:8081"]
        );
        assert!(spec(&[("objects", OBJ), (keys::GATEWAY_URL, "ftp://x")]).is_err());
    }

    #[test]
    fn parameter_problems_name_the_key() {
        let e = spec(&[
            ("objects", OBJ),
            (keys::ACCESS_TYPE, "password"),
            ("akeylessAccessId", "typo"),
            (keys::IGNORE_CACHE, "yes"),
            (keys::CA_CERT, "not pem"),
        ])
        .unwrap_err();
        let locations: Vec<&str> = e.0.iter().map(|p| p.location.as_str()).collect();
        assert!(locations.contains(&"parameters.akeylessAccessType"), "{e}");
        assert!(locations.contains(&"parameters.akeylessAccessId"), "{e}");
        assert!(locations.contains(&"parameters.akeylessIgnoreCache"), "{e}");
        assert!(locations.contains(&"parameters.akeylessCACert"), "{e}");
        assert!(e.to_string().contains("use one of: access_key, k8s"));
        let e = spec(&[(keys::ACCESS_TYPE, "k8s"), ("objects", OBJ)]).unwrap_err();
        assert!(e.to_string().contains(keys::K8S_AUTH_CONFIG));
        let e = spec(&[]).unwrap_err();
        assert!(e.to_string().contains("parameter objects is required"));
    }

    #[test]
    fn access_key_prefers_node_publish_secret() {
        let p = params(&[
            ("objects", OBJ),
            (keys::ACCESS_ID, "p-1"),
            (keys::ACCESS_KEY, "inline"),
        ]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let c = Credentials::resolve(
            &s.auth,
            &p,
            &secrets(&[(keys::ACCESS_KEY, "fromref")]),
            &tokens(&[]),
        )
        .unwrap();
        let Credential::AccessKey(k) = c.credential else {
            panic!()
        };
        assert_eq!(k.expose_secret(), "fromref");
        let c = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap();
        let Credential::AccessKey(k) = c.credential else {
            panic!()
        };
        assert_eq!(k.expose_secret(), "inline");
    }

    #[test]
    fn missing_credentials_are_invalid_config() {
        let p = params(&[("objects", OBJ)]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let e = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap_err();
        assert!(e.to_string().contains(keys::ACCESS_ID), "{e}");
        let p = params(&[("objects", OBJ), (keys::ACCESS_ID, "p-1")]);
        let e = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap_err();
        assert!(e.to_string().contains("nodePublishSecretRef"), "{e}");
    }

    #[test]
    fn pod_token_selection() {
        let p = params(&[
            ("objects", OBJ),
            (keys::ACCESS_ID, "p-1"),
            (keys::K8S_AUTH_CONFIG, "c"),
        ]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let none = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap_err();
        assert!(none.to_string().contains("tokenRequests"), "{none}");
        let many =
            Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["a", "b"])).unwrap_err();
        assert!(many.to_string().contains("a, b"), "{many}");
        let one = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["a"])).unwrap();
        assert!(
            matches!(one.credential, Credential::PodToken { ref audience, .. } if audience == "a")
        );

        let p = params(&[
            ("objects", OBJ),
            (keys::ACCESS_ID, "p-1"),
            (keys::K8S_AUTH_CONFIG, "c"),
            (keys::TOKEN_AUDIENCE, "b"),
        ]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let chosen =
            Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["a", "b"])).unwrap();
        let Credential::PodToken { audience, token } = chosen.credential else {
            panic!()
        };
        assert_eq!(
            (audience.as_str(), token.expose_secret()),
            ("b", "jwt-for-b")
        );
        let missing =
            Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["a"])).unwrap_err();
        assert!(
            missing.to_string().contains("only for audiences: a"),
            "{missing}"
        );
    }

    #[test]
    fn universal_identity_token_from_secret_or_parameter() {
        let p = params(&[
            ("objects", OBJ),
            (keys::ACCESS_ID, "p-1"),
            (keys::ACCESS_TYPE, "universal_identity"),
            (keys::UID_INIT_TOKEN, "u-inline"),
        ]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let from_ref = Credentials::resolve(
            &s.auth,
            &p,
            &secrets(&[(keys::UID_INIT_TOKEN, "u-fromref\n")]),
            &tokens(&[]),
        )
        .unwrap();
        let Credential::UidToken(t) = from_ref.credential else {
            panic!()
        };
        assert_eq!(t.expose_secret(), "u-fromref");
        let inline = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap();
        assert!(
            matches!(inline.credential, Credential::UidToken(ref t) if t.expose_secret() == "u-inline")
        );
        let p = params(&[
            ("objects", OBJ),
            (keys::ACCESS_ID, "p-1"),
            (keys::ACCESS_TYPE, "universal_identity"),
        ]);
        let e = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap_err();
        assert_eq!(e.0[0].location, "parameters.akeylessUIDInitToken", "{e}");
        assert!(e.to_string().contains("nodePublishSecretRef"), "{e}");
    }

    #[test]
    fn aws_iam_role_region_and_token_audience() {
        let base = [
            ("objects", OBJ),
            (keys::ACCESS_ID, "p-1"),
            (keys::ACCESS_TYPE, "aws_iam"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            params(&all)
        };
        let p = with(&[(keys::AWS_ROLE_ARN, "arn:aws:iam::123456789012:role/app")]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let aws = s.auth.aws.clone().unwrap();
        assert_eq!(aws.region, AWS_DEFAULT_REGION);
        // The IRSA audience is chosen among several tokens without akeylessTokenAudience.
        let c = Credentials::resolve(
            &s.auth,
            &p,
            &secrets(&[]),
            &tokens(&["akeyless", AWS_TOKEN_AUDIENCE]),
        )
        .unwrap();
        assert!(
            matches!(c.credential, Credential::PodToken { ref audience, .. } if audience == AWS_TOKEN_AUDIENCE)
        );
        let e =
            Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["akeyless"])).unwrap_err();
        assert!(e.to_string().contains("sts.amazonaws.com"), "{e}");
        // Without a role: the provider's identity (allowed only by a provider flag, at login).
        let p = with(&[]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let c = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap();
        assert!(matches!(c.credential, Credential::ProviderIdentity));
        let e = SecretProviderSpec::from_parameters(
            &with(&[
                (keys::AWS_ROLE_ARN, "arn:aws:iam::123:user/bob"),
                (keys::AWS_REGION, "US East"),
            ]),
            &SpecDefaults::default(),
        )
        .unwrap_err();
        let locations: Vec<&str> = e.0.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "parameters.akeylessAWSRoleARN",
                "parameters.akeylessAWSRegion"
            ],
            "{e}"
        );
    }

    #[test]
    fn gcp_workload_identity_settings_and_token_audience() {
        const GSA: &str = "app@proj.iam.gserviceaccount.com";
        const POOL: &str = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/c1";
        const GKE: &str = "identitynamespace:proj.svc.id.goog:https://container.googleapis.com/v1/projects/proj/locations/eu/clusters/c1";
        let base = [
            ("objects", OBJ),
            (keys::ACCESS_ID, "p-1"),
            (keys::ACCESS_TYPE, "gcp"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            params(&all)
        };
        let resolve = |p: &Parameters, auds: &[&str]| {
            let s = SecretProviderSpec::from_parameters(p, &SpecDefaults::default()).unwrap();
            Credentials::resolve(&s.auth, p, &secrets(&[]), &tokens(auds))
        };
        let audience_of = |c: Credentials| match c.credential {
            Credential::PodToken { audience, .. } => audience,
            other => panic!("not a pod token: {other:?}"),
        };
        // GKE: the identity namespace is the default token audience, picked among several.
        let p = with(&[
            (keys::GCP_SERVICE_ACCOUNT, GSA),
            (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, GKE),
        ]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        assert_eq!(
            s.auth.gcp,
            Some(GcpWorkloadIdentity {
                service_account: GSA.into(),
                provider: GKE.into()
            })
        );
        let c = resolve(&p, &["akeyless", "proj.svc.id.goog"]).unwrap();
        assert_eq!(audience_of(c), "proj.svc.id.goog");
        let e = resolve(&p, &["akeyless"]).unwrap_err();
        assert!(e.to_string().contains("proj.svc.id.goog"), "{e}");
        // A pool provider: https://iam.googleapis.com/… unless akeylessTokenAudience says otherwise.
        let p = with(&[
            (keys::GCP_SERVICE_ACCOUNT, GSA),
            (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, POOL),
        ]);
        let pool_aud = "https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/c1";
        let c = resolve(&p, &["akeyless", pool_aud]).unwrap();
        assert_eq!(audience_of(c), pool_aud);
        let chosen = with(&[
            (keys::GCP_SERVICE_ACCOUNT, GSA),
            (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, POOL),
            (keys::TOKEN_AUDIENCE, "custom"),
        ]);
        let c = resolve(&chosen, &["custom", pool_aud]).unwrap();
        assert_eq!(audience_of(c), "custom");
        // Neither: the node's identity (allowed only by a provider flag, at login).
        let c = resolve(&with(&[]), &["akeyless"]).unwrap();
        assert!(matches!(c.credential, Credential::ProviderIdentity));
        // One without the other, and malformed values, name the parameter.
        for (extra, location, hint) in [
            (
                vec![(keys::GCP_SERVICE_ACCOUNT, GSA)],
                "parameters.akeylessGCPServiceAccount",
                "set both",
            ),
            (
                vec![(keys::GCP_WORKLOAD_IDENTITY_PROVIDER, POOL)],
                "parameters.akeylessGCPServiceAccount",
                "akeylessGCPWorkloadIdentityProvider",
            ),
            (
                vec![
                    (keys::GCP_SERVICE_ACCOUNT, "app/../x"),
                    (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, POOL),
                ],
                "parameters.akeylessGCPServiceAccount",
                "iam.gserviceaccount.com",
            ),
            (
                vec![
                    (keys::GCP_SERVICE_ACCOUNT, GSA),
                    (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, "projects/123/pools/x"),
                ],
                "parameters.akeylessGCPWorkloadIdentityProvider",
                "//iam.googleapis.com/projects/PROJECT_NUMBER",
            ),
        ] {
            let e = SecretProviderSpec::from_parameters(&with(&extra), &SpecDefaults::default())
                .unwrap_err();
            assert_eq!(e.0.len(), 1, "{e}");
            assert_eq!(e.0[0].location, location, "{e}");
            assert!(e.0[0].message.contains(hint), "{e}");
        }
    }

    #[test]
    fn azure_ad_as_the_pod_or_as_the_node() {
        const OID: &str = "5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b13";
        let base = [
            ("objects", OBJ),
            (keys::ACCESS_ID, "p-1"),
            (keys::ACCESS_TYPE, "azure_ad"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            params(&all)
        };
        // The existing provider's AKS shape: the node's identity (a provider flag decides).
        let p = with(&[(keys::AZURE_OBJECT_ID, OID)]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        assert_eq!(
            (s.auth.azure.as_ref(), s.auth.azure_object_id.as_deref()),
            (None, Some(OID))
        );
        assert_eq!(s.auth.pod_token_audience(), None);
        let c = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["akeyless"])).unwrap();
        assert!(matches!(c.credential, Credential::ProviderIdentity));
        // Both per-pod parameters: the pod's token.
        let p = with(&[
            (keys::AZURE_CLIENT_ID, "c"),
            (keys::AZURE_TENANT_ID, "t"),
            (keys::AZURE_OBJECT_ID, OID),
        ]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let c = Credentials::resolve(
            &s.auth,
            &p,
            &secrets(&[]),
            &tokens(&["akeyless", AZURE_TOKEN_AUDIENCE]),
        )
        .unwrap();
        assert!(
            matches!(c.credential, Credential::PodToken { ref audience, .. } if audience == AZURE_TOKEN_AUDIENCE)
        );
        // One of them, or an object ID that is not a GUID, names the parameter.
        for (extra, location, hint) in [
            (
                vec![(keys::AZURE_CLIENT_ID, "c")],
                "parameters.akeylessAzureClientID",
                "--azure-provider-identity",
            ),
            (
                vec![(keys::AZURE_TENANT_ID, "t")],
                "parameters.akeylessAzureClientID",
                MIGRATION_GUIDE,
            ),
            (
                vec![(keys::AZURE_OBJECT_ID, "x&resource=evil")],
                "parameters.akeylessAzureObjectID",
                "GUID",
            ),
        ] {
            let e = SecretProviderSpec::from_parameters(&with(&extra), &SpecDefaults::default())
                .unwrap_err();
            assert_eq!(e.0.len(), 1, "{e}");
            assert_eq!(e.0[0].location, location, "{e}");
            assert!(e.0[0].message.contains(hint), "{e}");
        }
        // Other access types ignore the object ID, as before.
        assert!(spec(&[("objects", OBJ), (keys::AZURE_OBJECT_ID, "whatever")]).is_ok());
    }

    #[test]
    fn provider_identity_messages_name_both_ways_forward() {
        for (flag, per_pod) in [
            (ProviderIdentityFlag::Aws, &[keys::AWS_ROLE_ARN][..]),
            (
                ProviderIdentityFlag::Gcp,
                &[
                    keys::GCP_SERVICE_ACCOUNT,
                    keys::GCP_WORKLOAD_IDENTITY_PROVIDER,
                ][..],
            ),
            (
                ProviderIdentityFlag::Azure,
                &[keys::AZURE_CLIENT_ID, keys::AZURE_TENANT_ID][..],
            ),
        ] {
            for text in [flag.warning(), flag.refusal()] {
                for needle in per_pod.iter().chain(&[flag.flag(), MIGRATION_GUIDE]) {
                    assert!(text.contains(needle), "{needle} missing: {text}");
                }
            }
            // The API server cuts warnings after 256 characters (location included).
            let line = format!("spec.parameters.{}: {}", keys::ACCESS_TYPE, flag.warning());
            assert!(line.chars().count() <= 256, "{} chars: {line}", line.len());
            assert!(flag.refusal().contains(flag.chart_value()));
        }
        assert!(is_azure_guid("5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b13"));
        assert!(!is_azure_guid("5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b1"));
        assert!(!is_azure_guid("5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b1g"));
    }

    #[test]
    fn credentials_debug_redacts() {
        let p = params(&[("objects", OBJ), (keys::ACCESS_ID, "p-1")]);
        let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
        let c = Credentials::resolve(
            &s.auth,
            &p,
            &secrets(&[(keys::ACCESS_KEY, "topsecret")]),
            &tokens(&[]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
