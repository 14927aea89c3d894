#![no_main]
//! Any text as the `objects` YAML (and as an extra parameter): parsing never panics, and every
//! accepted fileName also passes the driver's path rules and is unique.
use std::collections::BTreeMap;

use akeyless_csi_provider::request::Parameters;
use akeyless_csi_provider::spec::{SecretProviderSpec, SpecDefaults};
use libfuzzer_sys::fuzz_target;

mod driver_rules;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).to_string();
    let (objects, extra) = text.split_once('\u{1}').unwrap_or((text.as_str(), ""));
    let mut params = BTreeMap::new();
    params.insert("akeylessAccessID".to_string(), "p-fuzz".to_string());
    params.insert("objects".to_string(), objects.to_string());
    if let Some((k, v)) = extra.split_once('=') {
        params.insert(k.to_string(), v.to_string());
    }
    if let Ok(spec) = SecretProviderSpec::from_parameters(&Parameters::new(params), &SpecDefaults::default()) {
        let mut seen = std::collections::HashSet::new();
        for object in &spec.objects {
            assert!(driver_rules::driver_accepts(&object.file_name), "{:?}", object.file_name);
            assert!(seen.insert(object.file_name.clone()), "duplicate {:?}", object.file_name);
            assert!(object.mode.is_none_or(|m| m <= 0o777));
        }
    }
});
