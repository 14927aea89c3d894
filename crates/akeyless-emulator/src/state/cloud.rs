//! Identities of the emulated cloud services: Azure AD apps and the node's managed identities,
//! AWS roles and users, the GCP node account and workload identity impersonation.

use super::handle::EmulatorState;
use super::records::{AwsKey, AzureApp, NodeIdentity};

impl EmulatorState {
    /// Registers an app in the emulated Azure AD (at `<emulator>/azure-ad`) with a federated
    /// credential for `namespace/service_account`, as AKS workload identity sets up.
    pub fn add_azure_app(
        &self,
        tenant_id: &str,
        client_id: &str,
        object_id: &str,
        namespace: &str,
        service_account: &str,
    ) {
        self.lock().azure_apps.insert(
            client_id.to_owned(),
            AzureApp {
                tenant_id: tenant_id.to_owned(),
                object_id: object_id.to_owned(),
                subject: format!("system:serviceaccount:{namespace}:{service_account}"),
            },
        );
    }

    /// Assigns a managed identity to the node the emulated Azure IMDS (at
    /// `<emulator>/metadata/identity/oauth2/token`) runs on: the system-assigned one when
    /// `client_id` is `None`, else a user-assigned one.
    pub fn add_azure_node_identity(
        &self,
        tenant_id: &str,
        object_id: &str,
        client_id: Option<&str>,
    ) {
        self.lock().azure_node_identities.push(NodeIdentity {
            tenant_id: tenant_id.to_owned(),
            object_id: object_id.to_owned(),
            client_id: client_id.map(str::to_owned),
        });
    }

    /// Registers an IAM role in the emulated STS (at `<emulator>/aws-sts`) whose trust policy
    /// admits web-identity tokens of `namespace/service_account` for audience `sts.amazonaws.com`.
    pub fn add_aws_role(&self, role_arn: &str, namespace: &str, service_account: &str) {
        self.lock().aws_roles.insert(
            role_arn.to_owned(),
            format!("system:serviceaccount:{namespace}:{service_account}"),
        );
    }

    /// Registers long-lived AWS credentials (an IAM user) acting as `arn`.
    pub fn add_aws_user(&self, access_key_id: &str, secret_access_key: &str, arn: &str) {
        self.lock().aws_keys.insert(
            access_key_id.to_owned(),
            AwsKey {
                secret_access_key: secret_access_key.to_owned(),
                session_token: None,
                arn: arn.to_owned(),
            },
        );
    }

    /// The Google service account the emulated metadata server (at
    /// `<emulator>/computeMetadata/v1/...`) issues ID tokens for; none: it answers 404.
    pub fn set_gcp_node_service_account(&self, email: &str) {
        self.lock().gcp_node_account = Some(email.to_owned());
    }

    /// Lets pods of `namespace/service_account`, federated through `provider_audience`, get ID
    /// tokens of the Google service account `gsa_email` from the emulated IAM Credentials
    /// (`roles/iam.workloadIdentityUser` on it). Registers the provider with its default token
    /// audience if it is unknown.
    pub fn allow_gcp_impersonation(
        &self,
        provider_audience: &str,
        namespace: &str,
        service_account: &str,
        gsa_email: &str,
    ) {
        let mut data = self.lock();
        data.gcp_providers
            .entry(provider_audience.to_owned())
            .or_default();
        data.gcp_impersonation.push((
            provider_audience.to_owned(),
            namespace.to_owned(),
            service_account.to_owned(),
            gsa_email.to_owned(),
        ));
    }

    /// Every federated access token and ID token the emulated Google issued (for tests that
    /// check none leaks).
    pub fn gcp_tokens_issued(&self) -> Vec<String> {
        let data = self.lock();
        data.gcp_access_tokens
            .keys()
            .chain(data.gcp_id_tokens.iter())
            .cloned()
            .collect()
    }
}
