//! Where an SPC reaches Akeyless: its gateways (checked against the operator's allow-list),
//! an extra CA and the cache switch.

use url::Url;

use super::{Problem, SpecDefaults, keys, param_problem};
use crate::request::Parameters;

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

/// Checks one gateway URL and returns it without a trailing slash.
pub(crate) fn normalize_gateway_url(raw: &str) -> Result<String, String> {
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
pub(crate) fn count_pem_certificates(pem: &str) -> Result<usize, String> {
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

/// Parses the connection parameters: the gateway list, the CA and `akeylessIgnoreCache`.
pub(super) fn parse(
    params: &Parameters,
    defaults: &SpecDefaults,
    problems: &mut Vec<Problem>,
) -> ConnectionSpec {
    let gateways = parse_gateways(params, defaults, problems);
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);

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
    ConnectionSpec {
        gateways,
        ca_cert_pem,
        ignore_cache,
    }
}

/// The ordered failover list of `akeylessGatewayURL`, each one allowed on this cluster.
fn parse_gateways(
    params: &Parameters,
    defaults: &SpecDefaults,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
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
    gateways
}
