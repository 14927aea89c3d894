//! Azure AD workload identity (AKS): the pod's service-account token, minted for the audience
//! `api://AzureADTokenExchange`, is presented to Azure AD as a client assertion of the app it
//! federates with; Azure AD answers with an ARM access token, and Akeyless's `azure_ad` auth
//! takes `cloud-id` = base64(that token). The pod's own identity, never the provider's.

use base64::Engine;
use serde::Deserialize;

use crate::secret::{ExposeSecret, SecretString};
use crate::spec::AzureWorkloadIdentity;

/// The resource Akeyless expects the Azure token for, in the public cloud (other clouds:
/// [`crate::spec::AzureCloud::arm_scope`], chosen by `akeylessAzureCloud`).
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Why the exchange failed, in words a user can act on (never a token).
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error(
        "Azure AD at {authority} refused the pod's token ({status}: {error}); check that the service account's federated credential on app {client_id} matches this pod's namespace and service account, and that the CSIDriver requests the audience api://AzureADTokenExchange"
    )]
    Refused {
        authority: String,
        client_id: String,
        status: u16,
        error: String,
    },
    #[error("cannot reach Azure AD at {authority}: {detail}")]
    Unreachable { authority: String, detail: String },
    #[error("unexpected answer from Azure AD at {authority}")]
    BadResponse { authority: String },
}

/// Exchanges the pod's token for an ARM access token and returns Akeyless's `cloud-id`.
pub async fn cloud_id(
    http: &reqwest::Client,
    identity: &AzureWorkloadIdentity,
    pod_token: &SecretString,
) -> Result<SecretString, AzureError> {
    let authority = identity.authority_host.trim_end_matches('/').to_string();
    let url = format!("{authority}/{}/oauth2/v2.0/token", identity.tenant_id);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &identity.client_id)
        .append_pair("scope", identity.cloud.arm_scope())
        .append_pair(
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )
        .append_pair("client_assertion", pod_token.expose_secret())
        .finish();
    let response = http
        .post(&url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form)
        .send()
        .await
        .map_err(|e| AzureError::Unreachable {
            authority: authority.clone(),
            detail: e.without_url().to_string(),
        })?;
    let status = response.status().as_u16();
    let bytes = super::read_body(response)
        .await
        .map_err(|detail| AzureError::Unreachable {
            authority: authority.clone(),
            detail,
        })?;
    if !(200..300).contains(&status) {
        let error = serde_json::from_slice::<ErrorResponse>(&bytes)
            .map(|e| crate::akeyless::scrub(&format!("{} {}", e.error, e.error_description)))
            .unwrap_or_else(|_| "no error description".into());
        return Err(AzureError::Refused {
            authority,
            client_id: identity.client_id.clone(),
            status,
            error,
        });
    }
    let token: TokenResponse =
        serde_json::from_slice(&bytes).map_err(|_| AzureError::BadResponse { authority })?;
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(token.access_token.expose_secret()),
    ))
}
