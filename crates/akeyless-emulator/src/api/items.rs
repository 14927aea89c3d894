//! The item commands: `/describe-item` and the secret value reads (static, rotated,
//! certificate, dynamic).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::call::Call;
use super::error::{ApiError, ApiResult, ErrorKind};
use super::request::{requested_version, required};
use crate::items::{Item, ItemBody, ItemType, StoredValue, fresh_dynamic_value};
use crate::util::{normalize_name, rfc3339};

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct DescribeItemRequest {
    name: Option<String>,
    token: Option<String>,
    show_versions: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct GetSecretValueRequest {
    names: Option<Vec<String>>,
    version: Option<i32>,
    #[allow(dead_code)] // type-checked only; recorded in the request log from the raw body
    ignore_cache: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct GetRotatedSecretValueRequest {
    /// A single name, despite the plural.
    names: Option<String>,
    version: Option<i32>,
    #[allow(dead_code)] // type-checked only
    ignore_cache: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct GetCertificateValueRequest {
    name: Option<String>,
    version: Option<i32>,
    #[allow(dead_code)] // type-checked only
    ignore_cache: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct GetDynamicSecretValueRequest {
    name: Option<String>,
    #[allow(dead_code)] // type-checked only; recorded in the request log from the raw body
    args: Option<Vec<String>>,
    token: Option<String>,
}

impl Call<'_> {
    pub(super) fn describe_item(&mut self, req: DescribeItemRequest) -> ApiResult<Value> {
        let name = required(&req.name, "name")?;
        let show_versions = req.show_versions == Some(true);
        let answer = self.with_item(&req.token, name, |item| {
            Ok(describe(name, item, show_versions))
        });
        match answer {
            // Some gateways answer a missing item with 200 and no item at all.
            Err(e)
                if matches!(e.kind, ErrorKind::NotFound)
                    && self.state.lock().describe_missing_as_empty =>
            {
                Ok(json!({}))
            }
            other => other,
        }
    }

    pub(super) fn get_secret_value(&mut self, req: GetSecretValueRequest) -> ApiResult<Value> {
        let names: Vec<&str> = req
            .names
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect();
        if names.is_empty() {
            return Err(ApiError::bad_request("names is required"));
        }
        if names.iter().any(|n| n.is_empty()) {
            return Err(ApiError::bad_request("names must not contain empty names"));
        }
        let version = requested_version(req.version)?;
        self.with_items(&req.token, &names, |items| {
            let mut out = Map::new();
            for (name, item) in names.iter().zip(items) {
                Self::expect_type(name, item, ItemType::StaticSecret)?;
                if let StoredValue::Static(value) = Self::version_value(name, item, version)? {
                    // Keyed by the name as sent, which is what clients look up.
                    out.insert((*name).to_owned(), Value::String(value.clone()));
                }
            }
            Ok(Value::Object(out))
        })
    }

    pub(super) fn get_rotated_secret_value(
        &mut self,
        req: GetRotatedSecretValueRequest,
    ) -> ApiResult<Value> {
        let name = required(&req.names, "names")?;
        let version = requested_version(req.version)?;
        self.with_item(&req.token, name, |item| {
            Self::expect_type(name, item, ItemType::RotatedSecret)?;
            match Self::version_value(name, item, version)? {
                StoredValue::Rotated(value) => Ok(json!({ "value": value })),
                _ => Err(ApiError::bad_request("item is not a rotated secret")),
            }
        })
    }

    pub(super) fn get_certificate_value(
        &mut self,
        req: GetCertificateValueRequest,
    ) -> ApiResult<Value> {
        let name = required(&req.name, "name")?;
        let version = requested_version(req.version)?;
        self.with_item(&req.token, name, |item| {
            Self::expect_type(name, item, ItemType::Certificate)?;
            match Self::version_value(name, item, version)? {
                StoredValue::Certificate {
                    certificate_pem,
                    private_key_pem,
                } => {
                    let mut out = json!({ "certificate_pem": certificate_pem });
                    if let Some(key) = private_key_pem {
                        out["private_key_pem"] = Value::String(key.clone());
                    }
                    Ok(out)
                }
                _ => Err(ApiError::bad_request("item is not a certificate")),
            }
        })
    }

    pub(super) fn get_dynamic_secret_value(
        &mut self,
        req: GetDynamicSecretValueRequest,
    ) -> ApiResult<Value> {
        let name = required(&req.name, "name")?;
        self.with_item(&req.token, name, |item| {
            Self::expect_type(name, item, ItemType::DynamicSecret)?;
            match &item.body {
                ItemBody::Dynamic { template, ttl } => Ok(fresh_dynamic_value(template, *ttl)),
                _ => Err(ApiError::bad_request("item is not a dynamic secret")),
            }
        })
    }
}

/// The `Item` object of /describe-item.
fn describe(name: &str, item: &Item, show_versions: bool) -> Value {
    let item_type = item.item_type();
    let mut out = json!({
        "item_name": normalize_name(name),
        "item_id": item.id,
        "display_id": format!("emu-{}", item.id),
        "item_type": item_type.as_str(),
        "item_state": "Enabled",
        "is_enabled": true,
        "last_version": item.last_version(),
        "item_tags": [],
        "creation_date": rfc3339(item.created),
        "modification_date": rfc3339(item.modified),
        "with_customer_fragment": false,
    });
    if item_type == ItemType::StaticSecret {
        out["item_sub_type"] = json!("generic");
    }
    if show_versions {
        let versions: Vec<Value> = match &item.body {
            ItemBody::Versioned(versions) => versions
                .iter()
                .zip(1u32..)
                .map(|(v, n)| {
                    json!({
                        "version": n,
                        "item_version_state": "Enabled",
                        "creation_date": rfc3339(v.created),
                        "modification_date": rfc3339(v.created),
                        "with_customer_fragment": false,
                    })
                })
                .collect(),
            ItemBody::Dynamic { .. } | ItemBody::PkiIssuer { .. } => Vec::new(),
        };
        out["item_versions"] = Value::Array(versions);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::decode;

    #[test]
    fn decode_ignores_unknown_fields_and_rejects_wrong_types() {
        let body = json!({"names": ["/a"], "json": true, "extra": {"x": 1}});
        let req: GetSecretValueRequest = decode(&body).unwrap();
        assert_eq!(req.names.unwrap(), vec!["/a"]);

        let body = json!({"names": "/secret-name"});
        let Err(err) = decode::<GetSecretValueRequest>(&body) else {
            panic!("a string `names` must be rejected")
        };
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(!err.message.contains("secret-name"), "{}", err.message);

        let body = json!({"names": ["/a"], "ignore-cache": true});
        assert!(decode::<GetSecretValueRequest>(&body).is_err());
    }
}
