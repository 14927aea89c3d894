//! HTTP transport to Akeyless: reqwest over rustls (ring), trusting the system roots, the
//! Mozilla roots, `--ca-bundle` and an SPC's `akeylessCACert`. One client per distinct CA set,
//! cached, so connections are pooled across mounts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// Builds and caches HTTP clients by trusted CA set.
pub struct ClientFactory {
    base_roots: Arc<rustls::RootCertStore>,
    cache: Mutex<HashMap<[u8; 32], reqwest::Client>>,
    connect_timeout: Duration,
}

/// Most distinct `akeylessCACert` bundles kept; beyond it the cache starts over (bounded memory).
const MAX_CACHED_CLIENTS: usize = 64;

fn parse_pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))
}

impl ClientFactory {
    /// `extra_ca_pem`: the `--ca-bundle` contents, trusted for every gateway.
    pub fn new(extra_ca_pem: Option<&str>, connect_timeout: Duration) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // System roots (corporate CAs installed on the image) are welcome but optional: a
        // scratch image has none, and the Mozilla roots above still cover public gateways.
        let native = rustls_native_certs::load_native_certs();
        let _ = roots.add_parsable_certificates(native.certs);
        if let Some(pem) = extra_ca_pem {
            let certs = parse_pem_certs(pem).map_err(|e| format!("--ca-bundle: {e}"))?;
            if certs.is_empty() {
                return Err("--ca-bundle holds no PEM certificate".into());
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("--ca-bundle: unusable certificate: {e}"))?;
            }
        }
        Ok(ClientFactory {
            base_roots: Arc::new(roots),
            cache: Mutex::new(HashMap::new()),
            connect_timeout,
        })
    }

    /// The client for the default roots plus `extra_ca_pem` (an SPC's `akeylessCACert`).
    pub fn client(&self, extra_ca_pem: Option<&str>) -> Result<reqwest::Client, String> {
        let key: [u8; 32] = Sha256::digest(extra_ca_pem.unwrap_or("").as_bytes()).into();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = cache.get(&key) {
            return Ok(client.clone());
        }
        let mut roots = (*self.base_roots).clone();
        if let Some(pem) = extra_ca_pem {
            for cert in parse_pem_certs(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("unusable CA certificate: {e}"))?;
            }
        }
        let client = build_client(roots, self.connect_timeout)?;
        if cache.len() >= MAX_CACHED_CLIENTS {
            cache.clear();
        }
        cache.insert(key, client.clone());
        Ok(client)
    }
}

fn build_client(
    roots: rustls::RootCertStore,
    connect_timeout: Duration,
) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("akeyless-csi-provider/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client setup: {e}"))
}
