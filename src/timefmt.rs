//! RFC 3339 timestamps, through the `time` crate. Timestamps come from gateways, cloud services
//! and certificates (untrusted), so both directions are total: an unparsable or out-of-range
//! value is `None`, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch (negative before it), saturating far outside any real date.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| s.saturating_neg()),
    }
}

/// RFC 3339 in UTC with second precision, e.g. `2024-06-17T10:00:00Z`; `None` for an instant
/// outside the years 1–9999.
pub fn rfc3339(t: SystemTime) -> Option<String> {
    rfc3339_from_unix(unix_seconds(t))
}

/// [`rfc3339`] of a Unix timestamp (certificate validity is given this way).
pub fn rfc3339_from_unix(seconds: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// Parses an RFC 3339 timestamp (`2024-06-17T10:00:00Z`, fractions and offsets accepted), the
/// form Akeyless, Kubernetes and the clouds use. `None` when it isn't one.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let parsed = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    let seconds = parsed.unix_timestamp();
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        for secs in [0u64, 951_825_599, 1_718_618_400, 4_102_444_800] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            let text = rfc3339(t).unwrap();
            assert_eq!(parse_rfc3339(&text), Some(t), "{text}");
        }
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_718_618_400)).as_deref(),
            Some("2024-06-17T10:00:00Z")
        );
        let base = parse_rfc3339("2024-06-17T10:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2024-06-17T12:00:00.123+02:00"), Some(base));
        assert_eq!(parse_rfc3339("2024-06-17T09:00:00-01:00"), Some(base));
        assert_eq!(parse_rfc3339(" 2024-06-17T10:00:00Z\n"), Some(base));
    }

    #[test]
    fn hostile_text_is_none_never_a_panic() {
        for bad in [
            "",
            "2024-06-17",
            "2024-13-01T00:00:00Z",
            "2024-06-17T10:00:00",
            "tomorrow",
            // A multi-byte character where the offset's digits belong (panicked the old parser).
            "2026-01-01T00:00:00+0é00",
            "2026-01-01T00:00:00é",
            "éééééééééééééééééééééééé",
            "9999999999-01-01T00:00:00Z",
            "2024-06-17T10:00:00+99:99",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(rfc3339_from_unix(i64::MAX), None);
        assert_eq!(rfc3339_from_unix(i64::MIN), None);
        assert!(rfc3339(UNIX_EPOCH + Duration::from_secs(u64::MAX / 4)).is_none());
    }
}
