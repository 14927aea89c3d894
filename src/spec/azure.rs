//! The `azure_ad` auth family: AKS workload identity (the pod) or the node's managed identity.

use super::{
    MIGRATION_GUIDE, Problem, ProviderIdentityFlag, SpecDefaults, keys, normalize_gateway_url,
    param_problem, trimmed_param,
};
use crate::request::Parameters;

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
    pub(crate) const ACCEPTED: &'static str = "public, usgovernment or china";

    pub(crate) fn parse(value: &str) -> Option<AzureCloud> {
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
    pub(crate) fn arm_scope(self) -> &'static str {
        match self {
            AzureCloud::Public => "https://management.azure.com/.default",
            AzureCloud::UsGovernment => "https://management.usgovcloudapi.net/.default",
            AzureCloud::China => "https://management.chinacloudapi.cn/.default",
        }
    }

    /// This cloud's Azure AD authority host (one of [`AZURE_AUTHORITY_HOSTS`]).
    pub(crate) fn authority_host(self) -> &'static str {
        match self {
            AzureCloud::Public => AZURE_PUBLIC_AUTHORITY,
            AzureCloud::UsGovernment => "https://login.microsoftonline.us",
            AzureCloud::China => "https://login.chinacloudapi.cn",
        }
    }
}

/// Azure AD's authority host in the public cloud (the default).
pub(crate) const AZURE_PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Azure AD's authority hosts (public cloud first, then US Government and China), always
/// allowed as `akeylessAzureAuthorityHost`.
pub(crate) const AZURE_AUTHORITY_HOSTS: &[&str] = &[
    AZURE_PUBLIC_AUTHORITY,
    "https://login.microsoftonline.us",
    "https://login.chinacloudapi.cn",
];

/// The audience Azure AD expects on a federated service-account token.
pub(crate) const AZURE_TOKEN_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A GUID as Azure writes object, client and tenant IDs (`8-4-4-4-12` hex digits).
pub(crate) fn is_azure_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Parses the `azure_ad` parameters; `None`: the node's managed identity.
pub(super) fn parse(
    params: &Parameters,
    defaults: &SpecDefaults,
    problems: &mut Vec<Problem>,
) -> Option<AzureWorkloadIdentity> {
    let (client_id, tenant_id) = parse_identity(params, problems);
    let cloud = parse_cloud(params, problems);
    let authority_host = parse_authority_host(params, defaults, cloud, problems);
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

/// The client and tenant IDs of the pod's workload identity (both or neither), and a check of
/// `akeylessAzureObjectID` (the node's user-assigned identity).
fn parse_identity(
    params: &Parameters,
    problems: &mut Vec<Problem>,
) -> (Option<String>, Option<String>) {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    let get = |key: &str| trimmed_param(params, key);
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
    (client_id, tenant_id)
}

/// `akeylessAzureCloud` (default public).
fn parse_cloud(params: &Parameters, problems: &mut Vec<Problem>) -> AzureCloud {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    match params.get(keys::AZURE_CLOUD) {
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
    }
}

/// `akeylessAzureAuthorityHost`: an Azure AD authority or a host the operator allows; else the cloud's own.
fn parse_authority_host(
    params: &Parameters,
    defaults: &SpecDefaults,
    cloud: AzureCloud,
    problems: &mut Vec<Problem>,
) -> String {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    match params.get(keys::AZURE_AUTHORITY_HOST) {
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
    }
}
