#![no_main]
//! Any value through key/jq extraction, explode and decoding: never panics, and every file path
//! it produces passes the driver's path rules.
use akeyless_csi_provider::jq::JqFilter;
use akeyless_csi_provider::render::{JqResult, shape};
use akeyless_csi_provider::spec::{Encoding, Extract, ItemType, ObjectSpec};
use libfuzzer_sys::fuzz_target;

mod driver_rules;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let (expr, value) = text.split_once('\u{1}').unwrap_or(("", &text));
    let object = ObjectSpec {
        item_type: Some(ItemType::Static),
        extract: match selector % 3 {
            0 => None,
            1 => Some(Extract::Key(expr.to_string())),
            // Only plain paths: any other filter may run forever, which is why mounts evaluate
            // them in a killable worker (jq_input covers a fixed set of terminating ones).
            _ if akeyless_csi_provider::jq::check(expr).is_ok() && JqFilter::new(expr).path().is_some() => {
                Some(Extract::Jq(JqFilter::new(expr)))
            }
            _ => None,
        },
        explode: selector & 0x10 != 0,
        encoding: match (selector >> 2) % 3 {
            0 => Encoding::Utf8,
            1 => Encoding::Base64,
            _ => Encoding::Hex,
        },
        ..ObjectSpec::new("/fuzz", "out")
    };
    if let Ok(files) = shape(&object, value.as_bytes(), JqResult::InProcess, usize::MAX) {
        for (path, _) in files {
            assert!(driver_rules::driver_accepts(&path), "{path:?}");
        }
    }
});
