//! `kubernetes.io/tls` Secrets: the driver's rules for `tls.crt` and `tls.key`, so a Secret we
//! write holds what the driver's own sync would write from the same files.
//!
//! - `tls.crt`: every `CERTIFICATE` PEM block of the file, in order (or, when the file holds no
//!   PEM, the certificates of a password-less PKCS#12 file).
//! - `tls.key`: the file's last private key, re-encoded the traditional way: RSA as PKCS#1
//!   (`RSA PRIVATE KEY`), EC as SEC 1 (`EC PRIVATE KEY`). Other key types are refused.
//! - any other key of a TLS Secret is refused.
//!
//! No secret material is ever put into an error message.

use pkcs8::der::{Decode, Encode};
use pkcs8::{ObjectIdentifier, PrivateKeyInfoRef};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sec1::{EcParameters, EcPrivateKey};

use crate::certs::pem_encode;

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// The part of `data` that goes under `key` in a TLS Secret.
pub(crate) fn tls_part(data: &[u8], key: &str) -> Result<Vec<u8>, String> {
    match key {
        "tls.crt" => certificates(data),
        "tls.key" => private_key(data),
        other => Err(format!(
            "key {other:?} is not supported in a kubernetes.io/tls Secret; use tls.crt or tls.key"
        )),
    }
}

fn certificates(data: &[u8]) -> Result<Vec<u8>, String> {
    let pem: Vec<u8> = CertificateDer::pem_slice_iter(data)
        .filter_map(Result::ok)
        .flat_map(|der| pem_encode("CERTIFICATE", der.as_ref()).into_bytes())
        .collect();
    if !pem.is_empty() {
        return Ok(pem);
    }
    let store = pkcs12(data)?;
    let pem: Vec<u8> = store
        .entries()
        .flat_map(|(_, entry)| match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => chain
                .certs()
                .iter()
                .map(|c| c.as_der().to_vec())
                .collect::<Vec<_>>(),
            p12_keystore::KeyStoreEntry::Certificate(c) => vec![c.as_der().to_vec()],
            _ => Vec::new(),
        })
        .flat_map(|der| pem_encode("CERTIFICATE", &der).into_bytes())
        .collect();
    if pem.is_empty() {
        return Err("the file holds no certificate (neither PEM nor PKCS#12)".into());
    }
    Ok(pem)
}

fn pkcs12(data: &[u8]) -> Result<p12_keystore::KeyStore, String> {
    p12_keystore::KeyStore::from_pkcs12(data, "", p12_keystore::Pkcs12ImportPolicy::Relaxed)
        .map_err(|_| "the file is neither PEM nor a password-less PKCS#12 file".to_string())
}

fn private_key(data: &[u8]) -> Result<Vec<u8>, String> {
    let key = match PrivateKeyDer::pem_slice_iter(data)
        .filter_map(Result::ok)
        .last()
    {
        Some(key) => key,
        None => {
            let store = pkcs12(data)?;
            let der = store
                .entries()
                .find_map(|(_, entry)| match entry {
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                        Some(chain.key().as_der().to_vec())
                    }
                    _ => None,
                })
                .ok_or("the file holds no private key (neither PEM nor PKCS#12)")?;
            PrivateKeyDer::Pkcs8(der.into())
        }
    };
    let (label, der) = match key {
        PrivateKeyDer::Pkcs1(k) => ("RSA PRIVATE KEY", k.secret_pkcs1_der().to_vec()),
        PrivateKeyDer::Sec1(k) => ("EC PRIVATE KEY", k.secret_sec1_der().to_vec()),
        PrivateKeyDer::Pkcs8(k) => pkcs8_to_traditional(k.secret_pkcs8_der())?,
        _ => return Err("unsupported private key encoding".into()),
    };
    Ok(pem_encode(label, &der).into_bytes())
}

/// PKCS#8 `PrivateKeyInfo` → PKCS#1 (RSA) or SEC 1 with the named curve (EC).
fn pkcs8_to_traditional(der: &[u8]) -> Result<(&'static str, Vec<u8>), String> {
    const BAD: &str = "the PKCS#8 private key is malformed";
    let info = PrivateKeyInfoRef::try_from(der).map_err(|_| BAD)?;
    let key = info.private_key.as_bytes();
    if info.algorithm.oid == OID_RSA_ENCRYPTION {
        return Ok(("RSA PRIVATE KEY", key.to_vec()));
    }
    if info.algorithm.oid != OID_EC_PUBLIC_KEY {
        return Err(
            "unsupported private key type for a TLS Secret: only RSA and ECDSA keys are supported"
                .into(),
        );
    }
    let curve = info.algorithm.parameters_oid().map_err(|_| BAD)?;
    // ECPrivateKey ::= SEQUENCE { version, privateKey, [0] parameters OPTIONAL, [1] publicKey OPTIONAL }
    // PKCS#8 names the curve in the algorithm; SEC 1 (as Go's x509.MarshalECPrivateKey writes
    // it) names it in the key.
    let mut ec = EcPrivateKey::from_der(key).map_err(|_| BAD)?;
    if ec.parameters.is_none() {
        ec.parameters = Some(EcParameters::NamedCurve(curve));
    }
    Ok(("EC PRIVATE KEY", ec.to_der().map_err(|_| BAD)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test-only keys, generated with openssl: `genpkey` (PKCS#8), then `rsa -traditional` and
    // `ec` for the expected traditional forms; `pkcs12 -export -passout pass:` for the PFX.
    const RSA_PKCS8: &str = include_str!("testdata/rsa-pkcs8.pem");
    const RSA_PKCS1: &str = include_str!("testdata/rsa-pkcs1.pem");
    const EC_PKCS8: &str = include_str!("testdata/ec-pkcs8.pem");
    const EC_SEC1: &str = include_str!("testdata/ec-sec1.pem");
    const EC_CERT: &str = include_str!("testdata/ec-cert.pem");
    const EC_PFX: &[u8] = include_bytes!("testdata/ec.pfx");

    fn s(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn pkcs8_keys_become_traditional_like_openssl_writes_them() {
        assert_eq!(
            s(tls_part(RSA_PKCS8.as_bytes(), "tls.key").unwrap()),
            RSA_PKCS1
        );
        assert_eq!(
            s(tls_part(EC_PKCS8.as_bytes(), "tls.key").unwrap()),
            EC_SEC1
        );
        // Already traditional: unchanged.
        assert_eq!(
            s(tls_part(RSA_PKCS1.as_bytes(), "tls.key").unwrap()),
            RSA_PKCS1
        );
        assert_eq!(s(tls_part(EC_SEC1.as_bytes(), "tls.key").unwrap()), EC_SEC1);
    }

    #[test]
    fn a_pkcs8_key_that_names_its_curve_inside_keeps_it() {
        // Some writers keep SEC 1's [0] parameters inside the PKCS#8 key: nothing is added.
        let sec1 = PrivateKeyDer::from_pem_slice(EC_SEC1.as_bytes()).unwrap();
        let prime256v1 = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
        let info = PrivateKeyInfoRef::new(
            pkcs8::AlgorithmIdentifierRef {
                oid: OID_EC_PUBLIC_KEY,
                parameters: Some((&prime256v1).into()),
            },
            pkcs8::der::asn1::OctetStringRef::new(sec1.secret_der()).unwrap(),
        );
        let pkcs8 = pem_encode("PRIVATE KEY", &info.to_der().unwrap());
        assert_eq!(s(tls_part(pkcs8.as_bytes(), "tls.key").unwrap()), EC_SEC1);
    }

    #[test]
    fn a_bundle_is_split_into_certificates_and_key() {
        let bundle = format!("{EC_CERT}{EC_PKCS8}{EC_CERT}");
        assert_eq!(
            s(tls_part(bundle.as_bytes(), "tls.crt").unwrap()),
            format!("{EC_CERT}{EC_CERT}")
        );
        assert_eq!(s(tls_part(bundle.as_bytes(), "tls.key").unwrap()), EC_SEC1);
    }

    #[test]
    fn pkcs12_without_password_is_read() {
        assert_eq!(s(tls_part(EC_PFX, "tls.crt").unwrap()), EC_CERT);
        assert_eq!(s(tls_part(EC_PFX, "tls.key").unwrap()), EC_SEC1);
    }

    #[test]
    fn other_keys_and_garbage_are_refused_without_quoting_content() {
        let e = tls_part(EC_CERT.as_bytes(), "ca.crt").unwrap_err();
        assert!(e.contains("tls.crt or tls.key"), "{e}");
        let e = tls_part(b"hunter2-not-a-key", "tls.key").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let ed25519 = pem_encode(
            "PRIVATE KEY",
            &[
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
            ],
        );
        let e = tls_part(ed25519.as_bytes(), "tls.key").unwrap_err();
        assert!(e.contains("only RSA and ECDSA"), "{e}");
    }
}
