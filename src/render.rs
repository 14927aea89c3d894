//! Fetched values → files and object versions. Pure: extraction (`key`, `explode`), decoding
//! (`encoding`), modes, and the version each object reports.
//!
//! Bounded by its input: every step is linear (or n log n, for path conflicts) in the bytes read
//! from Akeyless, JSON is parsed at most [`crate::jq::MAX_JSON_DEPTH`] levels deep, and the files
//! are capped by [`OutputLimits`]. The one unbounded step, a `jq` filter that is not a plain
//! path, is evaluated elsewhere for mounts (`crate::eval`) and handed in as [`JqResults`].

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use std::time::SystemTime;

use crate::certs::{self, CertificateMaterial};
use crate::error::MountError;
use crate::secret::{ExposeSecret, SecretBytes, SecretString, secret_bytes};
use crate::spec::paths::{check_file_path, find_conflict};
use crate::spec::{Encoding, Extract, ObjectSpec};

/// One file of the mount.
pub struct RenderedFile {
    pub path: String,
    pub mode: u32,
    pub contents: SecretBytes,
}

impl std::fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("bytes", &self.contents.expose_secret().len())
            .finish()
    }
}

/// `id` = the object's `fileName`; `version` = the Akeyless version or a keyed content hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub id: String,
    pub version: String,
}

/// Everything a mount returns.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    pub versions: Vec<ObjectVersion>,
}

/// The key of the content hash reported as the version of unversioned content. Shared by all
/// nodes (from a file the chart creates) so versions agree across nodes and restarts; secret, so
/// the hash reveals nothing about low-entropy values.
#[derive(Clone)]
pub struct VersionKey(Vec<u8>);

impl VersionKey {
    pub fn new(key: Vec<u8>) -> Self {
        VersionKey(key)
    }

    pub(crate) fn random() -> Self {
        VersionKey(rand::random::<[u8; 32]>().to_vec())
    }

    /// `h-` and 32 hex digits of HMAC-SHA256(key, item name, content).
    pub(crate) fn content_version(&self, item: &str, parts: &[&[u8]]) -> String {
        #[allow(clippy::expect_used)] // HMAC takes keys of any length: this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(item.as_bytes());
        for part in parts {
            mac.update(&[0]);
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        let short: Vec<u8> = digest.iter().take(16).copied().collect();
        format!("h-{}", hex::encode(short))
    }
}

impl std::fmt::Debug for VersionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VersionKey([REDACTED])")
    }
}

/// A JSON value as file content: strings raw, anything else compact JSON.
fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

fn decode(encoding: Encoding, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Utf8 => Ok(bytes),
        Encoding::Base64 => {
            let compact: Vec<u8> = bytes
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&compact))
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&compact))
                .map_err(|_| "the value is not valid base64 (encoding: base64)".to_string())
        }
        Encoding::Hex => {
            let compact: Vec<u8> = bytes
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            hex::decode(compact)
                .map_err(|_| "the value is not valid hex (encoding: hex)".to_string())
        }
    }
}

fn parse_json(object: &ObjectSpec, raw: &[u8], why: &str) -> Result<serde_json::Value, MountError> {
    serde_json::from_slice(raw).map_err(|e| json_error(object, &e, why))
}

/// The error for a value that can't be read as JSON (positions only, never its text).
fn json_error(object: &ObjectSpec, e: &serde_json::Error, why: &str) -> MountError {
    if crate::jq::is_too_deep(e) {
        MountError::invalid(format!(
            "{}: the value is JSON nested more than {} levels deep (line {} column {}), so {why} cannot be applied",
            object.label(),
            crate::jq::MAX_JSON_DEPTH,
            e.line(),
            e.column()
        ))
    } else {
        MountError::invalid(format!(
            "{}: the value is not JSON (line {} column {}), so {why} cannot be applied",
            object.label(),
            e.line(),
            e.column()
        ))
    }
}

/// Bounds of one mount's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimits {
    /// Most bytes of all files together (paths included): `--max-mount-bytes`.
    pub max_bytes: usize,
    /// Most files: `--max-files` (`explode` included).
    pub max_files: usize,
}

/// Default of `--max-files`: room for every one of `--max-objects` (500) objects to be a PEM
/// certificate directory (up to 3 files each), while an `explode` of a huge object fails fast.
pub const DEFAULT_MAX_FILES: usize = 2000;

impl OutputLimits {
    /// No bound (tests and benches).
    #[cfg(test)]
    pub(crate) const UNLIMITED: OutputLimits = OutputLimits {
        max_bytes: usize::MAX,
        max_files: usize::MAX,
    };
}

/// Where the results of the objects' `jq` filters come from.
#[derive(Debug)]
pub enum JqResults {
    /// Evaluated here while shaping: plain paths directly, other filters with jaq in process,
    /// without any bound (the evaluation worker itself, tests and benches).
    InProcess,
    /// Evaluated elsewhere (by the worker): entry `i` is the result of `objects[i]`'s filter
    /// when it is not a plain path. Plain paths are still evaluated here.
    Evaluated(Vec<Option<serde_json::Value>>),
}

/// What the `jq` of one object gives, for [`shape`].
#[derive(Debug)]
pub enum JqResult {
    InProcess,
    Evaluated(Option<serde_json::Value>),
}

fn too_many_files(count: usize, max: usize) -> String {
    format!(
        "the mount would return {count} files, more than the {max} one mount may return (the provider's --max-files)"
    )
}

/// Shapes one object's raw value into `(path, bytes)` pairs: at most `max_files` of them.
pub fn shape(
    object: &ObjectSpec,
    raw: &[u8],
    jq: JqResult,
    max_files: usize,
) -> Result<Vec<(String, Vec<u8>)>, MountError> {
    let fail = |m: String| MountError::invalid(format!("{}: {m}", object.label()));
    let json_error = |e: serde_json::Error, why: &str| json_error(object, &e, why);
    // Plain paths, keys and explode read the value in one pass, building only what they
    // select (crate::select); only jq in process parses it whole.
    let mut value: Option<serde_json::Value> = None;
    if let Some(Extract::Jq(filter)) = &object.extract {
        value = Some(match (jq, filter.path()) {
            (JqResult::Evaluated(Some(v)), _) => v,
            (_, Some(path)) => crate::select::path(raw, path)
                .map_err(|e| json_error(e, "jq"))?
                .map_err(|crate::jq::PathError| fail(crate::jq::failed(filter.text())))?,
            (JqResult::InProcess, None) => {
                let json = parse_json(object, raw, "jq")?;
                crate::jq::apply_filter(filter, &json).map_err(&fail)?
            }
            (JqResult::Evaluated(None), None) => {
                return Err(MountError::internal(format!(
                    "{}: the jq expression was not evaluated",
                    object.label()
                )));
            }
        });
    }
    if let Some(Extract::Key(key)) = &object.extract {
        value = Some(key_value(object, raw, key)?);
    }
    if object.explode {
        return explode(object, raw, value, max_files);
    }
    let bytes = match value {
        Some(v) => json_bytes(&v),
        None => raw.to_vec(),
    };
    Ok(vec![(
        object.file_name.clone(),
        decode(object.encoding, bytes).map_err(fail)?,
    )])
}

/// The value of top-level `key` of the JSON value `raw`.
fn key_value(object: &ObjectSpec, raw: &[u8], key: &str) -> Result<serde_json::Value, MountError> {
    let fail = |m: String| MountError::invalid(format!("{}: {m}", object.label()));
    match crate::select::key(raw, key).map_err(|e| json_error(object, &e, "key"))? {
        crate::select::Key::Found(v) => Ok(v),
        crate::select::Key::NotAnObject => Err(fail(format!(
            "the value is JSON but not an object, so key {key:?} cannot be applied"
        ))),
        crate::select::Key::Missing { keys, more } => {
            let mut listed = keys.join(", ");
            if more {
                listed.push_str(", …");
            }
            Err(MountError::new(
                crate::error::ErrorCode::NotFound,
                format!(
                    "{}: the value has no top-level key {key:?} (its keys: {listed})",
                    object.label(),
                ),
            ))
        }
    }
}

/// `explode`: one file per top-level key of the object's value (`value` when a key or jq
/// selected it, else `raw`), at most `max_files`.
fn explode(
    object: &ObjectSpec,
    raw: &[u8],
    value: Option<serde_json::Value>,
    max_files: usize,
) -> Result<Vec<(String, Vec<u8>)>, MountError> {
    let fail = |m: String| MountError::invalid(format!("{}: {m}", object.label()));
    let too_many = |n: usize| {
        fail(format!(
            "explode writes one file per top-level key, and the value has {n} keys, more than \
             the {max_files} files this mount may still return (the provider's --max-files); \
             select part of the value with key or jq, or raise --max-files"
        ))
    };
    let not_an_object = || fail("explode needs a JSON object value".into());
    let entries: Vec<(String, serde_json::Value)> = match value {
        Some(serde_json::Value::Object(map)) if map.len() > max_files => {
            return Err(too_many(map.len()));
        }
        Some(serde_json::Value::Object(map)) => map.into_iter().collect(),
        Some(_) => return Err(not_an_object()),
        None => match crate::select::entries(raw, max_files)
            .map_err(|e| json_error(object, &e, "explode"))?
        {
            crate::select::Entries::Found(map) => map.into_iter().collect(),
            crate::select::Entries::TooMany(n) => return Err(too_many(n)),
            crate::select::Entries::NotAnObject => return Err(not_an_object()),
        },
    };
    let mut files = Vec::with_capacity(entries.len());
    for (k, v) in &entries {
        let path = format!("{}/{k}", object.file_name);
        check_file_path(&path)
            .map_err(|why| fail(format!("key {k:?} cannot be a file name: {why}")))?;
        files.push((path, decode(object.encoding, json_bytes(v)).map_err(&fail)?));
    }
    Ok(files)
}

/// A value read from Akeyless for one object.
#[derive(Clone, Debug)]
pub enum Fetched {
    /// Static and dynamic values as stored; rotated values as their value JSON.
    Text(SecretString),
    Certificate(CertificateMaterial),
}

/// Renders every object of a mount. `values[i]` is what was read for `objects[i]`.
pub fn render(
    objects: &[ObjectSpec],
    values: &[&Fetched],
    jq: JqResults,
    default_mode: u32,
    key: &VersionKey,
    now: SystemTime,
    limits: OutputLimits,
) -> Result<Rendered, MountError> {
    let max_bytes = limits.max_bytes;
    let mut rendered = Rendered::default();
    let mut evaluated = match jq {
        JqResults::InProcess => None,
        JqResults::Evaluated(results) => Some(results.into_iter()),
    };
    for (object, value) in objects.iter().zip(values) {
        let jq = match &mut evaluated {
            None => JqResult::InProcess,
            Some(results) => JqResult::Evaluated(results.next().flatten()),
        };
        let room = limits.max_files.saturating_sub(rendered.files.len());
        let files = match value {
            Fetched::Text(text) => shape(object, text.expose_secret().as_bytes(), jq, room)?,
            Fetched::Certificate(material) => certs::certificate_files(object, material, now)
                .map_err(|why| MountError::invalid(format!("{}: {why}", object.label())))?,
        };
        if files.len() > room {
            return Err(MountError::invalid(format!(
                "{}: {}; mount fewer objects or raise --max-files",
                object.label(),
                too_many_files(
                    rendered.files.len().saturating_add(files.len()),
                    limits.max_files
                )
            )));
        }
        let version = match object.version {
            Some(v) => v.to_string(),
            None => {
                let parts: Vec<&[u8]> = files.iter().map(|(_, b)| b.as_slice()).collect();
                key.content_version(&object.secret_path, &parts)
            }
        };
        rendered.versions.push(ObjectVersion {
            id: object.file_name.clone(),
            version,
        });
        let mode = object.mode.unwrap_or(default_mode);
        rendered
            .files
            .extend(files.into_iter().map(|(path, bytes)| RenderedFile {
                path,
                mode,
                contents: secret_bytes(bytes),
            }));
    }
    let total: usize = rendered
        .files
        .iter()
        .map(|f| {
            f.path
                .len()
                .saturating_add(f.contents.expose_secret().len())
        })
        .fold(0, usize::saturating_add);
    if total > max_bytes {
        return Err(MountError::invalid(format!(
            "the mount's files total {total} bytes, more than the limit of {max_bytes} \
             (the CSI driver refuses gRPC answers over its --max-call-recv-msg-size, 4 MiB by default); \
             mount fewer or smaller objects, or raise the provider's --max-mount-bytes together with the driver's limit"
        )));
    }
    let paths: Vec<&str> = rendered.files.iter().map(|f| f.path.as_str()).collect();
    if let Some((a, b)) = find_conflict(&paths) {
        return Err(MountError::invalid(format!(
            "files {:?} and {:?} of this mount collide (same path, or a file used as a directory); \
             give the objects distinct fileNames",
            paths.get(a).copied().unwrap_or_default(),
            paths.get(b).copied().unwrap_or_default()
        )));
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jq::JqFilter;
    use crate::spec::ItemType;

    /// [`super::render`] with jq in process and only a byte limit.
    fn render(
        objects: &[ObjectSpec],
        values: &[&Fetched],
        default_mode: u32,
        key: &VersionKey,
        now: SystemTime,
        max_bytes: usize,
    ) -> Result<Rendered, MountError> {
        super::render(
            objects,
            values,
            JqResults::InProcess,
            default_mode,
            key,
            now,
            OutputLimits {
                max_bytes,
                max_files: usize::MAX,
            },
        )
    }

    fn text(s: &str) -> Fetched {
        Fetched::Text(SecretString::from(s.to_string()))
    }

    fn obj(file: &str) -> ObjectSpec {
        ObjectSpec {
            item_type: Some(ItemType::Static),
            ..ObjectSpec::new(format!("/items/{file}"), file)
        }
    }

    fn contents(r: &Rendered) -> Vec<(String, u32, String)> {
        r.files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    f.mode,
                    String::from_utf8_lossy(f.contents.expose_secret()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn raw_key_explode_encoding_and_modes() {
        let key = VersionKey::new(b"k".to_vec());
        let json = text(r#"{"user":"app","port":5432,"b64":"aGk="}"#);
        let plain = text("plain");
        let mut user = obj("db/user");
        user.extract = Some(Extract::Key("user".into()));
        user.mode = Some(0o400);
        let mut port = obj("port");
        port.extract = Some(Extract::Key("port".into()));
        let mut all = obj("all");
        all.explode = true;
        let mut b64 = obj("hi");
        b64.extract = Some(Extract::Key("b64".into()));
        b64.encoding = Encoding::Base64;
        let mut pinned = obj("plain");
        pinned.version = Some(7);
        let objects = vec![user, port, all, b64, pinned];
        let r = render(
            &objects,
            &[&json, &json, &json, &json, &plain],
            0o644,
            &key,
            SystemTime::now(),
            usize::MAX,
        )
        .unwrap();
        assert_eq!(
            contents(&r),
            vec![
                ("db/user".into(), 0o400, "app".into()),
                ("port".into(), 0o644, "5432".into()),
                ("all/b64".into(), 0o644, "aGk=".into()),
                ("all/port".into(), 0o644, "5432".into()),
                ("all/user".into(), 0o644, "app".into()),
                ("hi".into(), 0o644, "hi".into()),
                ("plain".into(), 0o644, "plain".into()),
            ]
        );
        assert_eq!(
            r.versions[4],
            ObjectVersion {
                id: "plain".into(),
                version: "7".into()
            }
        );
        assert!(r.versions[0].version.starts_with("h-"));
    }

    #[test]
    fn content_versions_are_keyed_and_stable() {
        let a = VersionKey::new(b"a".to_vec());
        let b = VersionKey::new(b"b".to_vec());
        assert_eq!(
            a.content_version("/x", &[b"v"]),
            a.content_version("/x", &[b"v"])
        );
        assert_ne!(
            a.content_version("/x", &[b"v"]),
            a.content_version("/x", &[b"w"])
        );
        assert_ne!(
            a.content_version("/x", &[b"v"]),
            b.content_version("/x", &[b"v"])
        );
        assert!(!a.content_version("/x", &[b"secret"]).contains("secret"));
    }

    #[test]
    fn extraction_errors_name_the_object() {
        let key = VersionKey::random();
        let mut o = obj("db");
        o.extract = Some(Extract::Key("missing".into()));
        let v = text(r#"{"user":"u"}"#);
        let e = render(
            std::slice::from_ref(&o),
            &[&v],
            0o644,
            &key,
            SystemTime::now(),
            usize::MAX,
        )
        .unwrap_err();
        assert!(e.message.contains("object \"db\""), "{e}");
        assert!(
            e.message
                .contains("no top-level key \"missing\" (its keys: user)"),
            "{e}"
        );
        let not_json = text("hunter2");
        let e = render(
            &[o],
            &[&not_json],
            0o644,
            &key,
            SystemTime::now(),
            usize::MAX,
        )
        .unwrap_err();
        assert!(e.message.contains("not JSON"), "{e}");
        assert!(!e.message.contains("hunter2"));
        let mut bad = obj("bin");
        bad.encoding = Encoding::Hex;
        let e = render(
            &[bad],
            &[&not_json],
            0o644,
            &key,
            SystemTime::now(),
            usize::MAX,
        )
        .unwrap_err();
        assert!(e.message.contains("not valid hex"), "{e}");
    }

    #[test]
    fn exploded_keys_must_be_safe_paths() {
        let mut o = obj("dir");
        o.explode = true;
        let v = text(r#"{"../escape":"x"}"#);
        assert!(
            render(
                &[o],
                &[&v],
                0o644,
                &VersionKey::random(),
                SystemTime::now(),
                usize::MAX
            )
            .is_err()
        );
    }

    #[test]
    fn total_size_is_bounded_with_a_hint() {
        let v = text(&"x".repeat(1000));
        let objects = vec![obj("a"), obj("b")];
        assert!(
            render(
                &objects,
                &[&v, &v],
                0o644,
                &VersionKey::random(),
                SystemTime::now(),
                2002
            )
            .is_ok()
        );
        let e = render(
            &objects,
            &[&v, &v],
            0o644,
            &VersionKey::random(),
            SystemTime::now(),
            2001,
        )
        .unwrap_err();
        assert!(
            e.message.contains("total 2002 bytes") && e.message.contains("--max-mount-bytes"),
            "{e}"
        );
    }

    #[test]
    fn jq_extraction() {
        let mut o = obj("dsn");
        o.extract = Some(Extract::Jq(JqFilter::new(r#""\(.user)@\(.host)""#)));
        let mut ports = obj("ports");
        ports.extract = Some(Extract::Jq(JqFilter::new(".ports")));
        let v = text(r#"{"user":"app","host":"db","ports":[1,2]}"#);
        let r = render(
            &[o, ports],
            &[&v, &v],
            0o644,
            &VersionKey::random(),
            SystemTime::now(),
            usize::MAX,
        )
        .unwrap();
        assert_eq!(contents(&r)[0].2, "app@db");
        assert_eq!(contents(&r)[1].2, "[1,2]");
    }

    fn explode(file: &str) -> ObjectSpec {
        let mut o = obj(file);
        o.explode = true;
        o
    }

    #[test]
    fn files_are_capped_explode_included() {
        let key = VersionKey::random();
        let limits = |max_files| OutputLimits {
            max_bytes: usize::MAX,
            max_files,
        };
        let three = text(r#"{"a":"1","b":"2","c":"3"}"#);
        let one = text("x");
        let objects = vec![obj("first"), explode("dir")];
        let values = [&one, &three];
        let ok = super::render(
            &objects,
            &values,
            JqResults::InProcess,
            0o644,
            &key,
            SystemTime::now(),
            limits(4),
        )
        .unwrap();
        assert_eq!(ok.files.len(), 4);
        // One file too many: the explode is refused before any of its files is built.
        let e = super::render(
            &objects,
            &values,
            JqResults::InProcess,
            0o644,
            &key,
            SystemTime::now(),
            limits(3),
        )
        .unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidConfig);
        assert!(
            e.message.contains("object \"dir\"")
                && e.message.contains("3 keys")
                && e.message
                    .contains("the 2 files this mount may still return")
                && e.message.contains("--max-files"),
            "{e}"
        );
        // Plain files count too.
        let e = super::render(
            &[obj("a"), obj("b"), obj("c")],
            &[&one, &one, &one],
            JqResults::InProcess,
            0o644,
            &key,
            SystemTime::now(),
            limits(2),
        )
        .unwrap_err();
        assert!(
            e.message.contains("object \"c\"")
                && e.message.contains("return 3 files, more than the 2"),
            "{e}"
        );
    }

    #[test]
    fn explode_of_two_hundred_thousand_keys_answers() {
        let n = 200_000;
        let mut json = String::from("{");
        for i in 0..n {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&format!("\"key{i}\":\"v\""));
        }
        json.push('}');
        let v = text(&json);
        let r = render(
            &[explode("all")],
            &[&v],
            0o644,
            &VersionKey::random(),
            SystemTime::now(),
            usize::MAX,
        )
        .unwrap();
        assert_eq!(r.files.len(), n);
        let e = super::render(
            &[explode("all")],
            &[&v],
            JqResults::InProcess,
            0o644,
            &VersionKey::random(),
            SystemTime::now(),
            OutputLimits {
                max_bytes: usize::MAX,
                max_files: DEFAULT_MAX_FILES,
            },
        )
        .unwrap_err();
        assert!(e.message.contains("200000 keys"), "{e}");
    }

    #[test]
    fn deeply_nested_values_are_an_error_for_key_jq_and_explode() {
        for depth in [127, 200_000] {
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let wrapped = text(&format!("{{\"a\":{nested}}}"));
            let mut by_key = obj("k");
            by_key.extract = Some(Extract::Key("a".into()));
            let mut by_path = obj("p");
            by_path.extract = Some(Extract::Jq(JqFilter::new(".a")));
            let mut by_jq = obj("j");
            by_jq.extract = Some(Extract::Jq(JqFilter::new(".a | length")));
            for o in [by_key, by_path, by_jq, explode("e")] {
                let e = render(
                    std::slice::from_ref(&o),
                    &[&wrapped],
                    0o644,
                    &VersionKey::random(),
                    SystemTime::now(),
                    usize::MAX,
                )
                .unwrap_err();
                assert!(
                    e.message.contains("nested more than 127 levels deep"),
                    "{depth}: {e}"
                );
            }
        }
        // 127 levels in all (the object and 126 arrays) is still fine.
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(126), "]".repeat(126));
        let mut by_key = obj("k");
        by_key.extract = Some(Extract::Key("a".into()));
        assert!(
            render(
                &[by_key],
                &[&text(&ok)],
                0o644,
                &VersionKey::random(),
                SystemTime::now(),
                usize::MAX
            )
            .is_ok()
        );
    }

    #[test]
    fn results_evaluated_elsewhere_are_used_and_required() {
        let mut complex = obj("dsn");
        complex.extract = Some(Extract::Jq(JqFilter::new(r#""\(.user)@\(.host)""#)));
        let mut path = obj("user");
        path.extract = Some(Extract::Jq(JqFilter::new(".user")));
        let v = text(r#"{"user":"app","host":"db"}"#);
        let objects = [complex, path];
        let r = super::render(
            &objects,
            &[&v, &v],
            JqResults::Evaluated(vec![Some(serde_json::json!("from the worker")), None]),
            0o644,
            &VersionKey::random(),
            SystemTime::now(),
            OutputLimits::UNLIMITED,
        )
        .unwrap();
        assert_eq!(contents(&r)[0].2, "from the worker");
        // Plain paths are evaluated in process even in this mode.
        assert_eq!(contents(&r)[1].2, "app");
        // A filter that is not a plain path and has no result is never run here.
        let e = super::render(
            &objects,
            &[&v, &v],
            JqResults::Evaluated(vec![None, None]),
            0o644,
            &VersionKey::random(),
            SystemTime::now(),
            OutputLimits::UNLIMITED,
        )
        .unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::Internal, "{e}");
    }
}
