//! Declarative emulator setup, loadable from a YAML/JSON file or `POST /__emulator/seed`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::items::{ItemBody, StoredValue};
use super::state::{AuthMethod, Data, EmulatorState};
use super::tokenreview::{K8sAuthConfig, SeedK8sAuthConfig};
use super::util::normalize_name;

/// Auth methods, grants and items to load into an emulator.
///
/// All sections are optional; unknown keys are rejected so typos in hand-written files surface.
/// Loading is additive: an auth method replaces one with the same access id, grants are added,
/// and item versions are appended (oldest first) after any existing ones. Example (YAML):
///
/// ```yaml
/// token_ttl_seconds: 3600              # lifetime of t- tokens (default 3600)
/// auth_methods:
///   - type: access_key
///     access_id: p-demo
///     access_key: demo-key
///   - type: k8s
///     access_id: p-k8s
///     config_name: k8s-conf            # must match `k8s-auth-config-name`
///     bound_namespaces: [team-a]       # empty or absent = any
///     bound_service_accounts: []       # empty or absent = any
///     audience: akeyless               # optional; absent = any audience
///   - type: k8s                        # verified by a real TokenReview (see below)
///     access_id: p-cluster
///     config_name: my-cluster
///     bound_namespaces: [team-a]
///     audience: akeyless               # asked of the TokenReview; absent = the API audiences
///   - type: jwt
///     access_id: p-jwt
///     bound_subjects: [ci-runner]      # empty or absent = any sub
/// k8s_auth_configs:                    # gateway Kubernetes auth configs (TokenReview)
///   - name: my-cluster                 # a k8s auth method's config_name
///     api_server: https://127.0.0.1:6443
///     ca_cert_pem: "-----BEGIN CERTIFICATE-----\n..."   # optional; default Mozilla roots
///     token_reviewer_jwt: "eyJ..."     # optional; default: the reviewed token itself
/// grants:                              # read access
///   - access_id: p-demo
///     path: /demo/*                    # exact name, `<prefix>/*`, or `/*`
///   - access_id: p-k8s
///     path: /team-a/*
///     namespaces: [team-a]             # optional namespace sub-claim restriction
/// items:
///   - type: static_secret
///     name: /demo/password
///     versions: [first, second]        # version 1, 2 (latest)
///   - type: rotated_secret
///     name: /demo/db
///     versions: [{username: app, password: s3cret}]
///   - type: certificate
///     name: /demo/tls
///     versions:
///       - certificate_pem: "-----BEGIN CERTIFICATE-----\n..."
///         private_key_pem: "-----BEGIN PRIVATE KEY-----\n..."   # optional
///   - type: dynamic_secret
///     name: /demo/github
///     template: {token: "", permissions: {contents: read}}
///     ttl_seconds: 3600                # default 3600
/// ```
///
/// An item with an empty `versions` list is skipped. A k8s auth method whose `config_name` has
/// an entry in `k8s_auth_configs` validates pod tokens with the cluster's TokenReview API (see
/// the `tokenreview` module); otherwise with the emulator's own signing key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Seed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl_seconds: Option<u64>,
    #[serde(default)]
    pub auth_methods: Vec<SeedAuthMethod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub k8s_auth_configs: Vec<SeedK8sAuthConfig>,
    #[serde(default)]
    pub grants: Vec<SeedGrant>,
    #[serde(default)]
    pub items: Vec<SeedItem>,
}

/// An auth method, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum SeedAuthMethod {
    AccessKey {
        access_id: String,
        access_key: String,
    },
    K8s {
        access_id: String,
        config_name: String,
        #[serde(default)]
        bound_namespaces: Vec<String>,
        #[serde(default)]
        bound_service_accounts: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
    },
    Jwt {
        access_id: String,
        #[serde(default)]
        bound_subjects: Vec<String>,
    },
}

/// Read access for `access_id` on `path` (see [`EmulatorState::grant_read`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeedGrant {
    pub access_id: String,
    pub path: String,
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// An item, tagged by `type`. `versions` are oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum SeedItem {
    StaticSecret {
        name: String,
        versions: Vec<String>,
    },
    RotatedSecret {
        name: String,
        versions: Vec<Value>,
    },
    Certificate {
        name: String,
        versions: Vec<SeedCertificate>,
    },
    DynamicSecret {
        name: String,
        template: Value,
        #[serde(default = "default_dynamic_ttl")]
        ttl_seconds: u64,
    },
}

/// One certificate version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeedCertificate {
    pub certificate_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_pem: Option<String>,
}

fn default_dynamic_ttl() -> u64 {
    3600
}

impl SeedAuthMethod {
    /// The access id and the auth method it registers.
    fn to_auth_method(&self) -> (&str, AuthMethod) {
        match self {
            SeedAuthMethod::AccessKey {
                access_id,
                access_key,
            } => (
                access_id.as_str(),
                AuthMethod::AccessKey {
                    access_key: access_key.clone(),
                },
            ),
            SeedAuthMethod::K8s {
                access_id,
                config_name,
                bound_namespaces,
                bound_service_accounts,
                audience,
            } => (
                access_id.as_str(),
                AuthMethod::K8s {
                    config_name: config_name.clone(),
                    bound_namespaces: bound_namespaces.clone(),
                    bound_service_accounts: bound_service_accounts.clone(),
                    audience: audience.clone(),
                },
            ),
            SeedAuthMethod::Jwt {
                access_id,
                bound_subjects,
            } => (
                access_id.as_str(),
                AuthMethod::Jwt {
                    bound_subjects: bound_subjects.clone(),
                },
            ),
        }
    }
}

impl SeedItem {
    /// Stores the item (every version, in order).
    fn store(&self, data: &mut Data) {
        match self {
            SeedItem::StaticSecret { name, versions } => {
                for value in versions {
                    data.append_version(name, StoredValue::Static(value.clone()));
                }
            }
            SeedItem::RotatedSecret { name, versions } => {
                for value in versions {
                    data.append_version(name, StoredValue::Rotated(value.clone()));
                }
            }
            SeedItem::Certificate { name, versions } => {
                for cert in versions {
                    data.append_version(
                        name,
                        StoredValue::Certificate {
                            certificate_pem: cert.certificate_pem.clone(),
                            private_key_pem: cert.private_key_pem.clone(),
                        },
                    );
                }
            }
            SeedItem::DynamicSecret {
                name,
                template,
                ttl_seconds,
            } => data.insert_item(
                normalize_name(name),
                ItemBody::Dynamic {
                    template: template.clone(),
                    ttl: Duration::from_secs(*ttl_seconds),
                },
                SystemTime::now(),
            ),
        }
    }
}

impl EmulatorState {
    /// Loads `seed` (additively, see [`Seed`]) in one step, so no request sees half of it.
    /// Refuses (loading nothing) a seed with an invalid `k8s_auth_configs` entry, saying which.
    pub(crate) fn try_load_seed(&self, seed: &Seed) -> Result<(), String> {
        let configs = seed
            .k8s_auth_configs
            .iter()
            .map(|c| K8sAuthConfig::new(c).map(|config| (c.name.clone(), config)))
            .collect::<Result<Vec<_>, String>>()?;
        self.load_seed_with(seed, configs);
        Ok(())
    }

    fn load_seed_with(&self, seed: &Seed, k8s_auth_configs: Vec<(String, K8sAuthConfig)>) {
        let mut data = self.lock();
        data.k8s_auth_configs.extend(k8s_auth_configs);
        if let Some(secs) = seed.token_ttl_seconds {
            data.token_ttl = Duration::from_secs(secs);
        }
        for method in &seed.auth_methods {
            let (access_id, method) = method.to_auth_method();
            data.auth_methods.insert(access_id.to_owned(), method);
        }
        for grant in &seed.grants {
            data.add_grant(&grant.access_id, &grant.path, grant.namespaces.clone());
        }
        for item in &seed.items {
            item.store(&mut data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::ItemType;
    use crate::state::Identity;

    const SEED: &str = r#"{
        "token_ttl_seconds": 60,
        "auth_methods": [
            {"type": "access_key", "access_id": "p-a", "access_key": "k"},
            {"type": "k8s", "access_id": "p-k", "config_name": "conf", "bound_namespaces": ["ns"]},
            {"type": "jwt", "access_id": "p-j"}
        ],
        "grants": [{"access_id": "p-a", "path": "/demo/*"}],
        "items": [
            {"type": "static_secret", "name": "/demo/s", "versions": ["one", "two"]},
            {"type": "rotated_secret", "name": "demo/r", "versions": [{"password": "p"}]},
            {"type": "certificate", "name": "/demo/c", "versions": [{"certificate_pem": "C"}]},
            {"type": "dynamic_secret", "name": "/demo/d", "template": {"token": ""}}
        ]
    }"#;

    #[test]
    fn loads_json_seed() {
        let seed: Seed = serde_json::from_str(SEED).unwrap();
        let state = EmulatorState::new();
        state.try_load_seed(&seed).unwrap();
        let data = state.lock();
        assert_eq!(data.token_ttl, Duration::from_secs(60));
        assert_eq!(data.auth_methods.len(), 3);
        assert!(data.can_read(&Identity::access_key("p-a"), "/demo/s"));
        assert_eq!(data.items["/demo/s"].last_version(), 2);
        assert_eq!(data.items["/demo/r"].item_type(), ItemType::RotatedSecret);
        assert_eq!(data.items["/demo/c"].item_type(), ItemType::Certificate);
        assert_eq!(data.items["/demo/d"].item_type(), ItemType::DynamicSecret);
    }

    #[test]
    fn loads_yaml_and_rejects_typos() {
        let yaml = "auth_methods:\n  - type: access_key\n    access_id: p-a\n    access_key: k\n\
                    items:\n  - type: static_secret\n    name: /x\n    versions: [v]\n";
        let seed: Seed = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(seed.items.len(), 1);
        assert!(serde_json::from_str::<Seed>(r#"{"itemz": []}"#).is_err());
        let typo = r#"{"items": [{"type": "static_secret", "name": "/x", "version": ["v"]}]}"#;
        assert!(serde_json::from_str::<Seed>(typo).is_err());
        let round_trip: Seed =
            serde_json::from_value(serde_json::to_value(&seed).unwrap()).unwrap();
        assert_eq!(round_trip, seed);
    }
}
