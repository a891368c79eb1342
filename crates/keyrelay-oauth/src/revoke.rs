//! Token revocation (RFC 7009) and introspection (RFC 7662).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::OAuthError;
use crate::lenient;
use crate::token::{ClientCredentials, FormRequest, form_request};

/// A revocation request (RFC 7009 §2.1) for `token`, with `token_type_hint`
/// `"refresh_token"` or `"access_token"`, authenticated like token requests.
///
/// Revoking a refresh token normally revokes its access tokens too. The
/// server treats any 200 as success (§2.2), including for unknown tokens.
pub fn revocation_request(
    endpoint: &str,
    token: &str,
    token_type_hint: &'static str,
    client: &ClientCredentials<'_>,
) -> FormRequest {
    form_request(
        endpoint,
        &[("token", token), ("token_type_hint", token_type_hint)],
        client,
        &BTreeMap::new(),
    )
}

/// An introspection request (RFC 7662 §2.1) for an access token.
pub fn introspection_request(
    endpoint: &str,
    token: &str,
    client: &ClientCredentials<'_>,
) -> FormRequest {
    form_request(
        endpoint,
        &[("token", token), ("token_type_hint", "access_token")],
        client,
        &BTreeMap::new(),
    )
}

/// The parts of an introspection reply (RFC 7662 §2.2) keyrelay uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    pub scope: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: Option<i64>,
    pub sub: Option<String>,
    pub client_id: Option<String>,
}

/// Parses an introspection reply.
///
/// `active` is required (a boolean, or leniently `"true"`/`"false"`); `exp`
/// may be a number or a numeric string; other fields are read only when they
/// are strings. An OAuth error reply (`{"error": …}`) is refused.
pub fn parse_introspection(body: &[u8]) -> Result<Introspection, OAuthError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| OAuthError::Introspection("reply is not valid JSON".into()))?;
    let Value::Object(obj) = value else {
        return Err(OAuthError::Introspection(
            "reply is not a JSON object".into(),
        ));
    };
    if let Some(error) = obj.get("error").and_then(lenient::non_empty_str) {
        return Err(OAuthError::Introspection(format!(
            "endpoint returned OAuth error `{}`",
            lenient::sanitize(error, 100)
        )));
    }
    let active = obj
        .get("active")
        .and_then(lenient::boolean)
        .ok_or_else(|| OAuthError::Introspection("reply has no boolean `active`".into()))?;
    let string = |obj: &Map<String, Value>, k: &str| {
        obj.get(k)
            .and_then(lenient::non_empty_str)
            .map(str::to_owned)
    };
    Ok(Introspection {
        active,
        scope: string(&obj, "scope"),
        exp: obj.get("exp").and_then(lenient::int),
        sub: string(&obj, "sub"),
        client_id: string(&obj, "client_id"),
    })
}
