//! The operator flags that let a cloud access type authenticate as the node, and the messages
//! that explain them.

use super::{AWS_TOKEN_AUDIENCE, AZURE_TOKEN_AUDIENCE, AccessType, keys};

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
    pub(crate) fn for_access_type(access_type: AccessType) -> Option<Self> {
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
    pub(crate) fn warning(self) -> String {
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
    pub(crate) fn refusal(self) -> String {
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
