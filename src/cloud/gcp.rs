//! Google for Akeyless's `gcp` auth: `cloud-id` = base64 of a Google-signed ID token for the
//! audience the Akeyless auth method expects (`akeyless.io` by default).
//!
//! The token comes from the GCE/GKE metadata server, which answers as the **node's** (or, on GKE
//! with Workload Identity, the provider DaemonSet's) Google service account: the provider's own
//! identity, not the mounting pod's. So it is used only when the provider was started with
//! `--gcp-metadata-identity`; every pod whose SPC says `gcp` then authenticates as that account.

use base64::Engine;

use crate::secret::{ExposeSecret, SecretString};

/// Where the metadata server answers inside GCP.
pub const DEFAULT_METADATA_URL: &str = "http://metadata.google.internal";

#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    #[error(
        "the GCP metadata server at {url} refused an ID token for audience {audience:?} ({status}); check that the node (or the provider's Kubernetes service account under GKE Workload Identity) has a Google service account"
    )]
    Refused {
        url: String,
        audience: String,
        status: u16,
    },
    #[error("cannot reach the GCP metadata server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the GCP metadata server at {url} answered something that is not an ID token")]
    BadResponse { url: String },
}

/// Fetches an ID token for `audience` from the metadata server at `base_url` and returns
/// Akeyless's `cloud-id`.
pub async fn cloud_id(
    http: &reqwest::Client,
    base_url: &str,
    audience: &str,
) -> Result<SecretString, GcpError> {
    let base = base_url.trim_end_matches('/');
    let mut url = url::Url::parse(&format!(
        "{base}/computeMetadata/v1/instance/service-account/identity"
    ))
    .map_err(|e| GcpError::Unreachable {
        url: base.to_string(),
        detail: e.to_string(),
    })?;
    url.query_pairs_mut()
        .append_pair("audience", audience)
        .append_pair("format", "full");
    let unreachable = |e: reqwest::Error| GcpError::Unreachable {
        url: base.to_string(),
        detail: e.without_url().to_string(),
    };
    let response = http
        .get(url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(GcpError::Refused {
            url: base.to_string(),
            audience: audience.to_string(),
            status,
        });
    }
    let token = SecretString::from(
        response
            .text()
            .await
            .map_err(unreachable)?
            .trim()
            .to_string(),
    );
    if token.expose_secret().split('.').count() != 3 {
        return Err(GcpError::BadResponse {
            url: base.to_string(),
        });
    }
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(token.expose_secret()),
    ))
}
