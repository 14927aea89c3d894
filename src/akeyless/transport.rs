//! HTTP transport to Akeyless: reqwest over rustls (ring), trusting the system roots, the
//! Mozilla roots, `--ca-bundle` and an SPC's `akeylessCACert`. One client per distinct CA set,
//! cached, so connections are pooled across mounts. Redirects are never followed: a gateway
//! (which a tenant may choose) must not be able to send a request body, with its credentials,
//! on to a host of its choosing.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use crate::cache::BoundedMap;

/// Builds and caches HTTP clients by trusted CA set.
///
/// Cache key: a hash of the extra CA certificates' DER, sorted and deduplicated, so the same
/// certificates written as different PEM text (comments, order, line endings) share one client.
/// A client holds no tenant data (no credentials, no cookies): sharing one between tenants that
/// trust the same CAs only shares a connection pool.
pub(crate) struct ClientFactory {
    base_roots: Arc<rustls::RootCertStore>,
    cache: BoundedMap<[u8; 32], reqwest::Client>,
    connect_timeout: Duration,
}

/// Most distinct `akeylessCACert` sets kept; beyond it the least recently used client goes.
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
            cache: BoundedMap::new(MAX_CACHED_CLIENTS),
            connect_timeout,
        })
    }

    /// The client for the default roots plus `extra_ca_pem` (an SPC's `akeylessCACert`).
    pub fn client(&self, extra_ca_pem: Option<&str>) -> Result<reqwest::Client, String> {
        let extra = match extra_ca_pem {
            Some(pem) => parse_pem_certs(pem)?,
            None => Vec::new(),
        };
        let key = ca_set_key(&extra);
        if let Some(client) = self.cache.get(&key) {
            return Ok(client);
        }
        let mut roots = (*self.base_roots).clone();
        for cert in extra {
            roots
                .add(cert)
                .map_err(|e| format!("unusable CA certificate: {e}"))?;
        }
        let client = build_client(roots, self.connect_timeout)?;
        self.cache.insert(key, client.clone());
        Ok(client)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.cache.len()
    }
}

/// The cache key of a CA set: its certificates' DER, order and duplicates aside.
fn ca_set_key(certs: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut ders: Vec<&[u8]> = certs.iter().map(|c| c.as_ref()).collect();
    ders.sort_unstable();
    ders.dedup();
    let mut hash = Sha256::new();
    for der in ders {
        // Length-prefixed, so two sets can't concatenate to the same bytes.
        hash.update((der.len() as u64).to_be_bytes());
        hash.update(der);
    }
    hash.finalize().into()
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
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("akeyless-csi-provider/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client setup: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn clients_are_keyed_by_the_parsed_ca_set() {
        let factory = ClientFactory::new(None, Duration::from_secs(1)).unwrap();
        let (a, b) = (ca_pem("a.example"), ca_pem("b.example"));
        factory.client(None).unwrap();
        factory.client(Some(&a)).unwrap();
        assert_eq!(factory.len(), 2);
        // Same certificates, other text: comments, order, a duplicate, CRLF line endings.
        let both = format!("{a}{b}");
        let both_again = format!("# our CAs\r\n{}\r\n{b}{a}", a.replace('\n', "\r\n"));
        factory.client(Some(&both)).unwrap();
        factory.client(Some(&both_again)).unwrap();
        assert_eq!(factory.len(), 3, "one client per distinct CA set");
        assert!(
            factory
                .client(Some(
                    "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
                ))
                .is_err()
        );
    }
}
