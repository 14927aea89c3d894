#![no_main]
//! Any bytes from the backend: response parsing, error scrubbing and certificate handling never
//! panic, and scrubbed messages stay bounded.
use std::time::SystemTime;

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
