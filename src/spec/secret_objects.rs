//! `spec.secretObjects`: the Kubernetes Secrets written from a mount's files, by the driver's
//! own sync (`syncSecret.enabled`) or by our `sync` controller. Pure: the type, the driver's
//! structure rules, and the check of every `objectName` against the files the `objects` write.
//! The sync controller, `validate` and the admission webhook share it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{CertFormat, ItemType, ObjectSpec, Problem};

/// One entry of `spec.secretObjects` (the driver's schema).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretObject {
    #[serde(default)]
    pub secret_name: String,
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub data: Vec<SecretObjectData>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretObjectData {
    /// The file (path in the mount) whose content goes into the Secret.
    #[serde(default)]
    pub object_name: String,
    /// The key in the Secret's `data`.
    #[serde(default)]
    pub key: String,
}

/// The files a certificate or PKI object writes in its directory (default `format: pem`).
pub(crate) const CERTIFICATE_FILES: &[&str] = &["tls.crt", "tls.key", "ca.crt"];

/// At most this many file names are listed in a message about an unknown `objectName`.
const LISTED_FILES: usize = 20;

/// The driver's rules for `spec.secretObjects` (name, type and data required; each data entry
/// names an object and a key), plus what the API server would refuse when the Secret is
/// written: Secret names and keys that aren't valid, and two entries writing the same Secret.
/// Every problem, in order; each message names its field.
pub(crate) fn structure_problems(objects: &[SecretObject]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (i, object) in objects.iter().enumerate() {
        let at = format!("spec.secretObjects[{i}]");
        let mut push = |field: &str, message: String| {
            problems.push(Problem::new(format!("{at}.{field}"), message));
        };
        let name = object.secret_name.trim();
        if name.is_empty() {
            push("secretName", format!("{at}.secretName is empty"));
        } else if !is_dns_subdomain(name) {
            push(
                "secretName",
                format!(
                    "{at}.secretName {name:?} is not a valid Secret name (lower-case letters, digits, '-' and '.')"
                ),
            );
        } else if !names.insert(name) {
            push(
                "secretName",
                format!(
                    "{at}.secretName {name:?} is declared twice; each Secret must be declared once"
                ),
            );
        }
        if object.type_.trim().is_empty() {
            push(
                "type",
                format!(
                    "{at}.type is empty: set a Secret type such as Opaque or kubernetes.io/tls"
                ),
            );
        }
        if object.data.is_empty() {
            push("data", format!("{at}.data is empty"));
        }
        let mut keys = BTreeSet::new();
        for (j, data) in object.data.iter().enumerate() {
            if data.object_name.trim().is_empty() {
                push(
                    &format!("data[{j}].objectName"),
                    format!("{at}.data[{j}].objectName is empty"),
                );
            }
            let key = data.key.trim();
            if key.is_empty() {
                push(
                    &format!("data[{j}].key"),
                    format!("{at}.data[{j}].key is empty"),
                );
            } else if !is_secret_key(key) {
                push(
                    &format!("data[{j}].key"),
                    format!(
                        "{at}.data[{j}].key {key:?} is not a valid Secret key (letters, digits, '-', '_' and '.')"
                    ),
                );
            } else if !keys.insert(key) {
                push(
                    &format!("data[{j}].key"),
                    format!("{at}.data[{j}].key {key:?} appears twice in this Secret"),
                );
            }
        }
    }
    problems
}

/// How an `objectName` relates to one object's files, as far as can be known offline.
enum Fit {
    /// The object writes this file (or may: an exploded key, a certificate file of an object
    /// whose type is looked up at mount time).
    Yes,
    /// The name is the directory a certificate or `explode` object writes, not a file in it.
    Directory(String),
    No,
}

fn fit(name: &str, object: &ObjectSpec) -> Fit {
    let inside = name
        .strip_prefix(object.file_name.as_str())
        .and_then(|rest| rest.strip_prefix('/'));
    if object.explode {
        return match inside {
            // One file per top-level key of the JSON value: the keys are known only at mount time.
            Some(key) if !key.is_empty() && !key.contains('/') => Fit::Yes,
            _ if name == object.file_name => Fit::Directory(format!(
                "{:?} is the directory that {} explodes into; name one of its files, {}/<key>",
                object.file_name,
                object.label(),
                object.file_name
            )),
            _ => Fit::No,
        };
    }
    let certificate_dir = object.item_type.is_some_and(ItemType::is_certificate)
        && object.cert.format == CertFormat::Pem;
    if certificate_dir {
        return match inside {
            Some(file) if CERTIFICATE_FILES.contains(&file) => Fit::Yes,
            _ if name == object.file_name => Fit::Directory(format!(
                "{:?} is the directory that {} writes its PEM files into; name one of them: {}",
                object.file_name,
                object.label(),
                certificate_files(&object.file_name).join(", ")
            )),
            _ => Fit::No,
        };
    }
    if name == object.file_name {
        return Fit::Yes;
    }
    // No `type`: the item may turn out to be a certificate, written as a directory.
    match inside {
        Some(file) if object.item_type.is_none() && CERTIFICATE_FILES.contains(&file) => Fit::Yes,
        _ => Fit::No,
    }
}

fn certificate_files(dir: &str) -> Vec<String> {
    CERTIFICATE_FILES
        .iter()
        .map(|f| format!("{dir}/{f}"))
        .collect()
}

/// The files (or file patterns) the objects write, for messages.
fn known_files(objects: &[ObjectSpec]) -> Vec<String> {
    let mut files = Vec::new();
    for o in objects {
        if o.explode {
            files.push(format!("{}/<key>", o.file_name));
        } else if o.item_type.is_some_and(ItemType::is_certificate)
            && o.cert.format == CertFormat::Pem
        {
            files.extend(certificate_files(&o.file_name));
        } else {
            files.push(o.file_name.clone());
        }
    }
    files
}

/// Checks that every `data[].objectName` is a file the objects write: an object's `fileName`,
/// a file in a certificate object's directory (`tls.crt`, `tls.key`, `ca.crt`), or a key of an
/// `explode` object (any single name: the keys are known only at mount time).
pub(crate) fn reference_problems(
    secret_objects: &[SecretObject],
    objects: &[ObjectSpec],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, secret) in secret_objects.iter().enumerate() {
        for (j, data) in secret.data.iter().enumerate() {
            let name = data.object_name.trim();
            if name.is_empty() {
                continue; // a structure problem already
            }
            let at = format!("spec.secretObjects[{i}].data[{j}].objectName");
            let mut directory = None;
            let mut found = false;
            for object in objects {
                match fit(name, object) {
                    Fit::Yes => {
                        found = true;
                        break;
                    }
                    Fit::Directory(why) => directory = directory.or(Some(why)),
                    Fit::No => {}
                }
            }
            if found {
                continue;
            }
            let message = match directory {
                Some(why) => format!("{at} {why}"),
                None => {
                    let files = known_files(objects);
                    let mut listed: Vec<&str> = files
                        .iter()
                        .take(LISTED_FILES)
                        .map(String::as_str)
                        .collect();
                    if files.len() > LISTED_FILES {
                        listed.push("…");
                    }
                    format!(
                        "{at} {name:?} is not a file of this SecretProviderClass: no object writes it; \
                         use the fileName of one of the objects (files: {})",
                        listed.join(", ")
                    )
                }
            };
            problems.push(Problem::new(at, message));
        }
    }
    problems
}

/// RFC 1123 subdomain, as Kubernetes names most objects.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A valid key of a Secret's `data`.
pub(crate) fn is_secret_key(s: &str) -> bool {
    s.len() <= 253
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, data: &[(&str, &str)]) -> SecretObject {
        SecretObject {
            secret_name: name.into(),
            type_: "Opaque".into(),
            data: data
                .iter()
                .map(|(o, k)| SecretObjectData {
                    object_name: o.to_string(),
                    key: k.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn objects(yaml: &str) -> Vec<ObjectSpec> {
        let mut problems = Vec::new();
        let objects = super::super::objects::parse_objects(yaml, 100, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        objects
    }

    #[test]
    fn structure_problems_are_all_reported_in_order() {
        let mut bad = secret("Db", &[("", "k"), ("a", "k/x"), ("b", "k2"), ("c", "k2")]);
        bad.type_ = " ".into();
        let p = structure_problems(&[bad, secret("ok", &[]), secret("ok", &[("a", "b")])]);
        let locations: Vec<&str> = p.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "spec.secretObjects[0].secretName",
                "spec.secretObjects[0].type",
                "spec.secretObjects[0].data[0].objectName",
                "spec.secretObjects[0].data[1].key",
                "spec.secretObjects[0].data[3].key",
                "spec.secretObjects[1].data",
                "spec.secretObjects[2].secretName",
            ],
            "{p:?}"
        );
        assert!(
            p.iter().all(|p| p.message.starts_with(&p.location)),
            "{p:?}"
        );
        assert!(p[6].message.contains("declared twice"));
        assert!(structure_problems(&[secret("db", &[("a", "password")])]).is_empty());
    }

    #[test]
    fn object_names_must_be_files_the_objects_write() {
        let objects = objects(
            "- {secretPath: /db/password}\n\
             - {secretPath: /db/config, fileName: db/user, key: username}\n\
             - {secretPath: /tls, type: certificate, fileName: tls}\n\
             - {secretPath: /bundle, type: certificate, format: bundle, fileName: web.pem}\n\
             - {secretPath: /json, explode: true, fileName: env}\n\
             - {secretPath: /untyped, fileName: maybe-cert}\n",
        );
        let ok = secret(
            "s",
            &[
                ("password", "a"),
                ("db/user", "b"),
                ("tls/tls.crt", "c"),
                ("tls/ca.crt", "d"),
                ("web.pem", "e"),
                ("env/ANY_KEY", "f"),
                ("maybe-cert", "g"),
                ("maybe-cert/tls.key", "h"),
            ],
        );
        assert_eq!(reference_problems(&[ok], &objects), vec![]);

        let bad = secret(
            "s",
            &[
                ("pasword", "a"),
                ("tls", "b"),
                ("tls/tls.pem", "c"),
                ("env", "d"),
                ("env/a/b", "e"),
                ("web.pem/tls.crt", "f"),
                ("maybe-cert/other", "g"),
            ],
        );
        let p = reference_problems(&[bad], &objects);
        let at = |j: usize| format!("spec.secretObjects[0].data[{j}].objectName");
        assert_eq!(
            p.iter().map(|p| p.location.clone()).collect::<Vec<_>>(),
            (0..7).map(at).collect::<Vec<_>>(),
            "{p:?}"
        );
        assert!(
            p[0].message.contains("\"pasword\" is not a file")
                && p[0].message.contains(
                    "files: password, db/user, tls/tls.crt, tls/tls.key, tls/ca.crt, web.pem, env/<key>, maybe-cert"
                ),
            "{}",
            p[0].message
        );
        assert!(
            p[1].message.contains("directory") && p[1].message.contains("tls/tls.crt"),
            "{}",
            p[1].message
        );
        assert!(p[3].message.contains("env/<key>"), "{}", p[3].message);
    }

    #[test]
    fn long_file_lists_are_cut() {
        let yaml: String = (0..30).map(|i| format!("- secretPath: /s{i}\n")).collect();
        let p = reference_problems(&[secret("s", &[("nope", "k")])], &objects(&yaml));
        assert!(p[0].message.contains("s19, …)"), "{}", p[0].message);
        assert!(!p[0].message.contains("s20"));
    }
}
