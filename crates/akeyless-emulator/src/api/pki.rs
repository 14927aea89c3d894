//! `/get-pki-certificate`: the issuer item's CA signs the caller's CSR.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::call::Call;
use super::error::{ApiError, ApiResult};
use super::request::required;
use crate::items::{ItemBody, ItemType};
use crate::util::{normalize_name, random_hex};

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct GetPkiCertificateRequest {
    cert_issuer_name: Option<String>,
    csr_data_base64: Option<String>,
    /// Seconds, as a string in Akeyless's schema.
    ttl: Option<String>,
    token: Option<String>,
}

impl Call<'_> {
    pub(super) fn get_pki_certificate(
        &mut self,
        req: GetPkiCertificateRequest,
    ) -> ApiResult<Value> {
        let name = required(&req.cert_issuer_name, "cert-issuer-name")?;
        let csr_b64 = required(&req.csr_data_base64, "csr-data-base64")?;
        let requested_ttl = match req.ttl.as_deref() {
            None | Some("") => None,
            Some(t) => Some(
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| ApiError::bad_request("ttl must be a number of seconds"))?,
            ),
        };
        self.with_item(&req.token, name, |item| {
            Self::expect_type(name, item, ItemType::PkiCertIssuer)?;
            let ItemBody::PkiIssuer {
                ca_cert_pem,
                ca_key_pem,
                max_ttl,
            } = &item.body
            else {
                return Err(ApiError::bad_request(
                    "item is not a PKI certificate issuer",
                ));
            };
            let csr = STANDARD
                .decode(csr_b64.trim())
                .ok()
                .and_then(|der_or_pem| String::from_utf8(der_or_pem).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("csr-data-base64 is not base64 of a PEM CSR")
                })?;
            // Like Akeyless, a ttl beyond the issuer's max is refused, not shortened.
            let ttl = match requested_ttl.map(std::time::Duration::from_secs) {
                None => *max_ttl,
                Some(t) if t > *max_ttl => {
                    return Err(ApiError::bad_request(format!(
                        "requested ttl {}s exceeds the max ttl {}s of issuer {}",
                        t.as_secs(),
                        max_ttl.as_secs(),
                        normalize_name(name)
                    )));
                }
                Some(t) => t,
            };
            let cert = crate::pki::sign_csr(ca_cert_pem, ca_key_pem, &csr, ttl)
                .map_err(ApiError::bad_request)?;
            Ok(json!({
                "data": cert,
                "parent_cert": ca_cert_pem,
                "path": normalize_name(name),
                "cert_display_id": random_hex(8),
            }))
        })
    }
}
