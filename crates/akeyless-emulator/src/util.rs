//! Small helpers shared by the emulator modules: randomness, time formatting and item names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::{Rng, distr::Alphanumeric};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

/// `n` random bytes as lowercase hex (`2 * n` characters).
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(bytes.as_mut_slice());
    hex::encode(bytes)
}

/// A random `[A-Za-z0-9]` string of `len` characters.
pub(crate) fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Seconds since the Unix epoch (negative before 1970, which only a broken clock produces).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Whole seconds from `now` until `t`, 0 once `t` has passed.
pub(crate) fn secs_until(t: SystemTime, now: SystemTime) -> u64 {
    t.duration_since(now).map(|d| d.as_secs()).unwrap_or(0)
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn add_saturating(now: SystemTime, d: Duration) -> SystemTime {
    now.checked_add(d)
        .unwrap_or_else(|| UNIX_EPOCH + Duration::from_secs(253_402_300_799)) // 9999-12-31T23:59:59Z
}

/// RFC 3339 text of `t` (the emulator only formats instants it made itself).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    // Second precision, as Akeyless answers.
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".into())
}

/// The instant an RFC 3339 text names; `None` when it isn't one.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// Akeyless item names are absolute paths; `secret` and `/secret` name the same item.
pub(crate) fn normalize_name(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

/// `{"error": message}` with `status`, the shape of every Akeyless error.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_718_618_400);
        assert_eq!(rfc3339(t), "2024-06-17T10:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_825_599);
        assert_eq!(rfc3339(leap), "2000-02-29T11:59:59Z");
    }

    #[test]
    fn names_are_absolute() {
        assert_eq!(normalize_name("a/b"), "/a/b");
        assert_eq!(normalize_name("/a/b"), "/a/b");
    }

    #[test]
    fn random_helpers_have_expected_shape() {
        let h = random_hex(16);
        assert_eq!(h.len(), 32);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(h, random_hex(16));
        let a = random_alphanumeric(20);
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
