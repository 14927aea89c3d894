//! The item endpoints: an item's type, and the values of each kind of item.

use base64::Engine;

use super::api::*;
use super::{AkeylessClient, AkeylessToken, BackendError, Operation};
use crate::secret::{ExposeSecret, SecretString};

/// A certificate as Akeyless returns it.
pub struct CertificateValue {
    pub certificate_pem: String,
    pub private_key_pem: Option<SecretString>,
}

/// A certificate issued for our CSR.
pub struct IssuedCertificate {
    pub certificate_pem: String,
    pub issuer_pem: Option<String>,
}

impl AkeylessClient {
    /// `POST /describe-item`: the item's type and latest version.
    pub async fn describe_item(
        &self,
        token: &AkeylessToken,
        name: &str,
    ) -> Result<DescribeItemResponse, BackendError> {
        let request = DescribeItemRequest {
            name,
            token: token.token.expose_secret(),
        };
        self.call(Operation::DescribeItem, &request).await
    }

    /// `POST /get-secret-value`: the values of static secrets `names` at `version`
    /// (latest when `None`), by name. Non-string values are returned as their JSON text.
    pub async fn get_secret_values(
        &self,
        token: &AkeylessToken,
        names: &[String],
        version: Option<u32>,
    ) -> Result<Vec<(String, SecretString)>, BackendError> {
        let request = GetSecretValueRequest {
            names,
            version,
            ignore_cache: self.ignore_cache_field(),
            token: token.token.expose_secret(),
        };
        let values: serde_json::Map<String, serde_json::Value> =
            self.call(Operation::GetSecretValue, &request).await?;
        let gateway = self.gateways.first().cloned().unwrap_or_default();
        names
            .iter()
            .map(|name| match values.get(name) {
                Some(serde_json::Value::String(s)) => {
                    Ok((name.clone(), SecretString::from(s.clone())))
                }
                Some(other) => Ok((name.clone(), SecretString::from(other.to_string()))),
                None => Err(BackendError::BadResponse {
                    op: Operation::GetSecretValue,
                    gateway: gateway.clone(),
                    detail: format!("the answer holds no value for item {name}"),
                }),
            })
            .collect()
    }

    /// `POST /get-rotated-secret-value`: the rotated value object, as JSON text.
    pub async fn get_rotated_secret_value(
        &self,
        token: &AkeylessToken,
        name: &str,
        version: Option<u32>,
    ) -> Result<SecretString, BackendError> {
        let request = GetRotatedSecretValueRequest {
            names: name,
            version,
            ignore_cache: self.ignore_cache_field(),
            token: token.token.expose_secret(),
        };
        let mut answer: serde_json::Map<String, serde_json::Value> = self
            .call(Operation::GetRotatedSecretValue, &request)
            .await?;
        let value = answer.remove("value").ok_or_else(|| {
            self.bad_response(
                Operation::GetRotatedSecretValue,
                "the answer has no value field",
            )
        })?;
        Ok(SecretString::from(value.to_string()))
    }

    /// `POST /get-certificate-value`: the certificate (chain) and, when stored, its key.
    pub async fn get_certificate_value(
        &self,
        token: &AkeylessToken,
        name: &str,
        version: Option<u32>,
    ) -> Result<CertificateValue, BackendError> {
        let request = GetCertificateValueRequest {
            name,
            version,
            ignore_cache: self.ignore_cache_field(),
            token: token.token.expose_secret(),
        };
        let answer: CertificateValueResponse =
            self.call(Operation::GetCertificateValue, &request).await?;
        let certificate_pem = answer
            .certificate_pem
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                self.bad_response(
                    Operation::GetCertificateValue,
                    "the answer has no certificate_pem",
                )
            })?;
        Ok(CertificateValue {
            certificate_pem,
            private_key_pem: answer
                .private_key_pem
                .filter(|k| !k.expose_secret().trim().is_empty()),
        })
    }

    /// `POST /get-dynamic-secret-value`: a new credential, as JSON text.
    pub async fn get_dynamic_secret_value(
        &self,
        token: &AkeylessToken,
        name: &str,
        args: &[String],
    ) -> Result<SecretString, BackendError> {
        let request = GetDynamicSecretValueRequest {
            name,
            args,
            token: token.token.expose_secret(),
        };
        let answer: serde_json::Value = self
            .call(Operation::GetDynamicSecretValue, &request)
            .await?;
        Ok(SecretString::from(match answer {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }))
    }

    /// `POST /get-pki-certificate`: signs `csr_der` with issuer `issuer`.
    pub async fn get_pki_certificate(
        &self,
        token: &AkeylessToken,
        issuer: &str,
        csr_pem: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<IssuedCertificate, BackendError> {
        let request = GetPkiCertificateRequest {
            cert_issuer_name: issuer,
            csr_data_base64: base64::engine::general_purpose::STANDARD.encode(csr_pem),
            ttl: ttl_seconds.map(|t| t.to_string()),
            token: token.token.expose_secret(),
        };
        let answer: PkiCertificateResponse =
            self.call(Operation::GetPkiCertificate, &request).await?;
        let certificate_pem = answer
            .data
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                self.bad_response(
                    Operation::GetPkiCertificate,
                    "the answer has no certificate (data)",
                )
            })?;
        Ok(IssuedCertificate {
            certificate_pem,
            issuer_pem: answer.parent_cert.filter(|c| !c.trim().is_empty()),
        })
    }

    fn ignore_cache_field(&self) -> Option<&'static str> {
        self.ignore_cache.then_some("true")
    }
}
