#![no_main]
//! Any bytes from the backend: response parsing, error scrubbing, token expiries, dynamic
//! secret leases and certificate handling (parsing, validity, renewal time) never panic, and
//! scrubbed messages stay bounded.
use std::time::{Duration, SystemTime};

use akeyless_csi_provider::akeyless::{api, scrub};
use akeyless_csi_provider::certs::{CertificateMaterial, certificate_files};
use akeyless_csi_provider::secret::SecretString;
use akeyless_csi_provider::spec::{CertFormat, CertOptions, ItemType, ObjectSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<api::AuthResponse>(data);
    let _ = serde_json::from_slice::<api::DescribeItemResponse>(data);
    let _ = serde_json::from_slice::<api::CertificateValueResponse>(data);
    let _ = serde_json::from_slice::<api::PkiCertificateResponse>(data);
    let _ = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data);
    let text = String::from_utf8_lossy(data).to_string();
    assert!(scrub(&text).chars().count() <= 301);
    // Token expiry (`/auth`'s `creds.expiry` and `expiration`) and the renewal time derived
    // from it: the bytes as the whole answer, and as the expiration text alone.
    let now = SystemTime::now();
    let _ = akeyless_csi_provider::timefmt::parse_rfc3339(&text);
    let answer = serde_json::from_slice::<serde_json::Value>(data).ok();
    let creds_expiry = answer.as_ref().and_then(|a| a.get("creds")).and_then(|c| c.get("expiry"));
    let expiration = answer.as_ref().and_then(|a| a.get("expiration")).and_then(|e| e.as_str());
    for expires_at in [
        akeyless_csi_provider::akeyless::token_expiry(creds_expiry, expiration),
        akeyless_csi_provider::akeyless::token_expiry(None, Some(&text)),
    ] {
        let renew = akeyless_csi_provider::identity::token_renewal(now, expires_at);
        assert!(renew <= now + Duration::from_secs(366 * 24 * 3600 * 10_000));
    }
    // A dynamic secret's value: its lease length, and when it is renewed.
    let value = SecretString::from(text.clone());
    if let Some(lease) = akeyless_csi_provider::cache::reported_lease(&value) {
        assert!(lease <= akeyless_csi_provider::cache::MAX_LEASE);
        let _ = akeyless_csi_provider::cache::renew_at(now, lease);
    }
    // Certificate bytes as DER: validity and the PKI renewal time.
    if let Ok((not_before, not_after)) = akeyless_csi_provider::certs::validity(data) {
        let _ = akeyless_csi_provider::certs::renewal_time(not_before, not_after);
    }
    for format in [CertFormat::Pem, CertFormat::Bundle, CertFormat::Pfx] {
        let object = ObjectSpec {
            item_type: Some(ItemType::Certificate),
            cert: CertOptions { format, pfx_password: String::new() },
            ..ObjectSpec::new("/fuzz", "tls")
        };
        let (cert, key) = text.split_once("\u{1}").unwrap_or((&text, ""));
        let material = CertificateMaterial {
            certificate_pem: cert.to_string(),
            issuer_pem: None,
            private_key_pem: (!key.is_empty()).then(|| SecretString::from(key.to_string())),
        };
        let _ = certificate_files(&object, &material, SystemTime::now());
    }
});
