//! The `gcp` auth family: workload identity federation (the pod) or the node's identity.

use super::{MIGRATION_GUIDE, Problem, keys, param_problem, trimmed_param};
use crate::request::Parameters;

/// The audience of the Google ID token when `akeylessGCPAudience` is not set.
pub(crate) const GCP_DEFAULT_AUDIENCE: &str = "akeyless.io";

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
    pub(crate) fn default_token_audience(&self) -> Option<String> {
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

/// `akeylessGCPAudience`: the audience of the Google ID token sent to Akeyless.
pub(super) fn parse_audience(params: &Parameters, problems: &mut Vec<Problem>) -> Option<String> {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
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
    gcp_audience
}

/// Parses the `gcp` workload identity parameters; `None`: the node's identity.
pub(super) fn parse(
    params: &Parameters,
    problems: &mut Vec<Problem>,
) -> Option<GcpWorkloadIdentity> {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    let get = |key: &str| trimmed_param(params, key);
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
