//! One whole SecretProviderClass object → its problems and warnings. Pure. `validate` reads the
//! object from YAML, the admission webhook from an AdmissionReview; both call [`check_class`],
//! which runs the parsing a mount runs ([`SecretProviderSpec::from_parameters`]), checks
//! `secretObjects` against the `objects`, and flags valid but risky settings.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::secret_objects::{self, SecretObject};
use super::{AccessType, Problem, ProviderIdentityFlag, SecretProviderSpec, SpecDefaults, keys};
use crate::request::Parameters;

/// Only SecretProviderClasses of this provider are checked.
pub(crate) const PROVIDER: &str = "akeyless";

/// What is wrong with one SPC (it would fail to mount or sync) and what is risky about it.
/// Every entry names its field (`spec.parameters.akeylessAccessType`, `spec.objects[0].fileName`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClassReport {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// The `spec.provider` of an SPC object, when it is a string.
pub(crate) fn provider(object: &Value) -> Option<&str> {
    object
        .get("spec")
        .and_then(|s| s.get("provider"))
        .and_then(Value::as_str)
}

/// Checks one SecretProviderClass object (the whole object: `spec.provider`, `spec.parameters`,
/// `spec.secretObjects`). `None` when it is not an Akeyless SPC: not ours to judge.
pub(crate) fn check_class(object: &Value, defaults: &SpecDefaults) -> Option<ClassReport> {
    if provider(object) != Some(PROVIDER) {
        return None;
    }
    let spec = object.get("spec");
    let mut report = ClassReport::default();
    let mut params = BTreeMap::new();
    match spec.and_then(|s| s.get("parameters")) {
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or_default().to_string();
                match v {
                    Value::String(s) => {
                        params.insert(key, s.clone());
                    }
                    _ => report.problems.push(Problem::new(
                        format!("spec.parameters.{key}"),
                        format!(
                            "parameter {key} must be a string (quote it); Kubernetes rejects other types"
                        ),
                    )),
                }
            }
        }
        _ => {
            report.problems.push(Problem::new(
                "spec.parameters",
                "spec.parameters is required (the driver refuses an SPC without parameters)",
            ));
            return Some(report);
        }
    }
    let params = Parameters::new(params);
    let parsed = SecretProviderSpec::from_parameters(&params, defaults);
    if let Err(errors) = &parsed {
        for p in &errors.0 {
            report.problems.push(Problem::new(
                format!("spec.{}", p.location),
                p.message.clone(),
            ));
        }
    }
    match spec.and_then(|s| s.get("secretObjects")) {
        None | Some(Value::Null) => {}
        Some(value) => match serde_yaml_ng::from_value::<Vec<SecretObject>>(value.clone()) {
            Ok(secret_objects) => {
                report
                    .problems
                    .extend(secret_objects::structure_problems(&secret_objects));
                // The files are known only when the objects parse.
                if let Ok(spec) = &parsed {
                    report.problems.extend(secret_objects::reference_problems(
                        &secret_objects,
                        &spec.objects,
                    ));
                }
            }
            Err(e) => report.problems.push(Problem::new(
                "spec.secretObjects",
                format!(
                    "spec.secretObjects must be a list of {{secretName, type, data: [{{objectName, key}}]}}: {e}"
                ),
            )),
        },
    }
    report.warnings = warnings(&params);
    Some(report)
}

/// A cloud access type without any of its per-pod parameters: it mounts only when the
/// provider's operator turned on the node identity (a flag this offline check cannot see).
pub(crate) fn needs_provider_identity(params: &Parameters) -> Option<ProviderIdentityFlag> {
    let set = |key: &str| params.get(key).is_some_and(|v| !v.trim().is_empty());
    let access_type = AccessType::parse(params.get(keys::ACCESS_TYPE)?)?;
    let per_pod = match access_type {
        AccessType::AwsIam => set(keys::AWS_ROLE_ARN),
        AccessType::Gcp => {
            set(keys::GCP_SERVICE_ACCOUNT) || set(keys::GCP_WORKLOAD_IDENTITY_PROVIDER)
        }
        AccessType::AzureAd => set(keys::AZURE_CLIENT_ID) || set(keys::AZURE_TENANT_ID),
        _ => return None,
    };
    if per_pod {
        return None;
    }
    ProviderIdentityFlag::for_access_type(access_type)
}

/// Valid but risky settings. Read from the parameters alone, so they are reported whether or
/// not the rest of the SPC is valid. Messages are short (the API server shows warnings as
/// single lines, cut after 256 characters) and never quote a parameter's value.
pub(crate) fn warnings(params: &Parameters) -> Vec<Problem> {
    let mut warnings = Vec::new();
    let mut warn = |key: &str, message: String| {
        warnings.push(Problem::new(format!("spec.parameters.{key}"), message));
    };
    for key in [keys::ACCESS_KEY, keys::UID_INIT_TOKEN] {
        if params.get(key).is_some() {
            warn(
                key,
                format!(
                    "a credential in the SecretProviderClass is readable by everyone who can read it; \
                     move it to the nodePublishSecretRef Secret (key {key})"
                ),
            );
        }
    }
    if let Some(list) = params.get(keys::GATEWAY_URL) {
        let plain = list
            .split(',')
            .map(str::trim)
            .filter(|u| {
                u.get(..7)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
            })
            .count();
        if plain > 0 {
            warn(
                keys::GATEWAY_URL,
                "an http:// gateway: Akeyless tokens and secret values cross the network unencrypted; \
                 use https://"
                    .into(),
            );
        }
    }
    if let Some(flag) = needs_provider_identity(params) {
        warn(keys::ACCESS_TYPE, flag.warning());
    }
    if params.get(keys::TOKEN_SCOPE) == Some("serviceAccount") {
        warn(
            keys::TOKEN_SCOPE,
            "serviceAccount: every pod of a service account shares one Akeyless token; use it only when \
             no Akeyless role tells those pods apart"
                .into(),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Option<ClassReport> {
        let value: Value = serde_yaml_ng::from_str(yaml).unwrap();
        check_class(&value, &SpecDefaults::default())
    }

    fn locations(p: &[Problem]) -> Vec<&str> {
        p.iter().map(|p| p.location.as_str()).collect()
    }

    #[test]
    fn other_providers_are_not_judged() {
        assert_eq!(check("spec: {provider: vault, parameters: {x: 1}}"), None);
        assert_eq!(check("spec: {parameters: {}}"), None);
        assert_eq!(check("kind: SecretProviderClass"), None);
        assert_eq!(check("[1, 2]"), None);
    }

    #[test]
    fn problems_come_from_the_mount_parser_and_secret_objects() {
        let r = check(
            r#"
spec:
  provider: akeyless
  parameters:
    akeylessAccessType: nope
    objects: |
      - secretPath: /db/password
  secretObjects:
    - secretName: db
      type: Opaque
      data: [{objectName: pasword, key: password}]
"#,
        )
        .unwrap();
        // The objects don't parse into a spec, so objectName can't be checked against them.
        assert_eq!(
            locations(&r.problems),
            ["spec.parameters.akeylessAccessType"]
        );
        let r = check(
            r#"
spec:
  provider: akeyless
  parameters:
    objects: |
      - secretPath: /db/password
  secretObjects:
    - secretName: db
      type: Opaque
      data: [{objectName: pasword, key: password}, {objectName: password, key: ""}]
"#,
        )
        .unwrap();
        assert_eq!(
            locations(&r.problems),
            [
                "spec.secretObjects[0].data[1].key",
                "spec.secretObjects[0].data[0].objectName"
            ],
            "{r:?}"
        );
        let r = check("spec: {provider: akeyless, secretObjects: {a: 1}}").unwrap();
        assert_eq!(locations(&r.problems), ["spec.parameters"]);
        let r = check(
            "spec: {provider: akeyless, parameters: {objects: '- secretPath: /a'}, secretObjects: {a: 1}}",
        )
        .unwrap();
        assert_eq!(locations(&r.problems), ["spec.secretObjects"]);
    }

    #[test]
    fn risky_settings_are_warnings_without_values() {
        let r = check(
            r#"
spec:
  provider: akeyless
  parameters:
    akeylessAccessID: p-123
    akeylessAccessKey: "sEcReT-kEy"
    akeylessGatewayURL: "https://gw.example.com, HTTP://10.0.0.1:8080"
    akeylessTokenScope: serviceAccount
    objects: "- secretPath: /a"
"#,
        )
        .unwrap();
        assert!(r.problems.is_empty(), "{r:?}");
        assert_eq!(
            locations(&r.warnings),
            [
                "spec.parameters.akeylessAccessKey",
                "spec.parameters.akeylessGatewayURL",
                "spec.parameters.akeylessTokenScope"
            ]
        );
        for w in &r.warnings {
            assert!(!w.message.contains("sEcReT"), "{w:?}");
            assert!(!w.message.contains("10.0.0.1"), "{w:?}");
            assert!(w.location.len() + w.message.len() < 250, "{w:?}");
        }
        let r = check(
            "spec: {provider: akeyless, parameters: {akeylessTokenScope: pod, objects: '- secretPath: /a'}}",
        )
        .unwrap();
        assert_eq!(r, ClassReport::default());
    }
}
