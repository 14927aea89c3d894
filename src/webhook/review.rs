//! An `admission.k8s.io/v1` `AdmissionReview` for a SecretProviderClass → the answer. Pure.
//!
//! Every byte of the review is untrusted (a namespace user writes the SPC, and anyone who reaches
//! the port can post): the body is bounded by the server, parsing never panics, and nothing here
//! logs. The verdict comes from [`check_class`], the checks `validate` and a mount make.

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::spec::class::check_class;
use crate::spec::{Problem, SpecDefaults};

/// The API group of SecretProviderClasses.
pub(crate) const GROUP: &str = "secrets-store.csi.x-k8s.io";
pub(crate) const KIND: &str = "SecretProviderClass";
const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
/// Most problems listed in a rejection; the rest are counted.
const LISTED_PROBLEMS: usize = 20;
/// Longest problem message in a rejection, in characters.
const MAX_MESSAGE_CHARS: usize = 1000;
/// Longest warning, in characters: the API server cuts warnings after 256.
const MAX_WARNING_CHARS: usize = 256;
/// Longest uid accepted (the API server sends a UUID).
const MAX_UID_CHARS: usize = 128;
/// Longest namespace or name kept for messages and logs (Kubernetes names are at most 253).
const MAX_NAME_CHARS: usize = 253;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<RequestIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    kind: KindIn,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
}

#[derive(Default, Deserialize)]
struct KindIn {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct StatusOut {
    status: &'static str,
    code: u16,
    reason: &'static str,
    message: String,
    details: DetailsOut,
}

/// What kubectl shows for a 422 as for any invalid object: `The SecretProviderClass "db" is
/// invalid:` and one `field: message` line per cause.
#[derive(Serialize)]
struct DetailsOut {
    name: String,
    group: &'static str,
    kind: &'static str,
    causes: Vec<CauseOut>,
}

#[derive(Serialize)]
struct CauseOut {
    reason: &'static str,
    field: String,
    message: String,
}

/// Why a review was answered without checking the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not a `secrets-store.csi.x-k8s.io` SecretProviderClass (the configuration's rules are
    /// wider than they should be).
    NotSpc,
    /// Not CREATE or UPDATE.
    Operation,
    /// The request carries no object.
    NoObject,
    /// `spec.provider` is not `akeyless` (the configuration's matchConditions normally keep
    /// these away).
    OtherProvider,
    /// Being deleted: finalizers must be removable.
    Deleting,
    /// An UPDATE that leaves `spec` as it was (labels, annotations, finalizers): an SPC created
    /// before the webhook must stay editable.
    SpecUnchanged,
}

impl Skip {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Skip::NotSpc => "not a SecretProviderClass",
            Skip::Operation => "operation not checked",
            Skip::NoObject => "no object in the request",
            Skip::OtherProvider => "provider is not akeyless",
            Skip::Deleting => "being deleted",
            Skip::SpecUnchanged => "spec unchanged",
        }
    }
}

/// The verdict on one review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Checked and valid, maybe with warnings.
    Allowed,
    /// Checked: would fail a mount or a sync.
    Denied,
    /// Allowed without a check.
    Skipped(Skip),
}

impl Verdict {
    /// The `result` label of the webhook's metrics.
    pub(crate) fn label(&self, warnings: usize) -> &'static str {
        match self {
            Verdict::Allowed if warnings > 0 => "warned",
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Skipped(_) => "skipped",
        }
    }
}

/// A review's answer and what to log about it. Nothing here quotes a parameter value except
/// `body`, which goes back to the API server (and to the user who applied the object).
#[derive(Debug)]
pub struct Outcome {
    pub uid: String,
    pub operation: String,
    /// `group/version`, as requested (v1 or v1alpha1 for SPCs).
    pub version: String,
    pub namespace: String,
    pub name: String,
    pub verdict: Verdict,
    /// Where the problems are (`spec.parameters.akeylessAccessType`): locations, never messages.
    pub problem_locations: Vec<String>,
    pub warning_locations: Vec<String>,
    /// The `AdmissionReview` to answer with (JSON).
    pub body: Vec<u8>,
}

/// A body that is not an `admission.k8s.io/v1` AdmissionReview request (answered 400, so the
/// API server applies the webhook's failurePolicy).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadReview(pub String);

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
        None => s.to_string(),
    }
}

/// Answers one AdmissionReview.
pub fn review(body: &[u8], defaults: &SpecDefaults) -> Result<Outcome, BadReview> {
    let review: ReviewIn = serde_json::from_slice(body)
        .map_err(|e| BadReview(format!("not an AdmissionReview: {e}")))?;
    if review.api_version != REVIEW_API_VERSION || review.kind != "AdmissionReview" {
        return Err(BadReview(format!(
            "only {REVIEW_API_VERSION} AdmissionReview is served (set admissionReviewVersions: [v1])"
        )));
    }
    let request = review
        .request
        .ok_or_else(|| BadReview("the AdmissionReview has no request".into()))?;
    if request.uid.is_empty() || request.uid.chars().count() > MAX_UID_CHARS {
        return Err(BadReview(
            "request.uid is missing or longer than 128 characters".into(),
        ));
    }
    let object = request.object.as_ref();
    let meta = |field: &str| {
        object
            .and_then(|o| o.get("metadata"))
            .and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let name = request
        .name
        .as_deref()
        .filter(|s| !s.is_empty())
        .or_else(|| meta("name"))
        .map(str::to_string)
        .or_else(|| meta("generateName").map(|g| format!("{g}*")))
        .unwrap_or_default();
    let mut outcome = Outcome {
        uid: request.uid.clone(),
        operation: truncate(&request.operation, 16),
        version: truncate(
            &format!("{}/{}", request.kind.group, request.kind.version),
            MAX_NAME_CHARS,
        ),
        namespace: truncate(
            request.namespace.as_deref().unwrap_or_default(),
            MAX_NAME_CHARS,
        ),
        name: truncate(&name, MAX_NAME_CHARS),
        verdict: Verdict::Allowed,
        problem_locations: vec![],
        warning_locations: vec![],
        body: vec![],
    };

    let (verdict, problems, warnings) = judge(&request, defaults);
    outcome.verdict = verdict;
    outcome.problem_locations = problems.iter().map(|p| p.location.clone()).collect();
    outcome.warning_locations = warnings.iter().map(|p| p.location.clone()).collect();
    let status = (outcome.verdict == Verdict::Denied).then(|| StatusOut {
        status: "Failure",
        code: 422,
        reason: "Invalid",
        message: denial_message(&outcome.namespace, &outcome.name, &problems),
        details: DetailsOut {
            name: outcome.name.clone(),
            group: GROUP,
            kind: KIND,
            causes: causes(&problems),
        },
    });
    let answer = ReviewOut {
        api_version: REVIEW_API_VERSION,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid: &request.uid,
            allowed: outcome.verdict != Verdict::Denied,
            status,
            warnings: warnings
                .iter()
                .map(|w| truncate(&format!("{}: {}", w.location, w.message), MAX_WARNING_CHARS))
                .collect(),
        },
    };
    outcome.body = serde_json::to_vec(&answer)
        .map_err(|e| BadReview(format!("cannot encode the answer: {e}")))?;
    Ok(outcome)
}

type Judgement = (Verdict, Vec<Problem>, Vec<Problem>);

fn judge(request: &RequestIn, defaults: &SpecDefaults) -> Judgement {
    let skip = |why| (Verdict::Skipped(why), vec![], vec![]);
    if request.kind.group != GROUP || request.kind.kind != KIND {
        return skip(Skip::NotSpc);
    }
    if !matches!(request.operation.as_str(), "CREATE" | "UPDATE") {
        return skip(Skip::Operation);
    }
    let Some(object) = &request.object else {
        return skip(Skip::NoObject);
    };
    let Some(report) = check_class(object, defaults) else {
        return skip(Skip::OtherProvider);
    };
    let metadata = object.get("metadata");
    if metadata.and_then(|m| m.get("deletionTimestamp")).is_some() {
        return skip(Skip::Deleting);
    }
    if request.operation == "UPDATE"
        && let Some(old) = &request.old_object
        && old.get("spec") == object.get("spec")
    {
        return skip(Skip::SpecUnchanged);
    }
    let verdict = if report.problems.is_empty() {
        Verdict::Allowed
    } else {
        Verdict::Denied
    };
    (verdict, report.problems, report.warnings)
}

/// One cause per problem (the first [`LISTED_PROBLEMS`]; then a count of the others).
fn causes(problems: &[Problem]) -> Vec<CauseOut> {
    let mut causes: Vec<CauseOut> = problems
        .iter()
        .take(LISTED_PROBLEMS)
        .map(|p| CauseOut {
            reason: "FieldValueInvalid",
            field: p.location.clone(),
            message: truncate(&p.message, MAX_MESSAGE_CHARS),
        })
        .collect();
    if problems.len() > LISTED_PROBLEMS {
        causes.push(CauseOut {
            reason: "FieldValueInvalid",
            field: "spec".into(),
            message: format!(
                "… and {} more problems (akeyless-csi-provider validate lists them all)",
                problems.len().saturating_sub(LISTED_PROBLEMS)
            ),
        });
    }
    causes
}

/// `SecretProviderClass ns/name: location: message` for one problem; a list for several.
pub(crate) fn denial_message(namespace: &str, name: &str, problems: &[Problem]) -> String {
    let who = match (namespace.is_empty(), name.is_empty()) {
        (_, true) => "SecretProviderClass".to_string(),
        (true, false) => format!("SecretProviderClass {name}"),
        (false, false) => format!("SecretProviderClass {namespace}/{name}"),
    };
    let line = |p: &Problem| {
        format!(
            "{}: {}",
            p.location,
            truncate(&p.message, MAX_MESSAGE_CHARS)
        )
    };
    match problems {
        [one] => format!("{who}: {}", line(one)),
        _ => {
            let mut text = format!(
                "{who} has {} problems (akeyless-csi-provider validate shows the same):",
                problems.len()
            );
            for p in problems.iter().take(LISTED_PROBLEMS) {
                text.push_str("\n- ");
                text.push_str(&line(p));
            }
            if problems.len() > LISTED_PROBLEMS {
                text.push_str(&format!(
                    "\n- … and {} more",
                    problems.len().saturating_sub(LISTED_PROBLEMS)
                ));
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;

    fn spc(provider: &str, parameters: Json) -> Json {
        json!({
            "apiVersion": "secrets-store.csi.x-k8s.io/v1",
            "kind": "SecretProviderClass",
            "metadata": {"name": "db", "namespace": "team-a"},
            "spec": {"provider": provider, "parameters": parameters}
        })
    }

    fn request(operation: &str, object: Json, old: Option<Json>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": GROUP, "version": "v1", "kind": KIND},
                "resource": {"group": GROUP, "version": "v1", "resource": "secretproviderclasses"},
                "namespace": "team-a",
                "operation": operation,
                "userInfo": {"username": "alice"},
                "object": object,
                "oldObject": old,
                "dryRun": false
            }
        }))
        .unwrap()
    }

    fn answer(outcome: &Outcome) -> Json {
        let v: Json = serde_json::from_slice(&outcome.body).unwrap();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(
            v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002",
            "{v}"
        );
        v["response"].clone()
    }

    fn run(body: &[u8]) -> Outcome {
        review(body, &SpecDefaults::default()).unwrap()
    }

    const OBJECTS: &str = "- secretPath: /db/password\n";

    #[test]
    fn a_valid_spc_is_allowed_without_status() {
        let o = run(&request(
            "CREATE",
            spc("akeyless", json!({"objects": OBJECTS})),
            None,
        ));
        assert_eq!(o.verdict, Verdict::Allowed);
        assert_eq!((o.namespace.as_str(), o.name.as_str()), ("team-a", "db"));
        let r = answer(&o);
        assert_eq!(r["allowed"], true);
        assert!(
            r.get("status").is_none() && r.get("warnings").is_none(),
            "{r}"
        );
    }

    #[test]
    fn a_bad_spc_is_denied_with_the_validators_message() {
        let o = run(&request(
            "CREATE",
            spc(
                "akeyless",
                json!({"akeylessAccessType": "password", "objects": OBJECTS}),
            ),
            None,
        ));
        assert_eq!(o.verdict, Verdict::Denied);
        assert_eq!(o.problem_locations, ["spec.parameters.akeylessAccessType"]);
        let r = answer(&o);
        assert_eq!(r["allowed"], false);
        assert_eq!(r["status"]["code"], 422);
        assert_eq!(r["status"]["reason"], "Invalid");
        assert_eq!(
            r["status"]["details"],
            json!({"name": "db", "group": GROUP, "kind": KIND, "causes": [{
                "reason": "FieldValueInvalid",
                "field": "spec.parameters.akeylessAccessType",
                "message": "parameter akeylessAccessType \"password\" is not supported; use one of: access_key, k8s, jwt, universal_identity, aws_iam, azure_ad, gcp"
            }]})
        );
        assert_eq!(
            r["status"]["message"],
            "SecretProviderClass team-a/db: spec.parameters.akeylessAccessType: parameter akeylessAccessType \
             \"password\" is not supported; use one of: access_key, k8s, jwt, universal_identity, aws_iam, azure_ad, gcp"
        );

        let o = run(&request(
            "CREATE",
            spc(
                "akeyless",
                json!({"akeylessIgnoreCache": "yes", "objects": "- secretPath: /a\n  fileName: ../x\n"}),
            ),
            None,
        ));
        let message = answer(&o)["status"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.starts_with(
                "SecretProviderClass team-a/db has 2 problems (akeyless-csi-provider validate shows the same):\n\
                 - spec.parameters.akeylessIgnoreCache: parameter akeylessIgnoreCache must be"
            ),
            "{message}"
        );
        assert!(
            message.contains(
                "\n- spec.objects[0].fileName: objects[0] (secretPath /a): fileName \"../x\""
            ),
            "{message}"
        );
    }

    #[test]
    fn risky_settings_are_allowed_with_warnings_that_quote_no_value() {
        let o = run(&request(
            "CREATE",
            spc(
                "akeyless",
                json!({"akeylessAccessKey": "Sup3rSecretKey", "akeylessGatewayURL": "http://gw:8080",
                       "objects": OBJECTS}),
            ),
            None,
        ));
        assert_eq!(o.verdict, Verdict::Allowed);
        assert_eq!(o.verdict.label(o.warning_locations.len()), "warned");
        let r = answer(&o);
        assert_eq!(r["allowed"], true);
        let warnings: Vec<&str> = r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("spec.parameters.akeylessAccessKey: "));
        assert!(warnings[1].starts_with("spec.parameters.akeylessGatewayURL: "));
        assert!(!String::from_utf8_lossy(&o.body).contains("Sup3rSecretKey"));
        assert!(warnings.iter().all(|w| w.chars().count() <= 256));
    }

    #[test]
    fn other_providers_and_other_operations_are_allowed_unchecked() {
        let bad = json!({"akeylessAccessType": "password"});
        let o = run(&request("CREATE", spc("vault", bad.clone()), None));
        assert_eq!(o.verdict, Verdict::Skipped(Skip::OtherProvider));
        assert_eq!(answer(&o)["allowed"], true);
        let o = run(&request("DELETE", spc("akeyless", bad.clone()), None));
        assert_eq!(o.verdict, Verdict::Skipped(Skip::Operation));
        let mut deleting = spc("akeyless", bad.clone());
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let o = run(&request("UPDATE", deleting, None));
        assert_eq!(o.verdict, Verdict::Skipped(Skip::Deleting));
        let mut other_kind: Json =
            serde_json::from_slice(&request("CREATE", spc("akeyless", bad), None)).unwrap();
        other_kind["request"]["kind"]["kind"] = json!("ConfigMap");
        let other_kind = serde_json::to_vec(&other_kind).unwrap();
        let o = run(&other_kind);
        assert_eq!(o.verdict, Verdict::Skipped(Skip::NotSpc));
    }

    #[test]
    fn an_update_is_checked_only_when_it_changes_the_spec() {
        let good = spc("akeyless", json!({"objects": OBJECTS}));
        let bad = spc(
            "akeyless",
            json!({"objects": OBJECTS, "akeylessTokenScope": "everyone"}),
        );
        let o = run(&request("UPDATE", bad.clone(), Some(good.clone())));
        assert_eq!(o.verdict, Verdict::Denied);
        assert_eq!(o.problem_locations, ["spec.parameters.akeylessTokenScope"]);
        // A label added to an SPC that was already invalid (created before the webhook).
        let mut relabelled = bad.clone();
        relabelled["metadata"]["labels"] = json!({"team": "a"});
        let o = run(&request("UPDATE", relabelled, Some(bad)));
        assert_eq!(o.verdict, Verdict::Skipped(Skip::SpecUnchanged));
        assert_eq!(answer(&o)["allowed"], true);
    }

    #[test]
    fn secret_objects_are_checked_against_the_objects() {
        let mut object = spc("akeyless", json!({"objects": OBJECTS}));
        object["spec"]["secretObjects"] = json!([{
            "secretName": "db", "type": "Opaque",
            "data": [{"objectName": "db-pasword", "key": "password"}]
        }]);
        let o = run(&request("CREATE", object, None));
        assert_eq!(
            o.problem_locations,
            ["spec.secretObjects[0].data[0].objectName"]
        );
        let message = answer(&o)["status"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains("(files: password)"), "{message}");
    }

    #[test]
    fn malformed_reviews_are_bad_requests_not_panics() {
        let bad = |b: &[u8]| review(b, &SpecDefaults::default()).unwrap_err();
        assert!(bad(b"").0.contains("not an AdmissionReview"));
        assert!(bad(b"[]").0.contains("not an AdmissionReview"));
        assert!(
            bad(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#)
                .0
                .contains("admissionReviewVersions")
        );
        assert!(
            bad(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
                .0
                .contains("no request")
        );
        let long_uid = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"{}"}}}}"#,
            "u".repeat(129)
        );
        assert!(bad(long_uid.as_bytes()).0.contains("uid"));
        // Deep nesting is refused by the JSON parser's recursion limit.
        let deep = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"x","object":{}{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(bad(deep.as_bytes()).0.contains("not an AdmissionReview"));
        // Odd shapes of the object are judged, not crashed on.
        for object in [
            json!(null),
            json!("text"),
            json!({"spec": "x"}),
            json!({"spec": {"provider": "akeyless", "parameters": [1, 2]}}),
            json!({"spec": {"provider": "akeyless", "parameters": {"objects": 7}}}),
            json!({"metadata": 3, "spec": {"provider": "akeyless", "parameters": {"objects": "- secretPath: /a"}}}),
        ] {
            let o = run(&request("CREATE", object.clone(), None));
            assert!(answer(&o)["allowed"].is_boolean(), "{object}");
        }
    }

    #[test]
    fn long_lists_and_messages_are_bounded() {
        let objects: String = (0..30)
            .map(|i| format!("- secretPath: /s{i}\n  mode: \"9\"\n"))
            .collect();
        let o = run(&request(
            "CREATE",
            spc("akeyless", json!({"objects": objects})),
            None,
        ));
        let message = answer(&o)["status"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains("has 30 problems"), "{message}");
        assert!(message.ends_with("\n- … and 10 more"), "{message}");
        let causes = answer(&o)["status"]["details"]["causes"].clone();
        assert_eq!(causes.as_array().unwrap().len(), 21);
        assert!(
            causes[20]["message"]
                .as_str()
                .unwrap()
                .starts_with("… and 10 more problems")
        );
        assert_eq!(o.problem_locations.len(), 30);
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("é", 3), "é");
    }
}
