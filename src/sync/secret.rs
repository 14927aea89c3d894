//! Rendered files → the Kubernetes Secrets an SPC's `secretObjects` declare, and the rules about
//! which existing Secrets we may write. Pure: no API calls.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use super::spc::{SecretObject, SpcError};
use super::tls::tls_part;
use crate::render::Rendered;
use crate::secret::{ExposeSecret, SecretBytes, secret_bytes};

/// Marks the Secrets this controller writes (and selects them in its watch).
pub(crate) const LABEL_MANAGED: &str = "akeyless.io/sync-managed";
/// SHA-256 of the Secret's type and data, so tools such as Reloader can react to changes.
pub(crate) const ANNOTATION_CONTENT_HASH: &str = "akeyless.io/content-hash";
/// The driver's own sync labels the Secrets it manages with this.
pub(crate) const DRIVER_MANAGED_LABEL: &str = "secrets-store.csi.k8s.io/managed";
const TLS_TYPE: &str = "kubernetes.io/tls";

/// A Secret as it should be. `Debug` shows keys and the hash, never values.
pub(crate) struct DesiredSecret {
    pub name: String,
    pub type_: String,
    pub data: BTreeMap<String, SecretBytes>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub hash: String,
}

impl std::fmt::Debug for DesiredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredSecret")
            .field("name", &self.name)
            .field("type", &self.type_)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("hash", &self.hash)
            .finish()
    }
}

/// Builds every declared Secret from the mount's files. Fails, naming the entry, when a file is
/// missing or a TLS part can't be extracted; then nothing is written.
pub(crate) fn desired_secrets(
    objects: &[SecretObject],
    rendered: &Rendered,
) -> Result<Vec<DesiredSecret>, SpcError> {
    let files: BTreeMap<&str, &SecretBytes> = rendered
        .files
        .iter()
        .map(|f| (f.path.as_str(), &f.contents))
        .collect();
    objects
        .iter()
        .enumerate()
        .map(|(i, object)| {
            let type_ = object.type_.trim().to_owned();
            let mut data = BTreeMap::new();
            for (j, entry) in object.data.iter().enumerate() {
                let object_name = entry.object_name.trim();
                let key = entry.key.trim();
                let content = files.get(object_name).ok_or_else(|| {
                    SpcError(format!(
                        "spec.secretObjects[{i}].data[{j}].objectName: no object renders a file {object_name:?}; \
                         use an objectAlias/fileName of the objects parameter (files: {})",
                        files.keys().copied().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                let value = if type_ == TLS_TYPE {
                    tls_part(content.expose_secret(), key).map_err(|e| {
                        SpcError(format!(
                            "spec.secretObjects[{i}].data[{j}] (file {object_name:?}, key {key:?}): {e}"
                        ))
                    })?
                } else {
                    content.expose_secret().clone()
                };
                data.insert(key.to_owned(), secret_bytes(value));
            }
            let hash = content_hash(&type_, data.iter().map(|(k, v)| (k.as_str(), v.expose_secret().as_slice())));
            let mut labels = object.labels.clone();
            labels.insert(LABEL_MANAGED.into(), "true".into());
            let mut annotations = object.annotations.clone();
            annotations.insert(ANNOTATION_CONTENT_HASH.into(), hash.clone());
            Ok(DesiredSecret {
                name: object.secret_name.trim().to_owned(),
                type_,
                data,
                labels,
                annotations,
                hash,
            })
        })
        .collect()
}

/// `sha256:` and the hex SHA-256 of the type and the (key, value) pairs in key order, each
/// length-prefixed so no two different Secrets hash alike.
pub(crate) fn content_hash<'a>(
    type_: &str,
    data: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> String {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(type_.as_bytes());
    let mut pairs: Vec<_> = data.collect();
    pairs.sort_by_key(|(k, _)| *k);
    for (k, v) in pairs {
        field(k.as_bytes());
        field(v);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Who owns an existing Secret of a declared name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// No such Secret yet.
    Absent,
    /// Written by us for this SPC.
    Ours,
    /// The driver's own sync manages it (a pod mounts this SPC with syncSecret enabled).
    ManagedByDriver,
    /// Someone else's Secret (or another SPC's): never overwritten.
    Foreign(String),
}

pub(crate) fn ownership(existing: Option<&Secret>, spc_uid: &str) -> Ownership {
    let Some(secret) = existing else {
        return Ownership::Absent;
    };
    let labels = secret.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    if label(DRIVER_MANAGED_LABEL) == Some("true") {
        return Ownership::ManagedByDriver;
    }
    let owner = secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match owner {
        Some(o) if o.uid == spc_uid && label(LABEL_MANAGED) == Some("true") => Ownership::Ours,
        Some(o) => Ownership::Foreign(format!("it is controlled by {} {:?}", o.kind, o.name)),
        None => Ownership::Foreign("it was not created by the akeyless sync controller".into()),
    }
}

/// The content hash of what an existing Secret holds now (its type and data), whatever its
/// annotation says.
pub(crate) fn stored_hash(secret: &Secret) -> String {
    let empty = BTreeMap::new();
    content_hash(
        secret.type_.as_deref().unwrap_or("Opaque"),
        secret
            .data
            .as_ref()
            .unwrap_or(&empty)
            .iter()
            .map(|(k, v)| (k.as_str(), v.0.as_slice())),
    )
}

/// True when `existing` already holds exactly `desired` (data, type, our labels and
/// annotations): then nothing is written and its resourceVersion stays.
pub(crate) fn is_current(existing: &Secret, desired: &DesiredSecret) -> bool {
    let has_all = |have: Option<&BTreeMap<String, String>>, want: &BTreeMap<String, String>| {
        want.iter()
            .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
    };
    stored_hash(existing) == desired.hash
        && has_all(existing.metadata.labels.as_ref(), &desired.labels)
        && has_all(existing.metadata.annotations.as_ref(), &desired.annotations)
}

/// The Secret object to apply (server-side apply with our field manager).
pub(crate) fn to_secret(
    desired: &DesiredSecret,
    namespace: &str,
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Secret {
    Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(desired.name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some(desired.labels.clone()),
            annotations: Some(desired.annotations.clone()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some(desired.type_.clone()),
        data: Some(
            desired
                .data
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.expose_secret().clone())))
                .collect(),
        ),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderedFile;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn rendered(files: &[(&str, &str)]) -> Rendered {
        Rendered {
            files: files
                .iter()
                .map(|(p, c)| RenderedFile {
                    path: p.to_string(),
                    mode: 0o644,
                    contents: secret_bytes(c.as_bytes().to_vec()),
                })
                .collect(),
            versions: vec![],
        }
    }

    fn object(name: &str, type_: &str, data: &[(&str, &str)]) -> SecretObject {
        SecretObject {
            labels: [("team".to_string(), "a".to_string())].into(),
            ..crate::sync::spc::tests::object(name, type_, data)
        }
    }

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "secrets-store.csi.x-k8s.io/v1".into(),
            kind: "SecretProviderClass".into(),
            name: "app".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    #[test]
    fn secrets_take_file_contents_under_their_keys() {
        let files = rendered(&[("db/user", "admin"), ("db/pass", "s3cret"), ("other", "x")]);
        let out = desired_secrets(
            &[object(
                "db",
                "Opaque",
                &[("db/user", "username"), (" db/pass ", "password")],
            )],
            &files,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        let d = &out[0];
        assert_eq!(d.name, "db");
        assert_eq!(d.data["username"].expose_secret(), b"admin");
        assert_eq!(d.data["password"].expose_secret(), b"s3cret");
        assert_eq!(d.labels[LABEL_MANAGED], "true");
        assert_eq!(d.labels["team"], "a");
        assert_eq!(d.annotations[ANNOTATION_CONTENT_HASH], d.hash);
        assert!(!format!("{d:?}").contains("s3cret"));
    }

    #[test]
    fn a_missing_file_names_the_entry_and_lists_the_files() {
        let e = desired_secrets(
            &[object("db", "Opaque", &[("nope", "k")])],
            &rendered(&[("a", "s3cret")]),
        )
        .unwrap_err()
        .0;
        assert!(
            e.contains("spec.secretObjects[0].data[0].objectName"),
            "{e}"
        );
        assert!(e.contains("files: a"), "{e}");
        assert!(!e.contains("s3cret"));
    }

    #[test]
    fn tls_secrets_follow_the_driver_rules() {
        let cert = include_str!("testdata/ec-cert.pem");
        let key = include_str!("testdata/ec-pkcs8.pem");
        let files = rendered(&[("tls/tls.crt", cert), ("tls/tls.key", key)]);
        let out = desired_secrets(
            &[object(
                "tls",
                TLS_TYPE,
                &[("tls/tls.crt", "tls.crt"), ("tls/tls.key", "tls.key")],
            )],
            &files,
        )
        .unwrap();
        assert_eq!(out[0].data["tls.crt"].expose_secret(), cert.as_bytes());
        assert_eq!(
            out[0].data["tls.key"].expose_secret(),
            include_str!("testdata/ec-sec1.pem").as_bytes()
        );
        let e = desired_secrets(
            &[object("tls", TLS_TYPE, &[("tls/tls.crt", "ca.crt")])],
            &files,
        )
        .unwrap_err()
        .0;
        assert!(
            e.contains("spec.secretObjects[0].data[0]") && e.contains("tls.crt or tls.key"),
            "{e}"
        );
    }

    #[test]
    fn the_hash_changes_with_any_key_value_or_type() {
        let h = |t: &str, d: &[(&str, &[u8])]| content_hash(t, d.iter().copied());
        let base = h("Opaque", &[("a", b"1"), ("b", b"2")]);
        assert_eq!(base, h("Opaque", &[("b", b"2"), ("a", b"1")]));
        assert_ne!(base, h("Opaque", &[("a", b"1"), ("b", b"3")]));
        assert_ne!(base, h("Opaque", &[("a", b"1"), ("c", b"2")]));
        assert_ne!(
            base,
            h("kubernetes.io/basic-auth", &[("a", b"1"), ("b", b"2")])
        );
        assert_ne!(h("Opaque", &[("ab", b"")]), h("Opaque", &[("a", b"b")]));
        assert!(base.starts_with("sha256:") && base.len() == 7 + 64);
    }

    #[test]
    fn ownership_and_currency() {
        let files = rendered(&[("a", "1")]);
        let d = desired_secrets(&[object("db", "Opaque", &[("a", "k")])], &files)
            .unwrap()
            .remove(0);
        let ours = to_secret(&d, "ns", owner("uid-1"));
        assert_eq!(ownership(None, "uid-1"), Ownership::Absent);
        assert_eq!(ownership(Some(&ours), "uid-1"), Ownership::Ours);
        assert!(
            matches!(ownership(Some(&ours), "uid-2"), Ownership::Foreign(m) if m.contains("SecretProviderClass \"app\""))
        );
        let mut foreign = ours.clone();
        foreign.metadata.owner_references = None;
        assert!(matches!(
            ownership(Some(&foreign), "uid-1"),
            Ownership::Foreign(_)
        ));
        let mut driver = foreign.clone();
        driver
            .metadata
            .labels
            .get_or_insert_default()
            .insert(DRIVER_MANAGED_LABEL.into(), "true".into());
        assert_eq!(
            ownership(Some(&driver), "uid-1"),
            Ownership::ManagedByDriver
        );

        assert!(is_current(&ours, &d));
        let mut edited = ours.clone();
        edited
            .data
            .as_mut()
            .unwrap()
            .insert("k".into(), ByteString(b"2".to_vec()));
        assert!(!is_current(&edited, &d), "edited data is rewritten");
        let mut relabelled = ours.clone();
        relabelled.metadata.labels.as_mut().unwrap().remove("team");
        assert!(!is_current(&relabelled, &d));
        let mut extra = ours;
        extra
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("reloader".into(), "x".into());
        assert!(
            is_current(&extra, &d),
            "others' extra annotations are left alone"
        );
    }
}
