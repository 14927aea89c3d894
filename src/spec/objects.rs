//! The `objects` parameter: a YAML list of items to fetch and how to shape them into files.
//! One entry is read in `entry.rs`, its scalar values in `values.rs`.

mod entry;
mod values;

use std::fmt;
use std::time::Duration;

use serde_yaml_ng::Value;

use super::Problem;
use super::paths::find_conflict;
pub use values::parse_duration;

/// Akeyless item types the provider can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemType {
    Static,
    Rotated,
    Dynamic,
    Certificate,
    Pki,
}

impl ItemType {
    pub(crate) const ACCEPTED: &'static str = "static, rotated, dynamic, certificate, pki";

    pub(crate) fn parse(s: &str) -> Option<ItemType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "static" | "static_secret" | "static-secret" => Some(ItemType::Static),
            "rotated" | "rotated_secret" | "rotated-secret" => Some(ItemType::Rotated),
            "dynamic" | "dynamic_secret" | "dynamic-secret" => Some(ItemType::Dynamic),
            "certificate" => Some(ItemType::Certificate),
            "pki" | "pki_cert_issuer" => Some(ItemType::Pki),
            _ => None,
        }
    }

    /// Maps describe-item's `item_type` to ours; `None` for types we cannot mount.
    pub(crate) fn from_akeyless(item_type: &str) -> Option<ItemType> {
        match item_type {
            "STATIC_SECRET" => Some(ItemType::Static),
            "ROTATED_SECRET" => Some(ItemType::Rotated),
            "DYNAMIC_SECRET" => Some(ItemType::Dynamic),
            "CERTIFICATE" => Some(ItemType::Certificate),
            "PKI_CERT_ISSUER" => Some(ItemType::Pki),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ItemType::Static => "static",
            ItemType::Rotated => "rotated",
            ItemType::Dynamic => "dynamic",
            ItemType::Certificate => "certificate",
            ItemType::Pki => "pki",
        }
    }

    /// Whether the item is a certificate, written as PEM files (or a bundle or PKCS#12).
    pub(crate) fn is_certificate(self) -> bool {
        matches!(self, ItemType::Certificate | ItemType::Pki)
    }

    pub(crate) fn is_versioned(self) -> bool {
        matches!(
            self,
            ItemType::Static | ItemType::Rotated | ItemType::Certificate
        )
    }
}

impl fmt::Display for ItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to take a part of a JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extract {
    /// A top-level key.
    Key(String),
    /// A jq expression (classified: a plain path, or anything else).
    Jq(crate::jq::JqFilter),
}

/// How a certificate is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertFormat {
    /// A directory: `tls.crt` (leaf then chain), `tls.key`, `ca.crt` (when a chain is present).
    #[default]
    Pem,
    /// One PEM file: the key, the leaf, then the chain.
    Bundle,
    /// One PKCS#12 file holding the key and the chain.
    Pfx,
}

/// Options of certificate and PKI objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertOptions {
    pub format: CertFormat,
    /// PKCS#12 password (empty by default). Not a secret from whoever can read the SPC.
    pub pfx_password: String,
}

/// What a PKI object asks the issuer for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PkiOptions {
    pub common_name: Option<String>,
    pub alt_names: Vec<String>,
    pub uri_sans: Vec<String>,
}

/// How the (extracted) value is encoded in Akeyless; it is decoded before writing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Utf8,
    Base64,
    Hex,
}

/// One validated entry of `objects`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSpec {
    /// Position in the `objects` list (0-based), for messages.
    pub index: usize,
    pub secret_path: String,
    pub file_name: String,
    /// `None`: looked up with describe-item.
    pub item_type: Option<ItemType>,
    /// `None`: the latest version.
    pub version: Option<u32>,
    pub extract: Option<Extract>,
    pub explode: bool,
    pub encoding: Encoding,
    /// `None`: the request's default mode.
    pub mode: Option<u32>,
    /// Arguments for dynamic secrets (`secretArgs`), as `key=value` strings.
    pub args: Vec<String>,
    /// Dynamic: the lease length assumed when Akeyless reports none. PKI: the TTL requested.
    pub ttl: Option<Duration>,
    pub cert: CertOptions,
    pub pki: PkiOptions,
}

impl ObjectSpec {
    /// An object reading `secret_path` into `file_name` with every option at its default
    /// (what a bare `- secretPath: …` entry gives).
    pub fn new(secret_path: impl Into<String>, file_name: impl Into<String>) -> Self {
        ObjectSpec {
            index: 0,
            secret_path: secret_path.into(),
            file_name: file_name.into(),
            item_type: None,
            version: None,
            extract: None,
            explode: false,
            encoding: Encoding::Utf8,
            mode: None,
            args: vec![],
            ttl: None,
            cert: CertOptions::default(),
            pki: PkiOptions::default(),
        }
    }

    /// How messages name this object: `object "db-password" (secretPath /prod/db/password)`.
    pub(crate) fn label(&self) -> String {
        format!(
            "object {:?} (secretPath {})",
            self.file_name, self.secret_path
        )
    }
}

/// The accepted fields, exactly as written in an SPC (listed in errors about unknown fields).
pub const OBJECT_FIELDS: &[&str] = &[
    "secretPath",
    "fileName",
    "type",
    "version",
    "key",
    "jq",
    "explode",
    "encoding",
    "mode",
    "secretArgs",
    "secretType",
    "format",
    "pfxPassword",
    "ttl",
    "commonName",
    "altNames",
    "uriSans",
];

/// Deepest nesting of YAML flow collections (`[…]`, `{…}`) accepted in `objects`, counted on
/// the raw text (brackets inside quoted strings count too, so balanced jq brackets cost
/// nothing and only unbalanced ones add up). The YAML scanner takes time proportional to the
/// number of tokens times the flow depth: 50,000 levels took it seconds. Real SPCs nest a few
/// levels, plus at most [`crate::jq::MAX_NESTING`] inside a jq expression.
pub(crate) const MAX_FLOW_NESTING: usize = 64;

/// The deepest flow nesting of `yaml`, counted as [`MAX_FLOW_NESTING`] says.
fn flow_nesting(yaml: &str) -> usize {
    let mut depth: usize = 0;
    let mut deepest: usize = 0;
    for b in yaml.bytes() {
        match b {
            b'[' | b'{' => {
                depth = depth.saturating_add(1);
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// How many entries the `objects` YAML lists, for logs; `None` when it can't be told (not a
/// list, or nested deeper than [`MAX_FLOW_NESTING`], which isn't parsed at all).
pub(crate) fn listed_objects(yaml: &str) -> Option<usize> {
    if flow_nesting(yaml) > MAX_FLOW_NESTING {
        return None;
    }
    serde_yaml_ng::from_str::<Vec<Value>>(yaml)
        .ok()
        .map(|v| v.len())
}

/// Parses and validates the `objects` YAML. Every problem is collected, not just the first.
pub(crate) fn parse_objects(
    yaml: &str,
    max_objects: usize,
    problems: &mut Vec<Problem>,
) -> Vec<ObjectSpec> {
    let example = "e.g.\n- secretPath: /prod/db/password\n  fileName: db-password";
    let nesting = flow_nesting(yaml);
    if nesting > MAX_FLOW_NESTING {
        problems.push(Problem::new(
            "parameters.objects",
            format!(
                "parameter objects nests [ ] or {{ }} {nesting} levels deep, more than the \
                 {MAX_FLOW_NESTING} accepted; write the list in block style (- secretPath: …)"
            ),
        ));
        return vec![];
    }
    let list = match serde_yaml_ng::from_str::<Value>(yaml) {
        Ok(Value::Sequence(list)) => list,
        Ok(Value::Null) => vec![],
        Ok(_) => {
            problems.push(Problem::new(
                "parameters.objects",
                format!("parameter objects must be a YAML list of objects, {example}"),
            ));
            return vec![];
        }
        Err(e) => {
            problems.push(Problem::new(
                "parameters.objects",
                format!("parameter objects is not valid YAML: {e}"),
            ));
            return vec![];
        }
    };
    if list.is_empty() {
        problems.push(Problem::new(
            "parameters.objects",
            format!("parameter objects lists no objects; add at least one, {example}"),
        ));
        return vec![];
    }
    if list.len() > max_objects {
        problems.push(Problem::new(
            "parameters.objects",
            format!(
                "parameter objects lists {} objects; at most {max_objects} are allowed per SecretProviderClass",
                list.len()
            ),
        ));
        return vec![];
    }
    let objects: Vec<ObjectSpec> = list
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| entry::parse_object(i, raw, problems))
        .collect();

    let names: Vec<&str> = objects.iter().map(|o| o.file_name.as_str()).collect();
    if let Some((a, b)) = find_conflict(&names)
        && let (Some(first), Some(second)) = (objects.get(a.min(b)), objects.get(a.max(b)))
    {
        let why = if first.file_name == second.file_name {
            "is already used by".to_string()
        } else {
            "overlaps (one is a directory of the other) with".to_string()
        };
        problems.push(Problem::new(
            format!("objects[{}].fileName", second.index),
            format!(
                "objects[{}] (secretPath {}): fileName {:?} {why} objects[{}] ({:?}); each object needs its own file",
                second.index, second.secret_path, second.file_name, first.index, first.file_name
            ),
        ));
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::values::parse_mode;
    use super::*;

    fn parse(yaml: &str) -> (Vec<ObjectSpec>, Vec<Problem>) {
        let mut problems = vec![];
        let objects = parse_objects(yaml, 100, &mut problems);
        (objects, problems)
    }

    fn messages(problems: &[Problem]) -> String {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.location, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn versions_fit_akeyless_int32() {
        let (objects, problems) = parse("- secretPath: /a\n  version: 2147483647\n");
        assert!(problems.is_empty(), "{}", messages(&problems));
        assert_eq!(objects[0].version, Some(2_147_483_647));
        let (_, problems) = parse("- secretPath: /a\n  version: 2147483648\n");
        assert!(messages(&problems).contains("is not a version"));
    }

    #[test]
    fn parses_existing_provider_shape() {
        let (objects, problems) = parse(
            "- secretPath: \"/akeyless-csi-secret/foo\"\n  fileName: \"bar\"\n  secretType: StaticSecret\n- secretPath: /akeyless-csi-secret/secret\n",
        );
        assert!(problems.is_empty(), "{}", messages(&problems));
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].file_name, "bar");
        assert_eq!(objects[1].file_name, "secret");
        assert_eq!(objects[1].item_type, None);
    }

    #[test]
    fn parses_every_field() {
        let (objects, problems) = parse(
            r#"
- secretPath: /prod/db/config
  fileName: db/user
  type: static
  key: username
  mode: "0400"
  version: 3
  encoding: base64
- secretPath: /prod/dyn
  type: dynamic
  secretArgs: {ttl: 30m, role: ro}
  mode: 256
- secretPath: /prod/json
  explode: "true"
"#,
        );
        assert!(problems.is_empty(), "{}", messages(&problems));
        let o = &objects[0];
        assert_eq!(o.mode, Some(0o400));
        assert_eq!(o.version, Some(3));
        assert_eq!(o.extract, Some(Extract::Key("username".into())));
        assert_eq!(o.encoding, Encoding::Base64);
        assert_eq!(objects[1].args, vec!["role=ro", "ttl=30m"]);
        assert_eq!(objects[1].mode, Some(256));
        assert!(objects[2].explode);
    }

    #[test]
    fn collects_every_problem_with_location() {
        let (_, problems) = parse(
            r#"
- secretPath: /a
  fileName: ../etc/passwd
- fileName: b
- secretPath: /c
  filename: typo
- secretPath: /d
  type: ssh
  mode: "0999"
  version: 0
"#,
        );
        let text = messages(&problems);
        assert!(text.contains("objects[0].fileName"), "{text}");
        assert!(text.contains(".. segments"), "{text}");
        assert!(
            text.contains("objects[1].secretPath: objects[1]: secretPath is required"),
            "{text}"
        );
        assert!(
            text.contains("objects[0] (secretPath /a): fileName \"../etc/passwd\""),
            "{text}"
        );
        assert!(text.contains("objects[2].filename"), "{text}");
        assert!(
            text.contains("accepted fields: secretPath, fileName"),
            "{text}"
        );
        assert!(text.contains("objects[3].type"), "{text}");
        assert!(text.contains("supported types: static, rotated"), "{text}");
        assert!(text.contains("objects[3].mode"), "{text}");
        assert!(text.contains("objects[3].version"), "{text}");
    }

    #[test]
    fn rejects_duplicate_and_overlapping_file_names() {
        let (_, problems) = parse("- secretPath: /a/x\n- secretPath: /b/x\n");
        assert!(messages(&problems).contains("already used by objects[0]"));
        let (_, problems) =
            parse("- secretPath: /a\n  fileName: tls\n- secretPath: /b\n  fileName: tls/ca.crt\n");
        assert!(messages(&problems).contains("overlaps"));
    }

    #[test]
    fn rejects_empty_and_non_list() {
        assert!(!parse("").1.is_empty());
        assert!(!parse("[]").1.is_empty());
        assert!(!parse("secretPath: /a").1.is_empty());
        assert!(!parse("- [unclosed").1.is_empty());
    }

    #[test]
    fn object_count_is_bounded() {
        let yaml: String = (0..3).map(|i| format!("- secretPath: /s{i}\n")).collect();
        let mut problems = vec![];
        assert_eq!(parse_objects(&yaml, 3, &mut problems).len(), 3);
        assert!(problems.is_empty());
        assert!(parse_objects(&yaml, 2, &mut problems).is_empty());
        assert!(
            problems[0].message.contains("lists 3 objects; at most 2"),
            "{:?}",
            problems
        );
    }

    #[test]
    fn mode_forms() {
        assert_eq!(parse_mode(&Value::String("0644".into())), Ok(0o644));
        assert_eq!(parse_mode(&Value::String("0o600".into())), Ok(0o600));
        assert_eq!(parse_mode(&Value::Number(420.into())), Ok(0o644));
        assert!(parse_mode(&Value::Number(644.into())).is_err());
        assert!(parse_mode(&Value::String("rw".into())).is_err());
    }

    #[test]
    fn jq_is_classified_and_bounded_at_validation() {
        let (objects, problems) = parse(
            "- secretPath: /a\n  fileName: a\n  jq: .db.password\n- secretPath: /b\n  fileName: b\n  jq: '.db | keys'\n",
        );
        assert!(problems.is_empty(), "{}", messages(&problems));
        let filter = |i: usize| match &objects[i].extract {
            Some(Extract::Jq(f)) => f.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            filter(0).path(),
            Some(
                &[
                    crate::jq::PathStep::Key("db".into()),
                    crate::jq::PathStep::Key("password".into())
                ][..]
            )
        );
        assert_eq!(filter(1).path(), None);

        let long = format!("- secretPath: /a\n  jq: '{}'\n", ".a".repeat(1025));
        let text = messages(&parse(&long).1);
        assert!(
            text.contains("objects[0].jq") && text.contains("2050 bytes long, more than the 2048"),
            "{text}"
        );
        let deep = format!(
            "- secretPath: /a\n  jq: '{}.{}'\n",
            "(".repeat(40),
            ")".repeat(40)
        );
        let text = messages(&parse(&deep).1);
        assert!(
            text.contains("nests brackets, braces or parentheses 40 deep"),
            "{text}"
        );
    }

    #[test]
    fn deeply_nested_yaml_is_an_error() {
        // Flow style: refused before the YAML parser sees it (it would take quadratic time).
        for depth in [MAX_FLOW_NESTING + 1, 200_000] {
            for (open, close) in [("[", "]"), ("{a: ", "}")] {
                let yaml = format!(
                    "- secretPath: /a\n  secretArgs: {}1{}\n",
                    open.repeat(depth),
                    close.repeat(depth)
                );
                let text = messages(&parse(&yaml).1);
                assert!(
                    text.contains(&format!("nests [ ] or {{ }} {depth} levels deep")),
                    "{depth}: {text}"
                );
            }
        }
        // Up to the limit, the parser's own depth limit (128) is not reached either.
        let yaml = format!(
            "- secretPath: /a\n  secretArgs: {}1{}\n",
            "[".repeat(MAX_FLOW_NESTING),
            "]".repeat(MAX_FLOW_NESTING)
        );
        let text = messages(&parse(&yaml).1);
        assert!(text.contains("secretArgs"), "{text}");
        // Balanced brackets in jq expressions don't add up.
        let many: String = (0..100)
            .map(|i| format!("- secretPath: /a{i}\n  jq: '.a[0] | {{b: [.c[1]]}}'\n"))
            .collect();
        assert!(parse(&many).1.is_empty(), "{}", messages(&parse(&many).1));
        // Block style (indentation and compact "- - -") stops at the parser's limit.
        let mut block = String::from("- secretPath: /a\n  secretArgs:\n");
        for level in 0..2000 {
            block.push_str(&" ".repeat(4 + level));
            block.push_str("k:\n");
        }
        let compact = format!(
            "- secretPath: /a\n  secretArgs:\n    {}1\n",
            "- ".repeat(200_000)
        );
        for yaml in [block, compact] {
            let text = messages(&parse(&yaml).1);
            assert!(text.contains("recursion limit exceeded"), "{text}");
        }
    }

    #[test]
    fn yaml_alias_bombs_are_refused() {
        // "Billion laughs": each level refers to the previous one ten times.
        let mut yaml = String::from(
            "- secretPath: /a\n  secretArgs:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for level in 1..10 {
            let refs = vec![format!("*l{}", level - 1); 10].join(", ");
            yaml.push_str(&format!("    l{level}: &l{level} [{refs}]\n"));
        }
        let text = messages(&parse(&yaml).1);
        assert!(text.contains("repetition limit exceeded"), "{text}");
    }
}
