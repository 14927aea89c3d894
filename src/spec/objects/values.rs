//! The scalar values of an `objects` entry: modes, versions, arguments, lists, durations.

use std::time::Duration;

use serde_yaml_ng::Value;

pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses a mode: an octal string ("0400", "400", "0o400") or a decimal integer (256).
pub(crate) fn parse_mode(v: &Value) -> Result<u32, String> {
    let mode = match v {
        Value::String(s) => {
            let digits = s.trim();
            let digits = digits.strip_prefix("0o").unwrap_or(digits);
            u32::from_str_radix(digits, 8).map_err(|_| {
                format!("{s:?} is not an octal mode; write it like \"0644\" or \"0400\"")
            })?
        }
        Value::Number(n) => match n.as_u64() {
            Some(m) if m <= 0o777 => m as u32,
            _ => {
                return Err(format!(
                    "{n} is not a mode: an integer is read as decimal (0 to 511); \
                     write octal modes as a string, e.g. \"0644\""
                ));
            }
        },
        _ => return Err("must be an octal string like \"0644\" or a decimal integer".into()),
    };
    if mode > 0o777 {
        return Err(format!(
            "{mode:o} is larger than 0777; only permission bits can be set"
        ));
    }
    Ok(mode)
}

pub(super) fn parse_version(v: &Value) -> Result<u32, String> {
    let text = scalar_text(v).ok_or("must be a positive integer")?;
    match text.trim().parse::<i64>() {
        // Akeyless's `version` is an int32.
        Ok(n) if n >= 1 && n <= i64::from(i32::MAX) => Ok(n as u32),
        _ => Err(format!(
            "{text:?} is not a version: use a positive integer, or leave it out for the latest"
        )),
    }
}

pub(super) fn parse_args(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(vec![]),
        // The existing provider documents a map; Akeyless's API wants "key=value" strings.
        Value::Mapping(m) => {
            let mut args = Vec::new();
            for (k, val) in m {
                let k = scalar_text(k).ok_or("keys must be strings")?;
                let val = match val {
                    Value::Null => String::new(),
                    other => scalar_text(other)
                        .or_else(|| serde_json::to_string(other).ok())
                        .unwrap_or_default(),
                };
                args.push(format!("{k}={val}"));
            }
            args.sort();
            Ok(args)
        }
        Value::Sequence(items) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| "list items must be strings".to_string()))
            .collect(),
        Value::String(s) => Ok(vec![s.clone()]),
        _ => Err("must be a map of arguments or a list of \"key=value\" strings".into()),
    }
}

/// A list of strings, or one comma-separated string.
pub(super) fn parse_string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()),
        Value::Sequence(items) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| "list items must be strings".to_string()))
            .collect(),
        _ => Err("must be a list of strings".into()),
    }
}

/// Parses durations like `110s`, `30m`, `500ms`, `1h`, `1.5h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 15m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || !(0.0..=10.0 * 365.0 * 86400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub(super) fn parse_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

pub(super) fn default_file_name(secret_path: &str) -> String {
    secret_path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(secret_path)
        .to_string()
}
