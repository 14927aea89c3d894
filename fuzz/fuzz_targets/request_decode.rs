#![no_main]
//! Any bytes as the driver's three JSON strings: decoding never panics, and a decoded request
//! never exposes a credential through `Debug`.
use akeyless_csi_provider::proto;
use akeyless_csi_provider::request::MountRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{1}');
    let request = proto::MountRequest {
        attributes: parts.next().unwrap_or_default().to_string(),
        secrets: parts.next().unwrap_or_default().to_string(),
        target_path: String::new(),
        permission: parts.next().unwrap_or_default().to_string(),
        current_object_version: vec![],
    };
    if let Ok(decoded) = MountRequest::decode(&request) {
        assert!(decoded.default_mode <= 0o777);
        let _ = format!("{decoded:?}");
    }
});
