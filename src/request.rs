//! Decoding of the driver's `MountRequest` into a typed [`MountRequest`]. Pure: no I/O.
//!
//! The driver sends three JSON strings: `attributes` (SPC parameters merged with the volume
//! context, including the double-encoded service-account tokens), `secrets` (nodePublishSecretRef
//! data, possibly the literal `null`) and `permission` (the default file mode as a decimal number).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::error::MountError;
use crate::proto;
use crate::secret::{ExposeSecret, SecretString};

pub(crate) const ATTR_POD_NAME: &str = "csi.storage.k8s.io/pod.name";
pub(crate) const ATTR_POD_NAMESPACE: &str = "csi.storage.k8s.io/pod.namespace";
pub(crate) const ATTR_POD_UID: &str = "csi.storage.k8s.io/pod.uid";
pub(crate) const ATTR_SERVICE_ACCOUNT: &str = "csi.storage.k8s.io/serviceAccount.name";
pub(crate) const ATTR_TOKENS: &str = "csi.storage.k8s.io/serviceAccount.tokens";

/// Parameters whose values are credentials: redacted in `Debug` output.
pub(crate) const SECRET_PARAMETERS: &[&str] = &["akeylessAccessKey", "akeylessUIDInitToken"];

/// Default file mode when the request carries none (the driver always sends 0644).
pub(crate) const DEFAULT_FILE_MODE: u32 = 0o644;

/// A mount request, decoded and typed.
#[derive(Debug)]
pub struct MountRequest {
    pub pod: PodIdentity,
    pub parameters: Parameters,
    pub secrets: NodePublishSecrets,
    pub tokens: ServiceAccountTokens,
    /// Mode for files whose object sets none.
    pub default_mode: u32,
    /// Informational only: the driver writes the files. The sync controller sends a fake path.
    pub target_path: String,
}

/// Who is mounting: the pod's coordinates as kubelet reports them (`podInfoOnMount`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PodIdentity {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub service_account: Option<String>,
}

/// SPC parameters merged with the volume context (the tokens attribute removed). Values of
/// credential parameters are redacted in `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Parameters(BTreeMap<String, String>);

impl Parameters {
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Parameters(map)
    }

    /// The value of `key`, trimmed; `None` when absent or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for Parameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.0 {
            if SECRET_PARAMETERS.contains(&k.as_str()) {
                map.entry(k, &"[REDACTED]");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

/// The nodePublishSecretRef data. `Debug` shows the keys only.
#[derive(Default)]
pub struct NodePublishSecrets(BTreeMap<String, SecretString>);

impl NodePublishSecrets {
    pub fn new(map: BTreeMap<String, SecretString>) -> Self {
        NodePublishSecrets(map)
    }

    /// The value under `key`, when present and not blank.
    pub fn get(&self, key: &str) -> Option<&SecretString> {
        self.0
            .get(key)
            .filter(|v| !v.expose_secret().trim().is_empty())
    }
}

impl fmt::Debug for NodePublishSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A pod service-account token minted by kubelet for one audience (CSIDriver `tokenRequests`).
#[derive(Debug)]
pub struct ServiceAccountToken {
    pub token: SecretString,
    pub expiration: Option<String>,
}

/// Tokens by audience. `Debug` shows audiences and expiry only (the token type redacts).
#[derive(Debug, Default)]
pub struct ServiceAccountTokens(BTreeMap<String, ServiceAccountToken>);

impl ServiceAccountTokens {
    pub fn new(map: BTreeMap<String, ServiceAccountToken>) -> Self {
        ServiceAccountTokens(map)
    }

    pub fn get(&self, audience: &str) -> Option<&ServiceAccountToken> {
        self.0.get(audience)
    }

    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The only token, when exactly one was delivered.
    pub fn single(&self) -> Option<(&str, &ServiceAccountToken)> {
        if self.0.len() == 1 {
            self.0.iter().next().map(|(a, t)| (a.as_str(), t))
        } else {
            None
        }
    }
}

/// Why a request could not be decoded. Messages name the field and never quote its content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("request field attributes is not a JSON object of strings ({0})")]
    Attributes(String),
    #[error(
        "request field secrets (nodePublishSecretRef data) is not a JSON object of strings ({0})"
    )]
    Secrets(String),
    #[error(
        "{ATTR_TOKENS} in request field {0} is not the token JSON kubelet sends \
         ({{\"<audience>\":{{\"token\":\"…\",\"expirationTimestamp\":\"…\"}}}}): {1}"
    )]
    Tokens(&'static str, String),
    #[error("request field permission {0:?} is not a file mode between 0 and 511 (decimal)")]
    Permission(String),
}

impl From<RequestError> for MountError {
    fn from(e: RequestError) -> Self {
        MountError::invalid(e.to_string())
    }
}

/// Describes a JSON syntax/shape error without quoting any input: serde's messages can contain
/// fragments of the value ("invalid type: string \"…\""), which may be a secret.
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "malformed JSON",
        Category::Data => "unexpected value type",
        Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Parses a JSON object whose values are all strings; `""` and `null` mean empty.
fn parse_string_map(raw: &str) -> Result<BTreeMap<String, String>, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "null" {
        return Ok(BTreeMap::new());
    }
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| json_problem(&e))?;
    let serde_json::Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    object
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            // Tolerate what a Go map[string]string can never produce but a hand-written caller
            // might: scalars are taken as their text. Containers are rejected, naming the key.
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Null => Ok((k, String::new())),
            _ => Err(format!("the value of key {k:?} is not a string")),
        })
        .collect()
}

#[derive(Deserialize)]
struct RawToken {
    token: String,
    #[serde(rename = "expirationTimestamp", default)]
    expiration_timestamp: Option<String>,
}

/// Parses the tokens JSON; `field` names the request field it came from, for errors.
fn parse_tokens(field: &'static str, raw: &str) -> Result<ServiceAccountTokens, RequestError> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "null" {
        return Ok(ServiceAccountTokens::default());
    }
    let parsed: BTreeMap<String, RawToken> =
        serde_json::from_str(raw).map_err(|e| RequestError::Tokens(field, json_problem(&e)))?;
    let mut tokens = BTreeMap::new();
    for (audience, t) in parsed {
        if t.token.trim().is_empty() {
            return Err(RequestError::Tokens(
                field,
                format!("the token for audience {audience:?} is empty"),
            ));
        }
        tokens.insert(
            audience,
            ServiceAccountToken {
                token: SecretString::from(t.token),
                expiration: t.expiration_timestamp,
            },
        );
    }
    Ok(ServiceAccountTokens(tokens))
}

fn parse_permission(raw: &str) -> Result<u32, RequestError> {
    let trimmed = raw.trim().trim_matches('"');
    if trimmed.is_empty() || trimmed == "null" {
        return Ok(DEFAULT_FILE_MODE);
    }
    match trimmed.parse::<u32>() {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(RequestError::Permission(raw.to_string())),
    }
}

impl MountRequest {
    /// Decodes the wire request. Never panics; every malformed field yields a clear error.
    pub fn decode(req: &proto::MountRequest) -> Result<MountRequest, RequestError> {
        let mut attributes = parse_string_map(&req.attributes).map_err(RequestError::Attributes)?;
        let secret_map = parse_string_map(&req.secrets).map_err(RequestError::Secrets)?;
        let default_mode = parse_permission(&req.permission)?;

        // kubelet writes the pod's tokens in exactly one place: the volume context (merged into
        // `attributes` by the driver) or, when the CSIDriver sets `serviceAccountTokenInSecrets`
        // (Kubernetes ≥ 1.35), the node-publish secrets. Only kubelet can put them in `secrets`:
        // a nodePublishSecretRef Secret cannot have that key (no "/" in Secret keys). The
        // `attributes` copy, though, is written by the driver over the SPC parameters: drivers
        // ≤ v1.5 read only the volume context and, when kubelet sent the tokens in `secrets`,
        // fill the attribute with tokens they mint themselves, or leave a tenant's SPC parameter
        // or pod volumeAttribute of that name in place. So when both fields carry tokens, the
        // kubelet-controlled `secrets` copy wins. Driver v1.6.0 applies the same precedence and
        // sends the winner in both fields, so every driver version authenticates a pod with the
        // same token (tests/e2e/suite/driver shows each version's path).
        let in_attributes = attributes
            .remove(ATTR_TOKENS)
            .filter(|t| !t.trim().is_empty());
        let in_secrets = secret_map.get(ATTR_TOKENS).filter(|t| !t.trim().is_empty());
        let tokens = match (in_secrets, in_attributes) {
            (Some(raw), _) => parse_tokens("secrets", raw)?,
            (None, Some(raw)) => parse_tokens("attributes", &raw)?,
            (None, None) => ServiceAccountTokens::default(),
        };

        let secrets = secret_map
            .into_iter()
            .filter(|(k, _)| k != ATTR_TOKENS)
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect();

        let attr = |key: &str| {
            attributes
                .get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let pod = PodIdentity {
            name: attr(ATTR_POD_NAME),
            namespace: attr(ATTR_POD_NAMESPACE),
            uid: attr(ATTR_POD_UID),
            service_account: attr(ATTR_SERVICE_ACCOUNT),
        };

        Ok(MountRequest {
            pod,
            parameters: Parameters(attributes),
            secrets: NodePublishSecrets(secrets),
            tokens,
            default_mode,
            target_path: req.target_path.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(attributes: &str, secrets: &str, permission: &str) -> proto::MountRequest {
        proto::MountRequest {
            attributes: attributes.into(),
            secrets: secrets.into(),
            target_path: "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/v/mount".into(),
            permission: permission.into(),
            current_object_version: vec![],
        }
    }

    fn tokens_attr(pairs: &[(&str, &str)]) -> String {
        let inner: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(aud, tok)| {
                (
                    aud.to_string(),
                    serde_json::json!({"token": tok, "expirationTimestamp": "2030-01-01T00:00:00Z"}),
                )
            })
            .collect();
        serde_json::Value::Object(inner).to_string()
    }

    #[test]
    fn decodes_driver_request() {
        let attrs = serde_json::json!({
            ATTR_POD_NAME: "web-0",
            ATTR_POD_NAMESPACE: "team-a",
            ATTR_POD_UID: "1234",
            ATTR_SERVICE_ACCOUNT: "web",
            ATTR_TOKENS: tokens_attr(&[("akeyless", "jwt-abc")]),
            "objects": "- secretPath: /a\n",
            "secretProviderClass": "spc",
        });
        let req = MountRequest::decode(&wire(
            &attrs.to_string(),
            r#"{"akeylessAccessKey":"k"}"#,
            "420",
        ))
        .unwrap();
        assert_eq!(req.pod.namespace.as_deref(), Some("team-a"));
        assert_eq!(req.pod.service_account.as_deref(), Some("web"));
        assert_eq!(req.default_mode, 0o644);
        assert_eq!(req.parameters.get("objects"), Some("- secretPath: /a"));
        assert!(req.parameters.get(ATTR_TOKENS).is_none());
        let (aud, tok) = req.tokens.single().unwrap();
        assert_eq!(aud, "akeyless");
        assert_eq!(tok.token.expose_secret(), "jwt-abc");
        assert_eq!(
            req.secrets
                .get("akeylessAccessKey")
                .unwrap()
                .expose_secret(),
            "k"
        );
    }

    #[test]
    fn secrets_may_be_null_empty_or_braces() {
        for s in ["null", "", "{}", " null "] {
            let req = MountRequest::decode(&wire("{}", s, "420")).unwrap();
            assert!(req.secrets.get("anything").is_none(), "secrets {s:?}");
        }
    }

    #[test]
    fn tokens_may_come_from_secrets() {
        let secrets = serde_json::json!({ ATTR_TOKENS: tokens_attr(&[("aud", "t")]) });
        let req = MountRequest::decode(&wire("{}", &secrets.to_string(), "420")).unwrap();
        assert_eq!(req.tokens.len(), 1);
        assert!(req.secrets.get(ATTR_TOKENS).is_none());
    }

    /// Drivers ≤ v1.5 under `serviceAccountTokenInSecrets`: kubelet's tokens in `secrets`, and
    /// in `attributes` a copy the driver minted or a tenant's SPC parameter of that name.
    #[test]
    fn tokens_in_secrets_win_over_the_attribute() {
        let attrs = serde_json::json!({ ATTR_TOKENS: tokens_attr(&[("aud", "from-attributes")]) });
        let secrets = serde_json::json!({
            ATTR_TOKENS: tokens_attr(&[("aud", "from-kubelet")]),
            "akeylessAccessKey": "k",
        });
        let req =
            MountRequest::decode(&wire(&attrs.to_string(), &secrets.to_string(), "420")).unwrap();
        let (aud, tok) = req.tokens.single().unwrap();
        assert_eq!((aud, tok.token.expose_secret()), ("aud", "from-kubelet"));
        // Neither copy leaks into the parameters or the nodePublishSecretRef data.
        assert!(req.parameters.get(ATTR_TOKENS).is_none());
        assert!(req.secrets.get(ATTR_TOKENS).is_none());
        assert_eq!(
            req.secrets
                .get("akeylessAccessKey")
                .unwrap()
                .expose_secret(),
            "k"
        );
    }

    /// The default mode (and the sync controller): tokens in `attributes` only, `secrets` null,
    /// empty, or holding only nodePublishSecretRef data or a blank tokens key.
    #[test]
    fn tokens_in_attributes_when_secrets_has_none() {
        let attrs = serde_json::json!({ ATTR_TOKENS: tokens_attr(&[("aud", "from-attributes")]) });
        let blank = serde_json::json!({ ATTR_TOKENS: " " }).to_string();
        for secrets in [
            "null",
            "",
            "{}",
            r#"{"akeylessAccessKey":"k"}"#,
            blank.as_str(),
        ] {
            let req = MountRequest::decode(&wire(&attrs.to_string(), secrets, "420")).unwrap();
            let (_, tok) = req.tokens.single().unwrap();
            assert_eq!(
                tok.token.expose_secret(),
                "from-attributes",
                "secrets {secrets:?}"
            );
        }
    }

    /// The winning copy is the one validated; the error names the field it came from.
    #[test]
    fn malformed_tokens_name_their_field() {
        let good = serde_json::json!({ ATTR_TOKENS: tokens_attr(&[("aud", "t")]) }).to_string();
        let bad = serde_json::json!({ ATTR_TOKENS: "{\"aud\": \"not-an-object\"}" }).to_string();
        let e = MountRequest::decode(&wire(&good, &bad, "420")).unwrap_err();
        assert!(matches!(e, RequestError::Tokens("secrets", _)), "{e}");
        assert!(e.to_string().contains("request field secrets"), "{e}");
        let e = MountRequest::decode(&wire(&bad, "null", "420")).unwrap_err();
        assert!(matches!(e, RequestError::Tokens("attributes", _)), "{e}");
        // A malformed attribute copy is ignored when kubelet's copy in `secrets` is good.
        let req = MountRequest::decode(&wire(&bad, &good, "420")).unwrap();
        assert_eq!(req.tokens.len(), 1);
    }

    #[test]
    fn malformed_fields_are_clear_errors() {
        let e = MountRequest::decode(&wire("{not json", "{}", "420")).unwrap_err();
        assert!(matches!(e, RequestError::Attributes(_)), "{e}");
        let e = MountRequest::decode(&wire("[]", "{}", "420")).unwrap_err();
        assert!(matches!(e, RequestError::Attributes(_)));
        let e = MountRequest::decode(&wire("{}", "[1]", "420")).unwrap_err();
        assert!(matches!(e, RequestError::Secrets(_)));
        let e = MountRequest::decode(&wire("{}", "{}", "999")).unwrap_err();
        assert!(matches!(e, RequestError::Permission(_)));
        let e = MountRequest::decode(&wire("{}", "{}", "-1")).unwrap_err();
        assert!(matches!(e, RequestError::Permission(_)));
        let bad_tokens = serde_json::json!({ ATTR_TOKENS: "{\"aud\": \"not-an-object\"}" });
        let e = MountRequest::decode(&wire(&bad_tokens.to_string(), "{}", "420")).unwrap_err();
        assert!(matches!(e, RequestError::Tokens("attributes", _)), "{e}");
    }

    #[test]
    fn errors_never_quote_secret_content() {
        // A secrets JSON whose value has the wrong type: serde would quote it; we must not.
        let e = MountRequest::decode(&wire("{}", r#"{"akeylessAccessKey": {"x": "s3cr3t"}}"#, ""))
            .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let attrs =
            serde_json::json!({ ATTR_TOKENS: "{\"aud\": {\"token\": 5, \"x\": \"s3cr3t\"}}" });
        let e = MountRequest::decode(&wire(&attrs.to_string(), "{}", "")).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }

    #[test]
    fn debug_never_shows_credentials() {
        let attrs = serde_json::json!({
            "akeylessAccessKey": "inline-key-value",
            "akeylessUIDInitToken": "uid-init-value",
            ATTR_TOKENS: tokens_attr(&[("a", "pod-jwt-value")]),
        });
        let req = MountRequest::decode(&wire(
            &attrs.to_string(),
            r#"{"akeylessAccessKey":"secret-ref-key-value"}"#,
            "420",
        ))
        .unwrap();
        let dbg = format!("{req:?}");
        for leaked in [
            "inline-key-value",
            "uid-init-value",
            "pod-jwt-value",
            "secret-ref-key-value",
        ] {
            assert!(!dbg.contains(leaked), "{leaked} in {dbg}");
        }
        assert!(dbg.contains("akeylessAccessKey"));
    }
}
