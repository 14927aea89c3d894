//! Cloud identity exchanges: turning the mounting pod's service-account token into the cloud
//! credential Akeyless verifies (`cloud-id`). Each cloud keeps its protocol in its own module.
//! Paths that use the provider's own cloud identity instead of the pod's are opt-in flags
//! ([`CloudArgs`]), logged at start. The endpoints of the pod's exchanges are flags too.

pub mod aws;
pub mod azure;
pub mod gcp;
pub use sigv4;

use clap::Args;

/// Largest answer read from a cloud token service (their tokens are a few kilobytes). Some of
/// these hosts are chosen by an SPC (e.g. `akeylessAzureAuthorityHost`), so nothing is
/// buffered without bound.
pub(crate) const MAX_CLOUD_RESPONSE_BYTES: usize = 256 * 1024;

/// Reads a cloud service's answer; a larger one than [`MAX_CLOUD_RESPONSE_BYTES`] is refused.
/// The error is a transport detail (no body content).
pub(crate) async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len().saturating_add(chunk.len()) > MAX_CLOUD_RESPONSE_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_CLOUD_RESPONSE_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Provider flags for cloud identities.
#[derive(Args, Debug, Clone)]
pub struct CloudArgs {
    /// AWS STS endpoint for AssumeRoleWithWebIdentity (aws_iam with akeylessAWSRoleARN).
    /// Default: the regional endpoint https://sts.<akeylessAWSRegion>.amazonaws.com/.
    #[arg(long, env = "AKEYLESS_CSI_AWS_STS_ENDPOINT")]
    pub aws_sts_endpoint: Option<String>,
    /// Let aws_iam SPCs without akeylessAWSRoleARN sign with the provider's own AWS
    /// credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, read at start).
    /// Every such pod then authenticates as the provider, not as itself. Off by default.
    #[arg(long, env = "AKEYLESS_CSI_AWS_PROVIDER_CREDENTIALS")]
    pub aws_provider_credentials: bool,
    /// Let gcp SPCs authenticate with the ID token of the node's (the provider's) Google
    /// service account from the metadata server. Every such pod then authenticates as the
    /// provider, not as itself. Off by default.
    #[arg(long, env = "AKEYLESS_CSI_GCP_METADATA_IDENTITY")]
    pub gcp_metadata_identity: bool,
    /// Audience of the node's Google ID token under --gcp-metadata-identity. The SPC's
    /// akeylessGCPAudience (and akeylessGatewayURL) are ignored for the node's identity: it is
    /// only ever sent to --akeyless-url, for this audience.
    #[arg(long, env = "AKEYLESS_CSI_GCP_METADATA_AUDIENCE", default_value = crate::spec::GCP_DEFAULT_AUDIENCE)]
    pub gcp_metadata_audience: String,
    /// Base URL of the GCP metadata server.
    #[arg(long, env = "AKEYLESS_CSI_GCP_METADATA_URL", default_value = gcp::DEFAULT_METADATA_URL)]
    pub gcp_metadata_url: String,
    /// Google STS, where gcp SPCs with akeylessGCPWorkloadIdentityProvider exchange the pod's
    /// token (POST <endpoint>/v1/token).
    #[arg(long, env = "AKEYLESS_CSI_GCP_STS_ENDPOINT", default_value = gcp::DEFAULT_STS_URL)]
    pub gcp_sts_endpoint: String,
    /// Google IAM Credentials, where the pod's federated token asks for an ID token of
    /// akeylessGCPServiceAccount (POST <endpoint>/v1/projects/-/serviceAccounts/…:generateIdToken).
    #[arg(
        long,
        env = "AKEYLESS_CSI_GCP_IAM_CREDENTIALS_ENDPOINT",
        default_value = gcp::DEFAULT_IAM_CREDENTIALS_URL
    )]
    pub gcp_iam_credentials_endpoint: String,
    /// Let azure_ad SPCs without akeylessAzureClientID/akeylessAzureTenantID authenticate with
    /// a token of the node's managed identity from Azure IMDS (akeylessAzureObjectID, or
    /// --azure-imds-client-id, selects a user-assigned one). Every such pod then authenticates
    /// as the node, not as itself. Off by default.
    #[arg(long, env = "AKEYLESS_CSI_AZURE_PROVIDER_IDENTITY")]
    pub azure_provider_identity: bool,
    /// Base URL of Azure IMDS (the Instance Metadata Service) under --azure-provider-identity.
    #[arg(long, env = "AKEYLESS_CSI_AZURE_IMDS_URL", default_value = azure::DEFAULT_IMDS_URL)]
    pub azure_imds_url: String,
    /// Resource of the node's token under --azure-provider-identity (Azure Resource Manager;
    /// set it for sovereign clouds). The token is only ever sent to --akeyless-url.
    #[arg(long, env = "AKEYLESS_CSI_AZURE_IMDS_RESOURCE", default_value = azure::DEFAULT_IMDS_RESOURCE)]
    pub azure_imds_resource: String,
    /// Client ID of the user-assigned identity IMDS answers for when an SPC sets no
    /// akeylessAzureObjectID (e.g. the AKS kubelet identity). Default: the VM's only identity.
    #[arg(long, env = "AKEYLESS_CSI_AZURE_IMDS_CLIENT_ID")]
    pub azure_imds_client_id: Option<String>,
}

impl Default for CloudArgs {
    fn default() -> Self {
        CloudArgs {
            aws_sts_endpoint: None,
            aws_provider_credentials: false,
            gcp_metadata_identity: false,
            gcp_metadata_audience: crate::spec::GCP_DEFAULT_AUDIENCE.to_string(),
            gcp_metadata_url: gcp::DEFAULT_METADATA_URL.to_string(),
            gcp_sts_endpoint: gcp::DEFAULT_STS_URL.to_string(),
            gcp_iam_credentials_endpoint: gcp::DEFAULT_IAM_CREDENTIALS_URL.to_string(),
            azure_provider_identity: false,
            azure_imds_url: azure::DEFAULT_IMDS_URL.to_string(),
            azure_imds_resource: azure::DEFAULT_IMDS_RESOURCE.to_string(),
            azure_imds_client_id: None,
        }
    }
}

/// The cloud settings of the running provider.
#[derive(Clone, Debug, Default)]
pub(crate) struct CloudOptions {
    /// `None`: the regional STS endpoint.
    pub aws_sts_endpoint: Option<String>,
    /// The provider's own AWS credentials, only when opted in.
    pub aws_provider_credentials: Option<aws::AwsCredentials>,
    /// The metadata server's base URL, only when opted in.
    pub gcp_metadata_url: Option<String>,
    /// Google STS and IAM Credentials, for `gcp` as the pod.
    pub google: gcp::GoogleEndpoints,
    /// Azure IMDS and the node token's resource, only when opted in.
    pub azure_imds: Option<azure::ImdsSettings>,
}

impl CloudArgs {
    /// Validates the flags and reads opted-in credentials; logs every opt-in.
    pub(crate) fn options(&self) -> Result<CloudOptions, String> {
        let aws_sts_endpoint = match &self.aws_sts_endpoint {
            Some(url) => Some(
                crate::spec::normalize_gateway_url(url)
                    .map_err(|e| format!("--aws-sts-endpoint {e}"))?,
            ),
            None => None,
        };
        let aws_provider_credentials = if self.aws_provider_credentials {
            let creds = aws::AwsCredentials::from_env()?;
            tracing::warn!(
                "--aws-provider-credentials: aws_iam SPCs without akeylessAWSRoleARN authenticate to Akeyless with the provider's own AWS identity, not the pod's"
            );
            Some(creds)
        } else {
            None
        };
        let gcp_metadata_url = if self.gcp_metadata_identity {
            let url = crate::spec::normalize_gateway_url(&self.gcp_metadata_url)
                .map_err(|e| format!("--gcp-metadata-url {e}"))?;
            tracing::warn!(
                metadata_url = %url,
                "--gcp-metadata-identity: gcp SPCs authenticate to Akeyless with the node's (the provider's) Google identity, not the pod's"
            );
            Some(url)
        } else {
            None
        };
        let google = gcp::GoogleEndpoints {
            sts: crate::spec::normalize_gateway_url(&self.gcp_sts_endpoint)
                .map_err(|e| format!("--gcp-sts-endpoint {e}"))?,
            iam_credentials: crate::spec::normalize_gateway_url(&self.gcp_iam_credentials_endpoint)
                .map_err(|e| format!("--gcp-iam-credentials-endpoint {e}"))?,
        };
        let azure_imds = if self.azure_provider_identity {
            let url = crate::spec::normalize_gateway_url(&self.azure_imds_url)
                .map_err(|e| format!("--azure-imds-url {e}"))?;
            let resource = self.azure_imds_resource.trim().to_string();
            if url::Url::parse(&resource).is_err() {
                return Err(format!(
                    "--azure-imds-resource {resource:?} is not a URL (e.g. {})",
                    azure::DEFAULT_IMDS_RESOURCE
                ));
            }
            let client_id = self
                .azure_imds_client_id
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if let Some(c) = &client_id
                && !crate::spec::is_azure_guid(c)
            {
                return Err(format!(
                    "--azure-imds-client-id {c:?} is not a client ID (a GUID such as 00000000-0000-0000-0000-000000000000)"
                ));
            }
            tracing::warn!(
                imds_url = %url,
                resource = %resource,
                "--azure-provider-identity: azure_ad SPCs without akeylessAzureClientID/akeylessAzureTenantID authenticate to Akeyless with the node's managed identity, not the pod's"
            );
            Some(azure::ImdsSettings {
                url,
                resource,
                client_id,
            })
        } else {
            None
        };
        Ok(CloudOptions {
            aws_sts_endpoint,
            aws_provider_credentials,
            gcp_metadata_url,
            google,
            azure_imds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_endpoints_default_and_are_validated() {
        let options = CloudArgs::default().options().unwrap();
        assert_eq!(options.google, gcp::GoogleEndpoints::default());
        assert_eq!(options.google.sts, "https://sts.googleapis.com");
        assert_eq!(
            options.gcp_metadata_url, None,
            "the node's identity stays opt-in"
        );
        let args = CloudArgs {
            gcp_sts_endpoint: "http://127.0.0.1:8080/".into(),
            ..CloudArgs::default()
        };
        assert_eq!(args.options().unwrap().google.sts, "http://127.0.0.1:8080");
        let bad = CloudArgs {
            gcp_iam_credentials_endpoint: "ftp://x".into(),
            ..CloudArgs::default()
        };
        let e = bad.options().unwrap_err();
        assert!(e.starts_with("--gcp-iam-credentials-endpoint"), "{e}");
    }

    #[test]
    fn azure_provider_identity_is_opt_in_and_validated() {
        assert_eq!(CloudArgs::default().options().unwrap().azure_imds, None);
        let on = CloudArgs {
            azure_provider_identity: true,
            azure_imds_url: "http://127.0.0.1:9/".into(),
            azure_imds_client_id: Some("0b1c2d3e-0000-4000-8000-00000000000a".into()),
            ..CloudArgs::default()
        };
        assert_eq!(
            on.options().unwrap().azure_imds,
            Some(azure::ImdsSettings {
                url: "http://127.0.0.1:9".into(),
                resource: azure::DEFAULT_IMDS_RESOURCE.into(),
                client_id: Some("0b1c2d3e-0000-4000-8000-00000000000a".into()),
            })
        );
        for (bad, flag) in [
            (
                CloudArgs {
                    azure_imds_url: "ftp://x".into(),
                    ..on.clone()
                },
                "--azure-imds-url",
            ),
            (
                CloudArgs {
                    azure_imds_resource: "management".into(),
                    ..on.clone()
                },
                "--azure-imds-resource",
            ),
            (
                CloudArgs {
                    azure_imds_client_id: Some("me&resource=x".into()),
                    ..on.clone()
                },
                "--azure-imds-client-id",
            ),
        ] {
            let e = bad.options().unwrap_err();
            assert!(e.starts_with(flag), "{e}");
        }
    }
}
