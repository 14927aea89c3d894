//! One entry of `objects`: its fields read by concern (where it goes, what it is, which part
//! is written and how, certificate, TTL and PKI options), every problem tagged with its field.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::values::{
    default_file_name, parse_args, parse_bool, parse_duration, parse_mode, parse_string_list,
    parse_version, scalar_text,
};
use super::{
    CertFormat, CertOptions, Encoding, Extract, ItemType, OBJECT_FIELDS, ObjectSpec, PkiOptions,
};
use crate::spec::Problem;
use crate::spec::paths::check_file_path;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObject {
    secret_path: Option<Value>,
    file_name: Option<Value>,
    #[serde(rename = "type")]
    item_type: Option<Value>,
    version: Option<Value>,
    key: Option<Value>,
    jq: Option<Value>,
    explode: Option<Value>,
    encoding: Option<Value>,
    mode: Option<Value>,
    secret_args: Option<Value>,
    format: Option<Value>,
    pfx_password: Option<Value>,
    ttl: Option<Value>,
    common_name: Option<Value>,
    alt_names: Option<Value>,
    uri_sans: Option<Value>,
    /// Accepted and ignored, as the existing Akeyless provider does.
    #[allow(dead_code)]
    secret_type: Option<Value>,
}

/// Collects the problems of one object, each tagged with its field.
struct ObjectProblems<'a> {
    index: usize,
    secret_path: Option<String>,
    problems: &'a mut Vec<Problem>,
}

impl ObjectProblems<'_> {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        let who = match &self.secret_path {
            Some(path) => format!("objects[{}] (secretPath {path})", self.index),
            None => format!("objects[{}]", self.index),
        };
        self.problems.push(Problem::new(
            format!("objects[{}].{field}", self.index),
            format!("{who}: {field} {}", message.into()),
        ));
    }
}

fn string_field(p: &mut ObjectProblems<'_>, field: &str, v: &Option<Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            p.push(field, "must be a string");
            None
        }
    }
}

pub(super) fn parse_object(
    index: usize,
    raw: &Value,
    problems: &mut Vec<Problem>,
) -> Option<ObjectSpec> {
    let mut p = ObjectProblems {
        index,
        secret_path: None,
        problems,
    };
    let obj = read_raw(&mut p, raw)?;
    let before = p.problems.len();

    let (secret_path, file_name) = parse_location(&mut p, &obj);
    let item_type = parse_item_type(&mut p, &obj);
    let version = parse_pinned_version(&mut p, &obj, item_type);
    let (extract, explode, encoding) = parse_extraction(&mut p, &obj);
    let mode = match &obj.mode {
        None | Some(Value::Null) => None,
        Some(v) => parse_mode(v).map_err(|e| p.push("mode", e)).ok(),
    };
    let args = match &obj.secret_args {
        None => vec![],
        Some(v) => parse_args(v)
            .map_err(|e| p.push("secretArgs", e))
            .unwrap_or_default(),
    };
    let cert = parse_cert_options(&mut p, &obj, item_type, extract.as_ref(), explode);
    let ttl = parse_ttl(&mut p, &obj, item_type);
    let pki = parse_pki(&mut p, &obj, item_type);

    if p.problems.len() > before {
        return None;
    }
    Some(ObjectSpec {
        index,
        secret_path: secret_path?,
        file_name: file_name?,
        item_type,
        version,
        extract,
        explode,
        encoding,
        mode,
        args,
        ttl,
        cert,
        pki,
    })
}

/// The entry as a mapping of known fields; unknown fields are reported (catching typos).
fn read_raw(p: &mut ObjectProblems<'_>, raw: &Value) -> Option<RawObject> {
    let Value::Mapping(map) = raw else {
        p.push(
            "secretPath",
            "is missing: each list entry must be a mapping such as {secretPath: /path/to/item}",
        );
        return None;
    };
    // Unknown fields are rejected, listing the accepted ones (catches typos like `filename`).
    for key in map.keys() {
        let name = scalar_text(key).unwrap_or_else(|| format!("{key:?}"));
        if !OBJECT_FIELDS.contains(&name.as_str()) {
            p.push(
                &name,
                format!(
                    "is not a known field; accepted fields: {}",
                    OBJECT_FIELDS.join(", ")
                ),
            );
        }
    }
    match serde_yaml_ng::from_value(raw.clone()) {
        Ok(o) => Some(o),
        Err(e) => {
            p.push("secretPath", format!("cannot be read: {e}"));
            None
        }
    }
}

/// `secretPath` and `fileName` (by default the path's last segment).
fn parse_location(p: &mut ObjectProblems<'_>, obj: &RawObject) -> (Option<String>, Option<String>) {
    let secret_path = string_field(p, "secretPath", &obj.secret_path);
    let file_name = string_field(p, "fileName", &obj.file_name);
    p.secret_path = secret_path.clone();
    let secret_path = match secret_path {
        Some(s) if s.chars().any(char::is_control) => {
            p.push("secretPath", "must not contain control characters");
            None
        }
        Some(s) => Some(s),
        None => {
            p.push(
                "secretPath",
                "is required (the Akeyless item name, e.g. /prod/db/password)",
            );
            None
        }
    };
    let file_name = file_name.or_else(|| secret_path.as_deref().map(default_file_name));
    if let Some(f) = &file_name
        && let Err(why) = check_file_path(f)
    {
        p.push("fileName", format!("{f:?} {why}"));
    }
    (secret_path, file_name)
}

/// `type`; `None`: looked up with describe-item.
fn parse_item_type(p: &mut ObjectProblems<'_>, obj: &RawObject) -> Option<ItemType> {
    string_field(p, "type", &obj.item_type).and_then(|t| {
        let parsed = ItemType::parse(&t);
        if parsed.is_none() {
            p.push(
                "type",
                format!(
                    "{t:?} is not supported; supported types: {}",
                    ItemType::ACCEPTED
                ),
            );
        }
        parsed
    })
}

/// `version`, which only versioned item types can pin.
fn parse_pinned_version(
    p: &mut ObjectProblems<'_>,
    obj: &RawObject,
    item_type: Option<ItemType>,
) -> Option<u32> {
    let version = match &obj.version {
        None | Some(Value::Null) => None,
        Some(v) => parse_version(v).map_err(|e| p.push("version", e)).ok(),
    };
    if let (Some(_), Some(t)) = (version, item_type)
        && !t.is_versioned()
    {
        p.push(
            "version",
            format!("cannot be pinned for {t} items (they have no versions)"),
        );
    }
    version
}

/// Which part of the value is written (`key` or `jq`), whether it is exploded into files,
/// and how it is encoded.
fn parse_extraction(
    p: &mut ObjectProblems<'_>,
    obj: &RawObject,
) -> (Option<Extract>, bool, Encoding) {
    let key = string_field(p, "key", &obj.key);
    let jq = string_field(p, "jq", &obj.jq);
    if let Some(expr) = &jq
        && let Err(why) = crate::jq::check(expr)
    {
        p.push(
            "jq",
            format!("{expr:?} is not a valid jq expression: {why}"),
        );
    }
    let extract = match (key, jq) {
        (Some(_), Some(_)) => {
            p.push("jq", "cannot be combined with key; use one of them");
            None
        }
        (Some(k), None) => Some(Extract::Key(k)),
        (None, Some(j)) => Some(Extract::Jq(crate::jq::JqFilter::new(j))),
        (None, None) => None,
    };
    let explode = match &obj.explode {
        None | Some(Value::Null) => false,
        Some(v) => parse_bool(v)
            .map_err(|e| p.push("explode", e))
            .unwrap_or(false),
    };
    let encoding = match string_field(p, "encoding", &obj.encoding).as_deref() {
        None => Encoding::Utf8,
        Some(e) => match e.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "text" | "plain" => Encoding::Utf8,
            "base64" => Encoding::Base64,
            "hex" => Encoding::Hex,
            other => {
                p.push(
                    "encoding",
                    format!("{other:?} is not supported; use utf-8, base64 or hex"),
                );
                Encoding::Utf8
            }
        },
    };
    (extract, explode, encoding)
}

/// `format` and `pfxPassword`, which apply to certificates only (as `key` and `explode` don't).
fn parse_cert_options(
    p: &mut ObjectProblems<'_>,
    obj: &RawObject,
    item_type: Option<ItemType>,
    extract: Option<&Extract>,
    explode: bool,
) -> CertOptions {
    if let Some(t) = item_type
        && t.is_certificate()
        && (extract.is_some() || explode)
    {
        p.push(
            if explode { "explode" } else { "key" },
            format!("does not apply to {t} items, which are written as PEM files"),
        );
    }
    let cert_format = match string_field(p, "format", &obj.format).as_deref() {
        None => CertFormat::Pem,
        Some(f) => match f.to_ascii_lowercase().as_str() {
            "pem" => CertFormat::Pem,
            "bundle" | "pem-bundle" => CertFormat::Bundle,
            "pfx" | "pkcs12" | "p12" => CertFormat::Pfx,
            other => {
                p.push(
                    "format",
                    format!("{other:?} is not supported; use pem, bundle or pfx"),
                );
                CertFormat::Pem
            }
        },
    };
    let pfx_password = string_field(p, "pfxPassword", &obj.pfx_password);
    let certificate_only = obj.format.is_some() || pfx_password.is_some();
    if certificate_only && !item_type.is_some_and(ItemType::is_certificate) {
        p.push(
            if obj.format.is_some() {
                "format"
            } else {
                "pfxPassword"
            },
            "applies to certificates only: set type: certificate or type: pki",
        );
    }
    if pfx_password.is_some() && cert_format != CertFormat::Pfx {
        p.push("pfxPassword", "applies only with format: pfx");
    }
    CertOptions {
        format: cert_format,
        pfx_password: pfx_password.unwrap_or_default(),
    }
}

/// `ttl`, for dynamic and pki items.
fn parse_ttl(
    p: &mut ObjectProblems<'_>,
    obj: &RawObject,
    item_type: Option<ItemType>,
) -> Option<Duration> {
    let ttl = match string_field(p, "ttl", &obj.ttl) {
        None => None,
        Some(t) => match parse_duration(&t) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d),
            Ok(_) => {
                p.push("ttl", "must be at least 1s");
                None
            }
            Err(e) => {
                p.push("ttl", e);
                None
            }
        },
    };
    if ttl.is_some() && item_type.is_some_and(|t| !matches!(t, ItemType::Dynamic | ItemType::Pki)) {
        p.push("ttl", "applies to dynamic and pki items only");
    }
    ttl
}

/// `commonName`, `altNames` and `uriSans`, for pki items.
fn parse_pki(
    p: &mut ObjectProblems<'_>,
    obj: &RawObject,
    item_type: Option<ItemType>,
) -> PkiOptions {
    let pki = PkiOptions {
        common_name: string_field(p, "commonName", &obj.common_name),
        alt_names: match &obj.alt_names {
            None => vec![],
            Some(v) => parse_string_list(v)
                .map_err(|e| p.push("altNames", e))
                .unwrap_or_default(),
        },
        uri_sans: match &obj.uri_sans {
            None => vec![],
            Some(v) => parse_string_list(v)
                .map_err(|e| p.push("uriSans", e))
                .unwrap_or_default(),
        },
    };
    if pki != PkiOptions::default() && item_type.is_some_and(|t| t != ItemType::Pki) {
        p.push(
            if pki.common_name.is_some() {
                "commonName"
            } else {
                "altNames"
            },
            "applies to pki items only",
        );
    }
    pki
}
