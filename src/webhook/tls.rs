//! The webhook's serving certificate: either files (cert-manager or an admin's, reloaded when
//! they change) or a CA and leaf generated in memory at start (the CA goes into the
//! ValidatingWebhookConfiguration's caBundle, see `ca_bundle`). Keys never touch the disk and
//! are never logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Clock skew allowed for a generated certificate's start.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate handshakes present; swapped in place when it is renewed or reloaded.
#[derive(Debug)]
pub(crate) struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServingCert {
    pub fn new(key: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(ServingCert {
            current: RwLock::new(key),
        })
    }

    pub(crate) fn set(&self, key: Arc<CertifiedKey>) {
        match self.current.write() {
            Ok(mut guard) => *guard = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }

    pub(crate) fn get(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The TLS configuration of the HTTPS listener: TLS 1.2 and 1.3, HTTP/1.1, no client
/// certificates (the API server authenticates the webhook, not the other way round).
pub(crate) fn server_config(cert: Arc<ServingCert>) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A CA and a serving certificate it signed, generated in memory.
pub(crate) struct Generated {
    /// The CA certificate (DER): what the API server must trust.
    pub ca: CertificateDer<'static>,
    pub key: Arc<CertifiedKey>,
    pub not_after: SystemTime,
    /// When to generate the next pair: after two-thirds of the lifetime.
    pub renew_at: SystemTime,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Generates an ECDSA P-256 CA (its key is dropped once the leaf is signed) and a serving
/// certificate for `names` (DNS names or IP addresses), both valid for `validity`.
pub(crate) fn generate(names: &[String], validity: Duration) -> Result<Generated, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    if names.is_empty() {
        return Err("the self-signed certificate needs at least one name (--tls-san)".into());
    }
    if let Some(bad) = names.iter().find(|n| {
        n.parse::<std::net::IpAddr>().is_err()
            && (n.is_empty()
                || n.len() > 253
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.')))
    }) {
        return Err(format!(
            "--tls-san: {bad:?} is neither a DNS name nor an IP address"
        ));
    }
    let now = SystemTime::now();
    let not_before = now.checked_sub(BACKDATE).unwrap_or(now);
    let not_after = now
        .checked_add(validity)
        .ok_or("--self-signed-validity is too long")?;
    let renew_at = now.checked_add(validity.mul_f64(2.0 / 3.0)).unwrap_or(now);
    let tag = format!("{:08x}", rand::random::<u32>());

    let ca_key = KeyPair::generate().map_err(|e| format!("generating the CA key: {e}"))?;
    let mut ca =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| format!("CA certificate: {e}"))?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("akeyless-csi-provider webhook CA {tag}"),
    );
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before.into();
    ca.not_after = not_after.into();
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| format!("signing the CA certificate: {e}"))?;

    let leaf_key = KeyPair::generate().map_err(|e| format!("generating the key: {e}"))?;
    let mut leaf = CertificateParams::new(names.to_vec())
        .map_err(|e| format!("--tls-san: not a DNS name or IP address ({e})"))?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    leaf.distinguished_name = dn;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before.into();
    leaf.not_after = not_after.into();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| format!("signing the serving certificate: {e}"))?;

    let key_der = PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| format!("encoding the key: {e}"))?;
    let certified = CertifiedKey::from_der(
        vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key_der,
        &provider(),
    )
    .map_err(|e| format!("loading the generated key: {e}"))?;
    Ok(Generated {
        ca: ca_cert.der().clone(),
        key: Arc::new(certified),
        not_after,
        renew_at,
    })
}

/// A certificate and key read from files (PEM): the chain, leaf first, and one private key.
pub(crate) fn load_files(cert_file: &Path, key_file: &Path) -> Result<Loaded, String> {
    let cert_pem = std::fs::read(cert_file)
        .map_err(|e| format!("--tls-cert-file {}: {e}", cert_file.display()))?;
    let key_pem = std::fs::read(key_file)
        .map_err(|e| format!("--tls-key-file {}: {e}", key_file.display()))?;
    let key = parse_pair(&cert_pem, &key_pem).map_err(|e| {
        format!(
            "--tls-cert-file {} / --tls-key-file {}: {e}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    Ok(Loaded {
        key,
        cert_pem,
        key_pem,
    })
}

/// What [`load_files`] read, with the bytes to notice a change.
pub(crate) struct Loaded {
    pub key: Arc<CertifiedKey>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl Loaded {
    /// Whether the files still hold what was loaded.
    pub(crate) fn same_as(&self, cert_pem: &[u8], key_pem: &[u8]) -> bool {
        self.cert_pem == cert_pem && self.key_pem == key_pem
    }
}

fn parse_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate file is not valid PEM ({e})"))?;
    if chain.is_empty() {
        return Err("the certificate file holds no CERTIFICATE block".into());
    }
    // No error detail: it could quote key material.
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| "the key file holds no readable PEM private key".to_string())?;
    let certified = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| format!("the key does not fit the certificate ({e})"))?;
    Ok(Arc::new(certified))
}

/// The expiry of a certificate (Unix seconds), if it parses.
pub(crate) fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

/// What one look at the certificate files found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reload {
    Unchanged,
    Reloaded,
    /// Unreadable, or changed but not a valid pair (yet: files are replaced one at a time).
    Failed(String),
}

/// Reads the files; when they changed and hold a valid pair, serves it.
pub(crate) fn reload_once(
    cert_file: &Path,
    key_file: &Path,
    loaded: &mut Loaded,
    serving: &ServingCert,
) -> Reload {
    let (cert_pem, key_pem) = match (std::fs::read(cert_file), std::fs::read(key_file)) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(e), _) | (_, Err(e)) => return Reload::Failed(format!("cannot read: {e}")),
    };
    if loaded.same_as(&cert_pem, &key_pem) {
        return Reload::Unchanged;
    }
    match parse_pair(&cert_pem, &key_pem) {
        Ok(key) => {
            serving.set(key.clone());
            *loaded = Loaded {
                key,
                cert_pem,
                key_pem,
            };
            Reload::Reloaded
        }
        Err(e) => Reload::Failed(e),
    }
}

/// Looks at the certificate files every `interval` (see [`reload_once`]); a failure keeps the
/// certificate being served. Runs forever.
pub(crate) async fn reload_files(
    cert_file: PathBuf,
    key_file: PathBuf,
    mut loaded: Loaded,
    serving: Arc<ServingCert>,
    interval: Duration,
    on_load: impl Fn(&CertifiedKey),
) {
    loop {
        tokio::time::sleep(interval).await;
        match reload_once(&cert_file, &key_file, &mut loaded, &serving) {
            Reload::Unchanged => {}
            Reload::Reloaded => {
                on_load(&loaded.key);
                tracing::info!(cert = %cert_file.display(), "serving certificate reloaded");
            }
            Reload::Failed(e) => tracing::warn!(cert = %cert_file.display(), error = %e,
                "the certificate files don't load; serving the certificate loaded before"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_leaf_is_signed_by_the_ca_for_the_names() {
        let g = generate(
            &["webhook.ns.svc".into(), "127.0.0.1".into()],
            Duration::from_secs(3600),
        )
        .unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(g.ca.as_ref()).unwrap();
        assert!(ca.is_ca());
        let leaf_der = g.key.cert[0].clone();
        let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der.as_ref()).unwrap();
        assert_eq!(leaf.issuer(), ca.subject());
        assert!(leaf.verify_signature(Some(ca.public_key())).is_ok());
        let sans = format!(
            "{:?}",
            leaf.subject_alternative_name().unwrap().unwrap().value
        );
        assert!(
            sans.contains("webhook.ns.svc") && sans.contains("IPAddress([127, 0, 0, 1])"),
            "{sans}"
        );
        let lifetime =
            leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
        assert_eq!(lifetime, 3600 + BACKDATE.as_secs() as i64);
        assert!(g.renew_at < g.not_after);
        assert_eq!(g.key.keys_match(), Ok(()));
        // Two generations never share a CA.
        let h = generate(&["a".into()], Duration::from_secs(60)).unwrap();
        assert_ne!(g.ca, h.ca);
        assert!(generate(&[], Duration::from_secs(60)).is_err());
        assert!(generate(&["bad name!".into()], Duration::from_secs(60)).is_err());
    }

    #[test]
    fn files_load_and_mismatches_are_refused_without_quoting_keys() {
        let dir = tempfile::tempdir().unwrap();
        let one = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        let two = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        std::fs::write(&cert, one.cert.pem()).unwrap();
        std::fs::write(&key, one.signing_key.serialize_pem()).unwrap();
        let loaded = load_files(&cert, &key).unwrap();
        assert!(loaded.same_as(
            one.cert.pem().as_bytes(),
            one.signing_key.serialize_pem().as_bytes()
        ));
        std::fs::write(&key, two.signing_key.serialize_pem()).unwrap();
        let e = load_files(&cert, &key).err().unwrap();
        assert!(e.contains("does not fit"), "{e}");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = load_files(&cert, &key).err().unwrap();
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let e = load_files(&dir.path().join("none"), &key).err().unwrap();
        assert!(e.starts_with("--tls-cert-file"), "{e}");
    }

    #[test]
    fn changed_files_are_reloaded_and_broken_ones_keep_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        let write = |c: &rcgen::CertifiedKey<rcgen::KeyPair>| {
            std::fs::write(&cert, c.cert.pem()).unwrap();
            std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        };
        let one = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        write(&one);
        let mut loaded = load_files(&cert, &key).unwrap();
        let serving = ServingCert::new(loaded.key.clone());
        assert_eq!(
            reload_once(&cert, &key, &mut loaded, &serving),
            Reload::Unchanged
        );
        // cert-manager replaced the certificate but not yet the key.
        let two = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        std::fs::write(&cert, two.cert.pem()).unwrap();
        assert!(matches!(
            reload_once(&cert, &key, &mut loaded, &serving),
            Reload::Failed(e) if e.contains("does not fit")
        ));
        assert_eq!(&serving.get().cert[0], one.cert.der());
        write(&two);
        assert_eq!(
            reload_once(&cert, &key, &mut loaded, &serving),
            Reload::Reloaded
        );
        assert_eq!(&serving.get().cert[0], two.cert.der());
        std::fs::remove_file(&key).unwrap();
        assert!(matches!(
            reload_once(&cert, &key, &mut loaded, &serving),
            Reload::Failed(_)
        ));
        assert_eq!(&serving.get().cert[0], two.cert.der());
    }
}
