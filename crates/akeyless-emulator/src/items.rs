//! Stored items: static, rotated and certificate secrets with version history, and dynamic
//! secrets that mint a fresh credential on every read.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::util::random_alphanumeric;

/// The `item_type` strings Akeyless uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ItemType {
    StaticSecret,
    RotatedSecret,
    Certificate,
    DynamicSecret,
    PkiCertIssuer,
}

impl ItemType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::StaticSecret => "STATIC_SECRET",
            Self::RotatedSecret => "ROTATED_SECRET",
            Self::Certificate => "CERTIFICATE",
            Self::DynamicSecret => "DYNAMIC_SECRET",
            Self::PkiCertIssuer => "PKI_CERT_ISSUER",
        }
    }
}

/// The payload of one version of a versioned item.
#[derive(Clone, Debug)]
pub(crate) enum StoredValue {
    Static(String),
    Rotated(Value),
    Certificate {
        certificate_pem: String,
        private_key_pem: Option<String>,
    },
}

impl StoredValue {
    pub(crate) fn item_type(&self) -> ItemType {
        match self {
            Self::Static(_) => ItemType::StaticSecret,
            Self::Rotated(_) => ItemType::RotatedSecret,
            Self::Certificate { .. } => ItemType::Certificate,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Version {
    pub value: StoredValue,
    pub created: SystemTime,
}

#[derive(Clone, Debug)]
pub(crate) enum ItemBody {
    /// Never empty: an item is created together with its first version.
    Versioned(Vec<Version>),
    /// Generates a fresh credential from `template` on every read.
    Dynamic { template: Value, ttl: Duration },
    /// Signs CSRs with its CA (PEM) for at most `max_ttl`.
    PkiIssuer {
        ca_cert_pem: String,
        ca_key_pem: String,
        max_ttl: Duration,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub id: u64,
    pub created: SystemTime,
    pub modified: SystemTime,
    pub body: ItemBody,
}

impl Item {
    pub(crate) fn item_type(&self) -> ItemType {
        match &self.body {
            ItemBody::Versioned(versions) => versions
                .first()
                .map_or(ItemType::StaticSecret, |v| v.value.item_type()),
            ItemBody::Dynamic { .. } => ItemType::DynamicSecret,
            ItemBody::PkiIssuer { .. } => ItemType::PkiCertIssuer,
        }
    }

    /// Latest version number; 0 for dynamic secrets, as Akeyless reports.
    pub(crate) fn last_version(&self) -> u32 {
        match &self.body {
            ItemBody::Versioned(versions) => u32::try_from(versions.len()).unwrap_or(u32::MAX),
            ItemBody::Dynamic { .. } | ItemBody::PkiIssuer { .. } => 0,
        }
    }

    /// The requested version (`0` = latest), or `None` if it does not exist.
    pub(crate) fn version(&self, version: u32) -> Option<&Version> {
        let ItemBody::Versioned(versions) = &self.body else {
            return None;
        };
        match version {
            0 => versions.last(),
            n => versions.get(usize::try_from(n).ok()? - 1),
        }
    }
}

/// `template` with fresh credentials: string fields named `password`/`token`/`secret` at any
/// depth get new random values, and `id` / `ttl_in_minutes` are set as the GitHub producer does.
pub(crate) fn fresh_dynamic_value(template: &Value, ttl: Duration) -> Value {
    fn refresh(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, field) in map.iter_mut() {
                    if matches!(key.as_str(), "password" | "token" | "secret") && field.is_string()
                    {
                        *field = Value::String(random_alphanumeric(32));
                    } else {
                        refresh(field);
                    }
                }
            }
            Value::Array(values) => values.iter_mut().for_each(refresh),
            _ => {}
        }
    }
    let mut value = match template {
        Value::Object(_) => template.clone(),
        // A scalar template still gets a lease id; keep it under `value`.
        other => serde_json::json!({ "value": other }),
    };
    refresh(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert(
            "id".to_owned(),
            Value::String(format!("tmp.{}", random_alphanumeric(20))),
        );
        let minutes = ttl.as_secs().div_ceil(60);
        map.insert(
            "ttl_in_minutes".to_owned(),
            Value::String(minutes.to_string()),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dynamic_values_are_fresh() {
        let template = json!({"username": "u", "password": "x", "nested": {"token": "t", "n": 1}});
        let a = fresh_dynamic_value(&template, Duration::from_secs(3600));
        let b = fresh_dynamic_value(&template, Duration::from_secs(3600));
        assert_eq!(a["username"], "u");
        assert_ne!(a["password"], "x");
        assert_ne!(a["password"], b["password"]);
        assert_ne!(a["nested"]["token"], "t");
        assert_eq!(a["nested"]["n"], 1);
        assert_eq!(a["ttl_in_minutes"], "60");
        assert!(a["id"].as_str().unwrap().starts_with("tmp."));
        assert_ne!(a["id"], b["id"]);
    }
}
