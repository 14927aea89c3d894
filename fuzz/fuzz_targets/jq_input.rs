#![no_main]
//! Any bytes as the secret value of an object shaped by `key`, `jq` (plain paths in process,
//! a fixed set of terminating jaq filters) and `explode`, with every encoding and a file cap:
//! shaping never panics or overflows the stack, never returns more files than the cap, every
//! path passes the driver's rules, a plain path gives exactly what jaq gives, and the worker's
//! protocol answers every request.
use akeyless_csi_provider::eval::worker;
use akeyless_csi_provider::jq::{self, JqFilter};
use akeyless_csi_provider::render::{JqResult, shape};
use akeyless_csi_provider::spec::{Encoding, Extract, ItemType, ObjectSpec};
use libfuzzer_sys::fuzz_target;

mod driver_rules;

/// Plain paths (evaluated without jaq) and filters that always terminate on a finite value.
const FILTERS: &[&str] = &[
    ".",
    ".a",
    ".a.b",
    ".[0]",
    ".[-1]",
    ".a[1]",
    ".[\"x y\"]",
    ".\"a\".b",
    ".a.[0]",
    "keys",
    "to_entries",
    "[.[]?] | length",
    "\"\\(.user)@\\(.host)\"",
    "tostring",
    "[.. | numbers] | add",
    "with_entries(.value |= tostring)",
    "paths | length",
];

const MAX_FILES: usize = 16;

/// Equal values, numbers within a relative 1e-15 (see above).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || ((x - y).abs() <= 1e-15 * x.abs().max(y.abs())),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else { return };
    let filter = FILTERS[usize::from(selector) % FILTERS.len()];
    let mode = (selector / 32) % 4;
    let object = ObjectSpec {
        item_type: Some(ItemType::Static),
        extract: match mode {
            0 => None,
            1 => Some(Extract::Key(filter.trim_start_matches('.').to_string())),
            _ => Some(Extract::Jq(JqFilter::new(filter))),
        },
        explode: mode == 3 || selector & 0x10 != 0,
        encoding: match (selector >> 2) % 3 {
            0 => Encoding::Utf8,
            1 => Encoding::Base64,
            _ => Encoding::Hex,
        },
        ..ObjectSpec::new("/fuzz", "out")
    };
    if let Ok(files) = shape(&object, value, JqResult::InProcess, MAX_FILES) {
        assert!(files.len() <= MAX_FILES, "{} files", files.len());
        for (path, _) in files {
            assert!(driver_rules::driver_accepts(&path), "{path:?}");
        }
    }
    // Plain paths agree with jaq on every JSON value (numbers to the last bit but one:
    // serde_json, without its float_roundtrip feature, may parse a float one unit in the last
    // place off, and jaq's answer is parsed once more than the path's).
    let parsed = JqFilter::new(filter);
    if let (Some(path), Ok(json)) = (parsed.path(), serde_json::from_slice(value)) {
        let by_path = jq::eval_path(path, &json).map(std::borrow::Cow::into_owned).ok();
        let by_jaq = jq::apply(filter, &json).ok();
        let agree = match (&by_path, &by_jaq) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            _ => false,
        };
        assert!(agree, "{filter}: {by_path:?} vs {by_jaq:?}");
    }
    // The worker's side of the protocol, in process: a request (with one of the filters above;
    // any filter could run forever, which is what the worker process is for) gets an answer
    // that reads back; a garbled request is refused.
    let mut request = worker::request_header(filter).to_vec();
    request.extend(filter.as_bytes());
    request.extend(value);
    let answer = worker::evaluate(&request);
    match (worker::Answer::decode(&answer.encode()), &answer) {
        (Ok(worker::Answer::Value(read)), worker::Answer::Value(sent)) => {
            assert!(same(&read, sent), "{read:?} vs {sent:?}")
        }
        (read, _) => assert_eq!(read, Ok(answer)),
    }
    if let Some((garbled_filter, _)) = worker::split_request(value) {
        assert!(garbled_filter.len() <= value.len());
    }
});
