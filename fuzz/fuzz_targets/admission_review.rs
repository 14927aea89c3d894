#![no_main]
//! Any bytes as the body of POST /validate: the review never panics, and whatever it accepts it
//! answers with an admission.k8s.io/v1 AdmissionReview echoing the uid, refused only with a
//! status message, and with warnings short enough for the API server.
use akeyless_csi_provider::spec::SpecDefaults;
use akeyless_csi_provider::webhook::review::{Verdict, review};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(outcome) = review(data, &SpecDefaults::default()) else {
        return;
    };
    let answer: serde_json::Value = serde_json::from_slice(&outcome.body).expect("the answer is JSON");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    let response = &answer["response"];
    assert_eq!(response["uid"].as_str(), Some(outcome.uid.as_str()));
    let denied = outcome.verdict == Verdict::Denied;
    assert_eq!(response["allowed"].as_bool(), Some(!denied));
    assert_eq!(response["status"]["message"].is_string(), denied);
    if let Some(warnings) = response["warnings"].as_array() {
        assert!(warnings.iter().all(|w| w.as_str().is_some_and(|w| w.chars().count() <= 256)));
    }
});
