//! `validate FILE...`: offline checks of SecretProviderClass manifests with the same parser the
//! provider uses at mount time. Credentials are not checked (they live in Secrets and tokens).

use std::path::PathBuf;

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::request::Parameters;
use crate::spec::{SecretProviderSpec, SpecDefaults};

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// SecretProviderClass YAML files (several documents per file are fine).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// One finding, printed as `file:doc N (name): location: message`.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub document: usize,
    pub name: String,
    pub location: String,
    pub message: String,
}

/// Checks every SecretProviderClass with `spec.provider: akeyless` in a YAML text. Returns the
/// number of such classes and the problems found.
pub fn check_text(text: &str) -> (usize, Vec<Finding>) {
    let mut checked: usize = 0;
    let mut findings = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let document = i.saturating_add(1);
        let value = match Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                findings.push(Finding {
                    document,
                    name: String::new(),
                    location: "yaml".into(),
                    message: format!("not valid YAML: {e}"),
                });
                break; // the parser cannot resynchronise after a syntax error
            }
        };
        if value.get("kind").and_then(Value::as_str) != Some("SecretProviderClass") {
            continue;
        }
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let spec = value.get("spec");
        if spec.and_then(|s| s.get("provider")).and_then(Value::as_str) != Some("akeyless") {
            continue;
        }
        checked = checked.saturating_add(1);
        let mut push = |location: String, message: String| {
            findings.push(Finding {
                document,
                name: name.clone(),
                location,
                message,
            })
        };
        let mut params = std::collections::BTreeMap::new();
        match spec.and_then(|s| s.get("parameters")) {
            Some(Value::Mapping(m)) => {
                for (k, v) in m {
                    let key = k.as_str().unwrap_or_default().to_string();
                    match v {
                        Value::String(s) => {
                            params.insert(key, s.clone());
                        }
                        _ => push(
                            format!("spec.parameters.{key}"),
                            format!(
                                "parameter {key} must be a string (quote it); Kubernetes rejects other types"
                            ),
                        ),
                    }
                }
            }
            _ => {
                push(
                    "spec.parameters".into(),
                    "spec.parameters is required (the driver refuses an SPC without parameters)"
                        .into(),
                );
                continue;
            }
        }
        if let Err(errors) =
            SecretProviderSpec::from_parameters(&Parameters::new(params), &SpecDefaults::default())
        {
            for p in errors.0 {
                push(format!("spec.{}", p.location), p.message);
            }
        }
    }
    (checked, findings)
}

pub fn run(args: ValidateArgs) -> Result<(), String> {
    let mut problems: usize = 0;
    for file in &args.files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                println!("{}: cannot read: {e}", file.display());
                problems = problems.saturating_add(1);
                continue;
            }
        };
        let (checked, findings) = check_text(&text);
        for f in &findings {
            let who = if f.name.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.name)
            };
            println!(
                "{}:doc {}{who}: {}: {}",
                file.display(),
                f.document,
                f.location,
                f.message
            );
        }
        problems = problems.saturating_add(findings.len());
        if findings.is_empty() {
            println!(
                "{}: ok ({checked} akeyless SecretProviderClass(es))",
                file.display()
            );
        }
    }
    if problems > 0 {
        return Err(format!("{problems} problem(s) found"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: good}
spec:
  provider: akeyless
  parameters:
    akeylessAccessID: p-123
    objects: |
      - secretPath: /a
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: other}
spec:
  provider: vault
  parameters: {}
"#;

    #[test]
    fn good_file_has_no_findings() {
        assert_eq!(check_text(GOOD), (1, vec![]));
    }

    #[test]
    fn bad_file_reports_each_problem_with_location() {
        let bad = r#"
kind: SecretProviderClass
metadata: {name: bad}
spec:
  provider: akeyless
  parameters:
    akeylessAccessType: nope
    akeylessIgnoreCache: true
    objects: |
      - secretPath: /a
        fileName: /abs
"#;
        let (checked, findings) = check_text(bad);
        assert_eq!(checked, 1);
        let locations: Vec<&str> = findings.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(
            locations,
            vec![
                "spec.parameters.akeylessIgnoreCache",
                "spec.parameters.akeylessAccessType",
                "spec.objects[0].fileName"
            ],
            "{findings:?}"
        );
        assert!(findings.iter().all(|f| f.name == "bad" && f.document == 1));
    }
}
