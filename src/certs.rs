//! Certificates → files: PEM (`tls.crt` leaf then chain, `tls.key`, `ca.crt`), a single PEM
//! bundle, or PKCS#12. Also the node-side key and CSR of PKI issuance. No I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::secret::{ExposeSecret, SecretString};
use crate::spec::{CertFormat, ObjectSpec, PkiOptions};

/// A certificate chain and (optionally) its private key.
#[derive(Clone)]
pub struct CertificateMaterial {
    /// The certificate PEM as Akeyless returned it (leaf first, possibly followed by a chain).
    pub certificate_pem: String,
    /// The issuer chain when returned separately (PKI issuance).
    pub issuer_pem: Option<String>,
    pub private_key_pem: Option<SecretString>,
}

impl std::fmt::Debug for CertificateMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateMaterial")
            .field("has_issuer", &self.issuer_pem.is_some())
            .field("has_key", &self.private_key_pem.is_some())
            .finish()
    }
}

/// PEM-encodes one DER block.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate is not valid PEM ({e})"))?;
    if certs.is_empty() {
        return Err("the value holds no PEM certificate".into());
    }
    Ok(certs)
}

/// The validity period of a DER certificate, as Unix seconds.
pub fn validity(der: &[u8]) -> Result<(i64, i64), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| "the certificate cannot be parsed (not X.509 DER)".to_string())?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

fn unix_now(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn rfc3339(ts: i64) -> String {
    crate::timefmt::rfc3339_from_unix(ts).unwrap_or_else(|| format!("{ts} (Unix time)"))
}

/// The leaf first, then every other certificate (from the value itself and the issuer PEM),
/// each once. Fails when the leaf has expired.
fn ordered_chain(
    material: &CertificateMaterial,
    now: SystemTime,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut chain = parse_chain(&material.certificate_pem)?;
    if let Some(issuer) = &material.issuer_pem {
        for cert in parse_chain(issuer)? {
            if !chain.contains(&cert) {
                chain.push(cert);
            }
        }
    }
    let leaf = chain
        .first()
        .ok_or_else(|| "the value holds no PEM certificate".to_string())?;
    let (_, not_after) = validity(leaf)?;
    if not_after < unix_now(now) {
        return Err(format!(
            "the certificate expired at {}; renew or rotate it in Akeyless",
            rfc3339(not_after)
        ));
    }
    Ok(chain)
}

fn pfx(
    chain: &[CertificateDer<'static>],
    key_pem: &SecretString,
    password: &str,
) -> Result<Vec<u8>, String> {
    let key = PrivateKeyDer::from_pem_slice(key_pem.expose_secret().as_bytes())
        .map_err(|_| "the private key is not valid PEM".to_string())?;
    let PrivateKeyDer::Pkcs8(pkcs8) = key else {
        return Err("format pfx needs a PKCS#8 private key (BEGIN PRIVATE KEY)".into());
    };
    let key = p12_keystore::PrivateKey::from_der(pkcs8.secret_pkcs8_der())
        .map_err(|_| "the private key cannot be stored in PKCS#12".to_string())?;
    let certs = chain
        .iter()
        .map(|c| p12_keystore::Certificate::from_der(c.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a certificate cannot be stored in PKCS#12".to_string())?;
    let leaf = chain.first().map(|c| c.as_ref()).unwrap_or_default();
    let local_key_id: Vec<u8> = <sha2::Sha256 as sha2::Digest>::digest(leaf)
        .iter()
        .take(20)
        .copied()
        .collect();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "tls",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            local_key_id,
            key,
            certs,
        )),
    );
    store
        .writer(password)
        .write()
        .map_err(|_| "writing the PKCS#12 file failed".to_string())
}

/// The files of a certificate object.
pub fn certificate_files(
    object: &ObjectSpec,
    material: &CertificateMaterial,
    now: SystemTime,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let chain = ordered_chain(material, now)?;
    let all_certs: String = chain.iter().map(|c| pem_encode("CERTIFICATE", c)).collect();
    let key_pem = material
        .private_key_pem
        .as_ref()
        .map(|k| k.expose_secret().trim_end().to_string() + "\n");
    let dir = &object.file_name;
    Ok(match object.cert.format {
        CertFormat::Pem => {
            let mut files = vec![(format!("{dir}/tls.crt"), all_certs.into_bytes())];
            if let Some(key) = key_pem {
                files.push((format!("{dir}/tls.key"), key.into_bytes()));
            }
            if chain.len() > 1 {
                let ca: String = chain
                    .iter()
                    .skip(1)
                    .map(|c| pem_encode("CERTIFICATE", c))
                    .collect();
                files.push((format!("{dir}/ca.crt"), ca.into_bytes()));
            }
            files
        }
        CertFormat::Bundle => {
            let bundle = key_pem.unwrap_or_default() + &all_certs;
            vec![(dir.clone(), bundle.into_bytes())]
        }
        CertFormat::Pfx => {
            let key = material
                .private_key_pem
                .as_ref()
                .ok_or("format pfx needs the private key, but the item has none")?;
            vec![(dir.clone(), pfx(&chain, key, &object.cert.pfx_password)?)]
        }
    })
}

/// A freshly generated key and the CSR for it (PKI issuance; the key never leaves the node).
pub(crate) struct CertificateRequest {
    pub csr_pem: String,
    pub private_key_pem: SecretString,
}

/// Generates an ECDSA P-256 key and a CSR carrying the requested names.
pub(crate) fn new_certificate_request(options: &PkiOptions) -> Result<CertificateRequest, String> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
    let key = KeyPair::generate().map_err(|e| format!("generating a key failed: {e}"))?;
    let mut params =
        CertificateParams::new(options.alt_names.clone()).map_err(|e| format!("altNames: {e}"))?;
    for uri in &options.uri_sans {
        let uri = uri
            .clone()
            .try_into()
            .map_err(|_| format!("uriSans: {uri:?} is not ASCII"))?;
        params.subject_alt_names.push(SanType::URI(uri));
    }
    let mut dn = DistinguishedName::new();
    if let Some(cn) = &options.common_name {
        dn.push(DnType::CommonName, cn.clone());
    }
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .map_err(|e| format!("building the CSR failed: {e}"))?;
    Ok(CertificateRequest {
        csr_pem: csr
            .pem()
            .map_err(|e| format!("encoding the CSR failed: {e}"))?,
        private_key_pem: SecretString::from(key.serialize_pem()),
    })
}

/// When a certificate valid from `not_before` to `not_after` (Unix seconds) should be renewed:
/// after two-thirds of its lifetime.
pub fn renewal_time(not_before: i64, not_after: i64) -> SystemTime {
    // Any i64 pair from a certificate (issued by a gateway a tenant may choose) must work.
    let start = u64::try_from(not_before).unwrap_or(0);
    let lifetime = u64::try_from(not_after.saturating_sub(not_before)).unwrap_or(0);
    let at = start.saturating_add((lifetime / 3).saturating_mul(2));
    UNIX_EPOCH
        .checked_add(Duration::from_secs(at))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CertOptions, ItemType};

    pub(crate) fn test_chain(expired: bool) -> (String, String, String) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec!["app.example".into()]).unwrap();
        if expired {
            leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            leaf_params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        (leaf.pem(), ca.pem(), leaf_key.serialize_pem())
    }

    fn object(format: CertFormat) -> ObjectSpec {
        ObjectSpec {
            item_type: Some(ItemType::Certificate),
            cert: CertOptions {
                format,
                pfx_password: "pw".into(),
            },
            ..ObjectSpec::new("/tls", "tls")
        }
    }

    #[test]
    fn pem_directory_with_chain_and_key() {
        let (leaf, ca, key) = test_chain(false);
        let material = CertificateMaterial {
            certificate_pem: format!("{leaf}{ca}"),
            issuer_pem: None,
            private_key_pem: Some(SecretString::from(key.clone())),
        };
        let files =
            certificate_files(&object(CertFormat::Pem), &material, SystemTime::now()).unwrap();
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, vec!["tls/tls.crt", "tls/tls.key", "tls/ca.crt"]);
        let crt = String::from_utf8(files[0].1.clone()).unwrap();
        assert_eq!(crt.matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(
            parse_chain(&crt).unwrap(),
            parse_chain(&format!("{leaf}{ca}")).unwrap()
        );
        assert_eq!(
            String::from_utf8(files[2].1.clone()).unwrap(),
            pem_encode("CERTIFICATE", &parse_chain(&ca).unwrap()[0])
        );
    }

    #[test]
    fn leaf_only_has_no_ca_file_and_bundle_is_one_file() {
        let (leaf, _, key) = test_chain(false);
        let material = CertificateMaterial {
            certificate_pem: leaf,
            issuer_pem: None,
            private_key_pem: Some(SecretString::from(key)),
        };
        let files =
            certificate_files(&object(CertFormat::Pem), &material, SystemTime::now()).unwrap();
        assert_eq!(files.len(), 2);
        let bundle =
            certificate_files(&object(CertFormat::Bundle), &material, SystemTime::now()).unwrap();
        assert_eq!(bundle.len(), 1);
        let text = String::from_utf8(bundle[0].1.clone()).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        assert!(text.contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn pfx_opens_with_its_password() {
        let (leaf, ca, key) = test_chain(false);
        let material = CertificateMaterial {
            certificate_pem: leaf,
            issuer_pem: Some(ca),
            private_key_pem: Some(SecretString::from(key)),
        };
        let files =
            certificate_files(&object(CertFormat::Pfx), &material, SystemTime::now()).unwrap();
        let store = p12_keystore::KeyStore::from_pkcs12(
            &files[0].1,
            "pw",
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .unwrap();
        let (_, chain) = store.private_key_chain().unwrap();
        let leaf_der = parse_chain(&material.certificate_pem).unwrap()[0].to_vec();
        assert_eq!(
            chain.certs()[0].as_der(),
            leaf_der.as_slice(),
            "the key's certificate is the leaf"
        );
        // The file holds the key and both certificates (relaxed import re-links only part of it).
        let raw = p12_keystore::KeyStore::from_pkcs12(
            &files[0].1,
            "pw",
            p12_keystore::Pkcs12ImportPolicy::Raw,
        )
        .unwrap();
        assert_eq!(raw.entries_len(), 3);
        assert!(
            p12_keystore::KeyStore::from_pkcs12(
                &files[0].1,
                "wrong",
                p12_keystore::Pkcs12ImportPolicy::Relaxed
            )
            .is_err()
        );
    }

    #[test]
    fn expired_certificate_is_an_error() {
        let (leaf, _, _) = test_chain(true);
        let material = CertificateMaterial {
            certificate_pem: leaf,
            issuer_pem: None,
            private_key_pem: None,
        };
        let e =
            certificate_files(&object(CertFormat::Pem), &material, SystemTime::now()).unwrap_err();
        assert!(e.contains("expired at 2021-01-01T00:00:00Z"), "{e}");
    }

    #[test]
    fn csr_carries_names_and_renewal_is_at_two_thirds() {
        let req = new_certificate_request(&PkiOptions {
            common_name: Some("app".into()),
            alt_names: vec!["app.example".into()],
            uri_sans: vec!["spiffe://x/y".into()],
        })
        .unwrap();
        assert!(req.csr_pem.contains("BEGIN CERTIFICATE REQUEST"));
        assert!(
            req.private_key_pem
                .expose_secret()
                .contains("BEGIN PRIVATE KEY")
        );
        assert_eq!(renewal_time(0, 300), UNIX_EPOCH + Duration::from_secs(200));
    }
}
