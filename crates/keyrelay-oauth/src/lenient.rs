//! Lenient readers of JSON values, shared by the reply parsers.

use serde_json::Value;

/// A non-negative integer from a number (integer or float) or a numeric
/// string; `None` for anything else, negatives, NaN or an empty string.
pub(crate) fn non_negative_int(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(u)
            } else {
                n.as_f64().and_then(float_to_u64)
            }
        }
        Value::String(s) => {
            let s = s.trim();
            if let Ok(u) = s.parse::<u64>() {
                Some(u)
            } else {
                s.parse::<f64>().ok().and_then(float_to_u64)
            }
        }
        _ => None,
    }
}

/// A signed integer (e.g. a Unix time) from a number or a numeric string.
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(float_to_i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(float_to_i64))
        }
        _ => None,
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn float_to_u64(f: f64) -> Option<u64> {
    // `as` saturates, so huge values become u64::MAX instead of wrapping.
    (f.is_finite() && f >= 0.0).then_some(f as u64)
}

#[allow(clippy::cast_possible_truncation)]
fn float_to_i64(f: f64) -> Option<i64> {
    f.is_finite().then_some(f as i64)
}

/// A non-empty string; other JSON types are not accepted (a token or code is
/// never a number).
pub(crate) fn non_empty_str(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    }
}

/// A boolean from `true`/`false` or the strings `"true"`/`"false"`.
pub(crate) fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A provider-supplied string made safe for an error message: control
/// characters replaced and the length bounded (by characters).
pub(crate) fn sanitize(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}
