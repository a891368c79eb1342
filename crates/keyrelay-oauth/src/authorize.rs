//! The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).

use std::collections::BTreeMap;

use url::Url;

use crate::error::OAuthError;

/// Everything needed to send the user to the provider's consent page.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationRequest<'a> {
    /// The provider's authorization endpoint, placeholders already substituted.
    pub authorization_endpoint: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    /// How scopes are joined (`" "` per RFC 6749 §3.3; some providers use
    /// `","`). An empty separator means `" "`.
    pub scope_separator: &'a str,
    pub state: &'a str,
    /// The PKCE `S256` challenge, when PKCE is used.
    pub code_challenge: Option<&'a str>,
    /// The provider's extra `authorization_params`.
    pub extra_params: &'a BTreeMap<String, String>,
}

/// Parses an endpoint: an absolute `http`/`https` URL with a host.
pub(crate) fn parse_endpoint(endpoint: &str, what: &str) -> Result<Url, OAuthError> {
    let url = Url::parse(endpoint.trim())
        .map_err(|e| OAuthError::InvalidUrl(format!("{what} is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OAuthError::InvalidUrl(format!(
            "{what} must be an http or https URL"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(OAuthError::InvalidUrl(format!("{what} has no host")));
    }
    Ok(url)
}

pub(crate) fn join_scopes(scopes: &[String], separator: &str) -> String {
    let separator = if separator.is_empty() { " " } else { separator };
    scopes.join(separator)
}

/// The URL to redirect the user's browser to.
///
/// Keeps any query the endpoint already has and appends, form-urlencoded:
/// `response_type=code`, `client_id`, `redirect_uri`, `scope` (the scopes
/// joined with the separator; omitted when there are none), `state`, and
/// `code_challenge` + `code_challenge_method=S256` when a challenge is given;
/// then the extra params in key order.
///
/// No parameter appears twice (RFC 6749 §3.1) and the standard ones always
/// win: a standard parameter already in the endpoint's query is removed, and
/// an extra param is skipped when its name is one this function sets (so
/// `state`, `redirect_uri`, … cannot be overridden) or is already in the
/// endpoint's query. An extra `scope` is only used when no scopes are given.
///
/// Fails when the endpoint is not an absolute `http(s)` URL or has a fragment
/// (forbidden by RFC 6749 §3.1).
pub fn authorization_url(req: &AuthorizationRequest<'_>) -> Result<Url, OAuthError> {
    let mut url = parse_endpoint(req.authorization_endpoint, "authorization endpoint")?;
    if url.fragment().is_some() {
        return Err(OAuthError::InvalidUrl(
            "authorization endpoint must not have a fragment".into(),
        ));
    }

    let scope = (!req.scopes.is_empty()).then(|| join_scopes(req.scopes, req.scope_separator));
    let mut standard: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", req.client_id),
        ("redirect_uri", req.redirect_uri),
    ];
    if let Some(scope) = scope.as_deref() {
        standard.push(("scope", scope));
    }
    standard.push(("state", req.state));
    if let Some(challenge) = req.code_challenge {
        standard.push(("code_challenge", challenge));
        standard.push(("code_challenge_method", "S256"));
    }
    let is_standard = |k: &str| standard.iter().any(|(name, _)| *name == k);

    // Existing query pairs; rewritten only when one of them must go, so an
    // endpoint's own encoding is otherwise left untouched.
    let existing: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if existing.iter().any(|(k, _)| is_standard(k)) {
        url.set_query(None);
        let mut q = url.query_pairs_mut();
        for (k, v) in existing.iter().filter(|(k, _)| !is_standard(k)) {
            q.append_pair(k, v);
        }
    }

    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &standard {
            q.append_pair(k, v);
        }
        for (k, v) in req.extra_params {
            if is_standard(k) || existing.iter().any(|(e, _)| e == k) {
                continue;
            }
            q.append_pair(k, v);
        }
    }
    Ok(url)
}
