//! Input checks shared by services, each failing with a message that says
//! what was wrong and what is accepted.

use crate::error::{ServiceError, ServiceResult};

/// A project name: 1–100 characters, not only whitespace, no control characters.
pub fn project_name(name: &str) -> ServiceResult<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(ServiceError::invalid(
            "invalid_request",
            "name: must be 1-100 characters without control characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// An integration key: it appears in URL paths and headers, so 1–64 of
/// `A-Z a-z 0-9 _ . -`, starting with a letter or digit.
pub fn integration_key(key: &str) -> ServiceResult<()> {
    let valid = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "invalid_request",
            format!(
                "key: {key:?} is not a valid integration key; use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
        ))
    }
}

/// An absolute http(s) URL without credentials or fragment, such as a
/// redirect URL or webhook URL.
pub fn http_url(field: &str, value: &str) -> ServiceResult<String> {
    let parsed = url::Url::parse(value).map_err(|e| {
        ServiceError::invalid(
            "invalid_request",
            format!("{field}: {value:?} is not an absolute URL ({e})"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ServiceError::invalid(
            "invalid_request",
            format!("{field}: only http and https URLs are accepted (got {value:?})"),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ServiceError::invalid(
            "invalid_request",
            format!("{field}: URLs must not carry a user name or password"),
        ));
    }
    if parsed.fragment().is_some() {
        return Err(ServiceError::invalid(
            "invalid_request",
            format!("{field}: URLs must not have a #fragment"),
        ));
    }
    Ok(value.to_string())
}

/// Scopes: non-empty strings without whitespace, at most 200 of them.
pub fn scopes(scopes: &[String]) -> ServiceResult<()> {
    if scopes.len() > 200 {
        return Err(ServiceError::invalid(
            "invalid_request",
            "scopes: at most 200 scopes are accepted",
        ));
    }
    for scope in scopes {
        if scope.is_empty() || scope.len() > 512 || scope.chars().any(char::is_whitespace) {
            return Err(ServiceError::invalid(
                "invalid_request",
                format!("scopes: {scope:?} is not a valid scope (non-empty, no whitespace)"),
            ));
        }
    }
    Ok(())
}
