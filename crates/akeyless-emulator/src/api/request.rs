//! Decoding request bodies like a Go gateway does, and the field checks every command shares.
//!
//! Request bodies are typed structs beside their commands. Optional fields are `Option`s so the
//! handler picks the 400 message for required ones; fields that exist only to be type-checked
//! are marked.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// Decodes a typed request like Go's `encoding/json` would: unknown fields are ignored, a
/// field of the wrong JSON type is a 400.
pub(super) fn decode<T: DeserializeOwned>(body: &Value) -> ApiResult<T> {
    T::deserialize(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid request body: {}",
            redact_serde_error(&e.to_string())
        ))
    })
}

/// serde quotes the offending value (`invalid type: string "hunter2", expected ...`), which
/// could be a secret; keep only its JSON type.
pub(crate) fn redact_serde_error(message: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            let kind_end = rest.find([' ', ',']).unwrap_or(rest.len());
            let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
            return format!(
                "{}{marker}{}{expected}",
                &message[..start],
                &rest[..kind_end]
            );
        }
    }
    message.to_owned()
}

pub(super) fn required<'a>(value: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    non_empty(value).ok_or_else(|| ApiError::bad_request(format!("{field} is required")))
}

/// `version`: absent or 0 means latest. Negative N means "the last N versions" in Akeyless,
/// but that response shape is undocumented, so the emulator refuses it rather than guess.
pub(super) fn requested_version(version: Option<i32>) -> ApiResult<u32> {
    match version {
        None => Ok(0),
        Some(v) => u32::try_from(v).map_err(|_| {
            ApiError::bad_request(
                "negative version (last N versions) is not supported by the emulator",
            )
        }),
    }
}

pub(super) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_errors_are_redacted() {
        assert_eq!(
            redact_serde_error(r#"invalid type: string "hunter2", expected a sequence"#),
            "invalid type: string, expected a sequence"
        );
        assert_eq!(
            redact_serde_error("invalid type: integer `42`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            redact_serde_error("invalid value: integer `-5000000000`, expected i32"),
            "invalid value: integer, expected i32"
        );
        assert_eq!(redact_serde_error("missing field `x`"), "missing field `x`");
    }
}
