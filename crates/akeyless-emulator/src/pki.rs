//! The emulated PKI certificate issuer: a CA per issuer item that signs submitted CSRs, as
//! Akeyless's `/get-pki-certificate` does (the caller keeps its private key).

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, IsCa, Issuer,
    KeyPair,
};

/// A new self-signed CA for issuer `name`: (certificate PEM, key PEM).
pub(crate) fn new_ca(name: &str) -> (String, String) {
    let key = KeyPair::generate().expect("ECDSA P-256 key generation");
    let mut params = CertificateParams::new(Vec::new()).expect("no names");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Akeyless emulator CA {name}"));
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert.pem(), key.serialize_pem())
}

/// Signs `csr_pem` with the CA, valid from one minute ago for `ttl`. The error says what is
/// wrong with the request (never echoing it).
pub(crate) fn sign_csr(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    csr_pem: &str,
    ttl: Duration,
) -> Result<String, String> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(|_| "issuer key unusable".to_string())?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)
        .map_err(|_| "issuer certificate unusable".to_string())?;
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|_| {
        "csr-data-base64 does not hold a valid certificate signing request".to_string()
    })?;
    let now = time::OffsetDateTime::now_utc();
    csr.params.not_before = now - time::Duration::minutes(1);
    csr.params.not_after =
        now + time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2));
    csr.signed_by(&issuer)
        .map(|c| c.pem())
        .map_err(|_| "signing the certificate failed".to_string())
}
