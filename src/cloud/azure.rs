//! Azure AD workload identity (AKS): the pod's service-account token, minted for the audience
//! `api://AzureADTokenExchange`, is presented to Azure AD as a client assertion of the app it
//! federates with; Azure AD answers with an ARM access token, and Akeyless's `azure_ad` auth
//! takes `cloud-id` = base64(that token). The pod's own identity, never the provider's.

use base64::Engine;
use serde::Deserialize;

use crate::secret::{ExposeSecret, SecretString};
use crate::spec::AzureWorkloadIdentity;

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
pub(crate) enum AzureError {
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
pub(crate) async fn cloud_id(
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
    let request = http
        .post(&url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form);
    let (status, bytes) = exchange(request)
        .await
        .map_err(|detail| AzureError::Unreachable {
            authority: authority.clone(),
            detail,
        })?;
    if !(200..300).contains(&status) {
        let error = error_text(&bytes);
        return Err(AzureError::Refused {
            authority,
            client_id: identity.client_id.clone(),
            status,
            error,
        });
    }
    cloud_id_of(&bytes).ok_or(AzureError::BadResponse { authority })
}

/// Sends a token request and reads its answer (bounded): the status and the body, or why it
/// could not be read, in words without the URL (its query may name an identity).
async fn exchange(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), String> {
    let response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status().as_u16();
    let bytes = super::read_body(response).await?;
    Ok((status, bytes))
}

/// Azure's own words for a refusal, scrubbed and bounded (the body comes from the network).
fn error_text(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorResponse>(body)
        .map(|e| crate::akeyless::scrub(&format!("{} {}", e.error, e.error_description)))
        .unwrap_or_else(|_| "no error description".into())
}

/// Akeyless's `cloud-id` from a token answer: base64 of its access token; `None` when the
/// answer holds no token.
fn cloud_id_of(body: &[u8]) -> Option<SecretString> {
    let token: TokenResponse = serde_json::from_slice(body).ok()?;
    if token.access_token.expose_secret().is_empty() {
        return None;
    }
    Some(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(token.access_token.expose_secret()),
    ))
}

/// Where Azure's Instance Metadata Service answers on every Azure VM.
pub(crate) const DEFAULT_IMDS_URL: &str = "http://169.254.169.254";
/// The resource the node's token is asked for unless the operator says otherwise
/// (`--azure-imds-resource`): Azure Resource Manager, what Akeyless's `azure_ad` auth expects.
pub(crate) const DEFAULT_IMDS_RESOURCE: &str = "https://management.azure.com/";
/// The IMDS API version of the managed identity token endpoint.
pub(crate) const IMDS_API_VERSION: &str = "2018-02-01";

/// Which of the node's managed identities IMDS answers for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NodeIdentity {
    /// The VM's only identity (its system-assigned one, or its only user-assigned one).
    Default,
    /// A user-assigned identity by object (principal) ID: the SPC's `akeylessAzureObjectID`.
    ObjectId(String),
    /// A user-assigned identity by client ID: `--azure-imds-client-id`.
    ClientId(String),
}

/// The node's identity settings, set only by the operator (`--azure-provider-identity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImdsSettings {
    /// IMDS's base URL (`--azure-imds-url`).
    pub url: String,
    /// The resource the token is for (`--azure-imds-resource`).
    pub resource: String,
    /// The user-assigned identity used when the SPC names no object ID (`--azure-imds-client-id`).
    pub client_id: Option<String>,
}

impl ImdsSettings {
    /// The identity a mount asks for: the SPC's `akeylessAzureObjectID`, else the operator's
    /// client ID, else the VM's default identity.
    pub fn identity(&self, object_id: Option<&str>) -> NodeIdentity {
        match (
            object_id.map(str::trim).filter(|o| !o.is_empty()),
            &self.client_id,
        ) {
            (Some(oid), _) => NodeIdentity::ObjectId(oid.to_string()),
            (None, Some(client)) => NodeIdentity::ClientId(client.clone()),
            (None, None) => NodeIdentity::Default,
        }
    }
}

/// `{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…[&object_id=…|&client_id=…]`.
pub(crate) fn imds_token_url(
    base: &str,
    resource: &str,
    identity: &NodeIdentity,
) -> Result<url::Url, String> {
    let base = base.trim_end_matches('/');
    let mut url = url::Url::parse(&format!("{base}/metadata/identity/oauth2/token"))
        .map_err(|e| e.to_string())?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("api-version", IMDS_API_VERSION)
            .append_pair("resource", resource);
        match identity {
            NodeIdentity::Default => {}
            NodeIdentity::ObjectId(oid) => {
                query.append_pair("object_id", oid);
            }
            NodeIdentity::ClientId(client) => {
                query.append_pair("client_id", client);
            }
        }
    }
    Ok(url)
}

/// Why the node's token could not be had (never a token).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImdsError {
    #[error(
        "Azure IMDS at {url} refused a token of the node's managed identity{which} for {resource} ({status}: {error}); check that the identity is assigned to the node (VM or scale set), or choose another with akeylessAzureObjectID or --azure-imds-client-id"
    )]
    Refused {
        url: String,
        which: String,
        resource: String,
        status: u16,
        error: String,
    },
    #[error("cannot reach Azure IMDS at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("unexpected answer from Azure IMDS at {url}")]
    BadResponse { url: String },
}

/// As the node: asks IMDS for a token of the node's managed identity for the operator's
/// resource and returns Akeyless's `cloud-id` (base64 of the access token).
pub(crate) async fn node_cloud_id(
    http: &reqwest::Client,
    settings: &ImdsSettings,
    object_id: Option<&str>,
) -> Result<SecretString, ImdsError> {
    let base = settings.url.trim_end_matches('/').to_string();
    let identity = settings.identity(object_id);
    let url = imds_token_url(&base, &settings.resource, &identity).map_err(|detail| {
        ImdsError::Unreachable {
            url: base.clone(),
            detail,
        }
    })?;
    let (status, bytes) = exchange(http.get(url).header("Metadata", "true"))
        .await
        .map_err(|detail| ImdsError::Unreachable {
            url: base.clone(),
            detail,
        })?;
    if !(200..300).contains(&status) {
        let error = error_text(&bytes);
        let which = match &identity {
            NodeIdentity::Default => String::new(),
            NodeIdentity::ObjectId(oid) => format!(" with object ID {oid}"),
            NodeIdentity::ClientId(client) => format!(" with client ID {client}"),
        };
        return Err(ImdsError::Refused {
            url: base,
            which,
            resource: settings.resource.clone(),
            status,
            error,
        });
    }
    cloud_id_of(&bytes).ok_or(ImdsError::BadResponse { url: base })
}

/// The resource Akeyless expects the Azure token for, in the public cloud (other clouds:
/// the `arm_scope` of [`AzureWorkloadIdentity::cloud`], chosen by `akeylessAzureCloud`).
#[cfg(test)]
pub(crate) const ARM_SCOPE: &str = "https://management.azure.com/.default";

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(client_id: Option<&str>) -> ImdsSettings {
        ImdsSettings {
            url: DEFAULT_IMDS_URL.into(),
            resource: DEFAULT_IMDS_RESOURCE.into(),
            client_id: client_id.map(str::to_string),
        }
    }

    #[test]
    fn the_spc_object_id_wins_over_the_operator_client_id() {
        assert_eq!(settings(None).identity(None), NodeIdentity::Default);
        assert_eq!(settings(None).identity(Some(" ")), NodeIdentity::Default);
        assert_eq!(
            settings(Some("c-1")).identity(None),
            NodeIdentity::ClientId("c-1".into())
        );
        assert_eq!(
            settings(Some("c-1")).identity(Some("o-1")),
            NodeIdentity::ObjectId("o-1".into())
        );
    }

    #[test]
    fn imds_urls() {
        let url = imds_token_url(
            "http://169.254.169.254/",
            DEFAULT_IMDS_RESOURCE,
            &NodeIdentity::Default,
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"
        );
        // A hostile object ID stays one query value.
        let url = imds_token_url(
            "http://127.0.0.1:9",
            DEFAULT_IMDS_RESOURCE,
            &NodeIdentity::ObjectId("x&resource=evil".into()),
        )
        .unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs.len(), 3, "{pairs:?}");
        assert_eq!(pairs[1].1, DEFAULT_IMDS_RESOURCE);
        assert_eq!(pairs[2], ("object_id".into(), "x&resource=evil".into()));
        let url = imds_token_url(
            "http://127.0.0.1:9",
            "https://management.usgovcloudapi.net/",
            &NodeIdentity::ClientId("c-1".into()),
        )
        .unwrap();
        assert!(url.as_str().ends_with("&client_id=c-1"), "{url}");
    }
}
