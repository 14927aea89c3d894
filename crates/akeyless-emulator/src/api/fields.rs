//! The request fields each command accepts (Akeyless's published schema); any other field
//! is refused with 400.

use serde_json::Value;

use super::error::{ApiError, ApiResult, Command};

/// The request fields Akeyless's published schema accepts for `command` (with the fields later
/// schemas added: `uid-token` on `/auth`), as `tests/contract.rs` checks against
/// `tests/data/akeyless-api-subset.json`. Any other field is refused with 400, so a client
/// that misspells a field fails here instead of being silently ignored by a real gateway.
/// `None`: a command the schema file does not cover (`/validate-token`), not checked.
pub fn accepted_request_fields(path: &str) -> Option<&'static [&'static str]> {
    let command = Command::from_path(path)?;
    command.accepted_fields()
}

impl Command {
    fn accepted_fields(self) -> Option<&'static [&'static str]> {
        match self {
            Command::Auth => Some(AUTH_FIELDS),
            Command::DescribeItem => Some(DESCRIBE_ITEM_FIELDS),
            Command::GetSecretValue => Some(GET_SECRET_VALUE_FIELDS),
            Command::GetRotatedSecretValue => Some(GET_ROTATED_SECRET_VALUE_FIELDS),
            Command::GetDynamicSecretValue => Some(GET_DYNAMIC_SECRET_VALUE_FIELDS),
            Command::GetCertificateValue => Some(GET_CERTIFICATE_VALUE_FIELDS),
            Command::GetPkiCertificate => Some(GET_PKI_CERTIFICATE_FIELDS),
            Command::UidRotateToken => Some(UID_ROTATE_TOKEN_FIELDS),
            Command::ValidateToken => None,
        }
    }
}

const AUTH_FIELDS: &[&str] = &[
    "access-id",
    "access-key",
    "access-type",
    "account-id",
    "admin-email",
    "admin-password",
    "cert-data",
    "cloud-id",
    "debug",
    "gateway-url",
    "gcp-audience",
    "json",
    "jwt",
    "k8s-auth-config-name",
    "k8s-service-account-token",
    "key-data",
    "ldap_password",
    "ldap_username",
    "oci-auth-type",
    "oci-group-ocid",
    "uid-token",
    "uid_token",
];

const DESCRIBE_ITEM_FIELDS: &[&str] = &[
    "accessibility",
    "bastion-details",
    "display-id",
    "gateway-details",
    "item-id",
    "json",
    "name",
    "services-details",
    "show-versions",
    "token",
    "uid-token",
];

const GET_SECRET_VALUE_FIELDS: &[&str] = &[
    "accessibility",
    "ignore-cache",
    "json",
    "names",
    "pretty-print",
    "token",
    "uid-token",
    "version",
];

const GET_ROTATED_SECRET_VALUE_FIELDS: &[&str] = &[
    "host",
    "ignore-cache",
    "json",
    "names",
    "token",
    "uid-token",
    "version",
];

const GET_DYNAMIC_SECRET_VALUE_FIELDS: &[&str] = &[
    "args",
    "host",
    "json",
    "name",
    "target",
    "timeout",
    "token",
    "uid-token",
];

const GET_CERTIFICATE_VALUE_FIELDS: &[&str] = &[
    "cert-issuer-name",
    "display-id",
    "ignore-cache",
    "issuance-token",
    "json",
    "name",
    "token",
    "uid-token",
    "version",
];

const GET_PKI_CERTIFICATE_FIELDS: &[&str] = &[
    "alt-names",
    "cert-issuer-name",
    "common-name",
    "csr-data-base64",
    "extended-key-usage",
    "extra-extensions",
    "json",
    "key-data-base64",
    "token",
    "ttl",
    "uid-token",
    "uri-sans",
];

const UID_ROTATE_TOKEN_FIELDS: &[&str] = &[
    "fork",
    "json",
    "send-manual-ack-token",
    "uid-token",
    "with-manual-ack",
];

/// 400 for a field the schema does not accept (see [`accepted_request_fields`]).
pub(super) fn check_fields(command: Command, body: &Value) -> ApiResult<()> {
    let (Some(accepted), Some(fields)) = (command.accepted_fields(), body.as_object()) else {
        return Ok(());
    };
    match fields.keys().find(|k| !accepted.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(format!(
            "invalid request body: unknown field {unknown:?}"
        ))),
        None => Ok(()),
    }
}
