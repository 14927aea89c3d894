//! The SecretProviderClass as the sync controller sees it, and the sync settings its annotations
//! carry. Pure: parsing and validation only.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::core::object::{NotUsed, Object};
use kube::core::{ApiResource, GroupVersionKind};
use serde::{Deserialize, Serialize};

/// Opts an SPC into sync: the ServiceAccount (of the SPC's namespace) to authenticate as.
pub(crate) const ANNOTATION_SERVICE_ACCOUNT: &str = "akeyless.io/sync-service-account";
/// How often the Secrets are refreshed (a duration such as `5m`).
pub(crate) const ANNOTATION_INTERVAL: &str = "akeyless.io/sync-interval";
/// Only SPCs of this provider are synced.
pub(crate) const PROVIDER: &str = "akeyless";
/// Refresh interval when the SPC sets none.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// `secrets-store.csi.x-k8s.io/v1` `SecretProviderClass`; only the fields sync reads. Every
/// field defaults, so one odd object can't break the watch of all of them.
pub(crate) type SecretProviderClass = Object<SpcSpec, NotUsed>;

/// The API resource of [`SecretProviderClass`].
pub(crate) fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass"),
        "secretproviderclasses",
    )
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SpcSpec {
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub secret_objects: Vec<SecretObject>,
}

pub(crate) use crate::spec::secret_objects::SecretObject;
use crate::spec::secret_objects::is_dns_subdomain;

/// What one SPC asks of the sync controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyncSettings {
    pub service_account: String,
    pub interval: Duration,
}

/// Why an SPC can't be synced. The message names the field and says what to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub(crate) struct SpcError(pub String);

/// `None` when the SPC doesn't ask for sync (other provider, or no annotation): it is ignored.
pub(crate) fn sync_settings(
    spc: &SecretProviderClass,
    min_interval: Duration,
) -> Option<Result<SyncSettings, SpcError>> {
    if spc.spec.provider != PROVIDER {
        return None;
    }
    let annotations = spc.metadata.annotations.as_ref()?;
    let service_account = annotations.get(ANNOTATION_SERVICE_ACCOUNT)?.trim();
    Some(settings(
        service_account,
        annotations.get(ANNOTATION_INTERVAL),
        min_interval,
    ))
}

fn settings(
    service_account: &str,
    interval: Option<&String>,
    min_interval: Duration,
) -> Result<SyncSettings, SpcError> {
    if !is_dns_subdomain(service_account) {
        return Err(SpcError(format!(
            "annotation {ANNOTATION_SERVICE_ACCOUNT}: {service_account:?} is not a ServiceAccount name; \
             name a ServiceAccount of this SecretProviderClass's namespace"
        )));
    }
    let interval = match interval.map(|s| s.trim()) {
        None | Some("") => DEFAULT_INTERVAL,
        Some(text) => {
            let d = crate::spec::parse_duration(text).map_err(|e| {
                SpcError(format!(
                    "annotation {ANNOTATION_INTERVAL}: {e}; use a duration such as 5m"
                ))
            })?;
            if d < min_interval {
                return Err(SpcError(format!(
                    "annotation {ANNOTATION_INTERVAL}: {text} is shorter than the controller's minimum \
                     ({}s, flag --min-sync-interval)",
                    min_interval.as_secs()
                )));
            }
            d
        }
    };
    Ok(SyncSettings {
        service_account: service_account.to_owned(),
        interval,
    })
}

/// Checks `spec.secretObjects` as the driver does, plus what the API server would refuse later
/// (see [`crate::spec::secret_objects::structure_problems`]); sync also needs at least one.
/// Returns the first problem.
pub(crate) fn validate_secret_objects(objects: &[SecretObject]) -> Result<(), SpcError> {
    if objects.is_empty() {
        return Err(SpcError(
            "spec.secretObjects is empty: declare the Secrets to write (secretName, type, data)"
                .into(),
        ));
    }
    match crate::spec::secret_objects::structure_problems(objects)
        .into_iter()
        .next()
    {
        Some(problem) => Err(SpcError(problem.message)),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spec::secret_objects::SecretObjectData;

    fn spc(provider: &str, annotations: &[(&str, &str)]) -> SecretProviderClass {
        let mut spc = SecretProviderClass::new("app", &api_resource(), SpcSpec::default());
        spc.spec.provider = provider.into();
        spc.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        spc
    }

    /// A `secretObjects` entry mapping (objectName, key) pairs; shared with `secret`'s tests.
    pub(crate) fn object(name: &str, type_: &str, data: &[(&str, &str)]) -> SecretObject {
        SecretObject {
            secret_name: name.into(),
            type_: type_.into(),
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

    const MIN: Duration = Duration::from_secs(30);

    #[test]
    fn only_akeyless_spcs_with_the_annotation_are_synced() {
        assert!(
            sync_settings(&spc("azure", &[(ANNOTATION_SERVICE_ACCOUNT, "app")]), MIN).is_none()
        );
        assert!(sync_settings(&spc("akeyless", &[("other", "x")]), MIN).is_none());
        let s = sync_settings(
            &spc("akeyless", &[(ANNOTATION_SERVICE_ACCOUNT, " app ")]),
            MIN,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.service_account, "app");
        assert_eq!(s.interval, DEFAULT_INTERVAL);
    }

    #[test]
    fn interval_is_parsed_and_bounded() {
        let with = |v: &str| {
            sync_settings(
                &spc(
                    "akeyless",
                    &[
                        (ANNOTATION_SERVICE_ACCOUNT, "app"),
                        (ANNOTATION_INTERVAL, v),
                    ],
                ),
                MIN,
            )
            .unwrap()
        };
        assert_eq!(with("90s").unwrap().interval, Duration::from_secs(90));
        assert_eq!(with("1h").unwrap().interval, Duration::from_secs(3600));
        let e = with("10s").unwrap_err().0;
        assert!(e.contains("--min-sync-interval"), "{e}");
        let e = with("soon").unwrap_err().0;
        assert!(e.contains(ANNOTATION_INTERVAL), "{e}");
        let e = sync_settings(
            &spc("akeyless", &[(ANNOTATION_SERVICE_ACCOUNT, "Bad_Name")]),
            MIN,
        )
        .unwrap()
        .unwrap_err()
        .0;
        assert!(e.contains("not a ServiceAccount name"), "{e}");
    }

    #[test]
    fn secret_objects_are_validated_with_the_field_named() {
        let ok = object("db", "Opaque", &[("db-password", "password")]);
        assert_eq!(validate_secret_objects(std::slice::from_ref(&ok)), Ok(()));
        let cases: Vec<(Vec<SecretObject>, &str)> = vec![
            (vec![], "spec.secretObjects is empty"),
            (
                vec![object("", "Opaque", &[("a", "b")])],
                "[0].secretName is empty",
            ),
            (
                vec![object("Db", "Opaque", &[("a", "b")])],
                "not a valid Secret name",
            ),
            (vec![object("db", "", &[("a", "b")])], "[0].type is empty"),
            (vec![object("db", "Opaque", &[])], "[0].data is empty"),
            (
                vec![object("db", "Opaque", &[("", "b")])],
                "[0].data[0].objectName",
            ),
            (
                vec![object("db", "Opaque", &[("a", "")])],
                "[0].data[0].key is empty",
            ),
            (
                vec![object("db", "Opaque", &[("a", "b/c")])],
                "not a valid Secret key",
            ),
            (
                vec![object("db", "Opaque", &[("a", "k"), ("b", "k")])],
                "appears twice",
            ),
            (
                vec![ok.clone(), ok.clone()],
                "[1].secretName \"db\" is declared twice",
            ),
        ];
        for (objects, expected) in cases {
            let e = validate_secret_objects(&objects).unwrap_err().0;
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        }
    }

    #[test]
    fn spc_deserializes_from_the_api_shape() {
        let spc: SecretProviderClass = serde_json::from_value(serde_json::json!({
            "apiVersion": "secrets-store.csi.x-k8s.io/v1",
            "kind": "SecretProviderClass",
            "metadata": {"name": "app", "namespace": "team-a"},
            "spec": {
                "provider": "akeyless",
                "parameters": {"objects": "- secretPath: /a"},
                "secretObjects": [{"secretName": "db", "type": "Opaque",
                    "labels": {"l": "v"},
                    "data": [{"objectName": "a", "key": "password"}]}]
            }
        }))
        .unwrap();
        assert_eq!(spc.spec.secret_objects[0].data[0].key, "password");
        assert_eq!(spc.spec.secret_objects[0].labels["l"], "v");
        // A sparse object still parses.
        let sparse: SecretProviderClass = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x"}, "spec": {}
        }))
        .unwrap();
        assert!(sparse.spec.secret_objects.is_empty());
    }
}
