//! `validate FILE...`: offline checks of SecretProviderClass manifests with the same parser the
//! provider uses at mount time ([`crate::spec::class::check_class`], which the admission webhook
//! shares). Credentials are not checked (they live in Secrets and tokens).

use std::path::PathBuf;

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::spec::SpecDefaults;
use crate::spec::class::check_class;

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

/// What [`check_text`] found in one YAML text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// SecretProviderClasses with `spec.provider: akeyless`.
    pub classes: usize,
    /// What would fail a mount or a sync.
    pub problems: Vec<Finding>,
    /// Valid but risky settings.
    pub warnings: Vec<Finding>,
}

/// Checks every SecretProviderClass with `spec.provider: akeyless` in a YAML text.
pub fn check_text(text: &str) -> Checked {
    let mut checked = Checked::default();
    let defaults = SpecDefaults::default();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let document = i.saturating_add(1);
        let value = match Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                checked.problems.push(Finding {
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
        let Some(report) = check_class(&value, &defaults) else {
            continue;
        };
        checked.classes = checked.classes.saturating_add(1);
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let finding = |p: crate::spec::Problem| Finding {
            document,
            name: name.to_string(),
            location: p.location,
            message: p.message,
        };
        checked
            .problems
            .extend(report.problems.into_iter().map(finding));
        checked
            .warnings
            .extend(report.warnings.into_iter().map(finding));
    }
    checked
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
        let checked = check_text(&text);
        let print = |f: &Finding, what: &str| {
            let who = if f.name.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.name)
            };
            println!(
                "{}:doc {}{who}: {what}{}: {}",
                file.display(),
                f.document,
                f.location,
                f.message
            );
        };
        for f in &checked.problems {
            print(f, "");
        }
        for f in &checked.warnings {
            print(f, "warning: ");
        }
        problems = problems.saturating_add(checked.problems.len());
        if checked.problems.is_empty() {
            println!(
                "{}: ok ({} akeyless SecretProviderClass(es))",
                file.display(),
                checked.classes
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
        assert_eq!(
            check_text(GOOD),
            Checked {
                classes: 1,
                ..Checked::default()
            }
        );
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
        let checked = check_text(bad);
        assert_eq!(checked.classes, 1);
        let findings = checked.problems;
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

    #[test]
    fn secret_objects_and_warnings_are_reported() {
        let text = r#"
kind: SecretProviderClass
metadata: {name: risky}
spec:
  provider: akeyless
  parameters:
    akeylessAccessKey: key
    objects: |
      - secretPath: /db/password
  secretObjects:
    - secretName: db
      type: Opaque
      data: [{objectName: db-password, key: password}]
"#;
        let checked = check_text(text);
        assert_eq!(checked.classes, 1);
        assert_eq!(
            checked
                .problems
                .iter()
                .map(|f| f.location.as_str())
                .collect::<Vec<_>>(),
            ["spec.secretObjects[0].data[0].objectName"]
        );
        assert_eq!(
            checked
                .warnings
                .iter()
                .map(|f| (f.name.as_str(), f.location.as_str()))
                .collect::<Vec<_>>(),
            [("risky", "spec.parameters.akeylessAccessKey")]
        );
    }
}
