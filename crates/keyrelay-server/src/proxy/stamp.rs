//! Putting a connection's credentials on a request, by the provider's
//! `auth_injection` (or HTTP Basic for `basic` providers).

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use keyrelay_catalog::{AuthInjection, ProviderDefinition};

use crate::proxy::error::ProxyError;
use crate::services::credentials::Credentials;

fn value(text: &str) -> Result<HeaderValue, ProxyError> {
    let mut v = HeaderValue::from_str(text).map_err(|_| {
        ProxyError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the stored credential cannot be sent in a header",
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Stamps `creds` on the request; returns the URI (changed for query injection).
pub fn stamp(
    def: &ProviderDefinition,
    creds: &Credentials,
    headers: &mut HeaderMap,
    uri: Uri,
) -> Result<Uri, ProxyError> {
    let secret = match creds {
        Credentials::Basic { username, password } => {
            let raw = format!("{username}:{}", password.expose_secret());
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
            headers.insert(header::AUTHORIZATION, value(&format!("Basic {encoded}"))?);
            return Ok(uri);
        }
        Credentials::OAuth2 { access_token, .. } => access_token.expose_secret(),
        Credentials::ApiKey { api_key } => api_key.expose_secret(),
        Credentials::OAuth1 { .. } => {
            return Err(ProxyError::new(
                http::StatusCode::NOT_IMPLEMENTED,
                "not_supported",
                "signing OAuth 1.0a requests is not available in this version",
            ));
        }
    };
    match def.auth_injection() {
        AuthInjection::Bearer => {
            headers.insert(header::AUTHORIZATION, value(&format!("Bearer {secret}"))?);
            Ok(uri)
        }
        AuthInjection::Header { name, format } => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ProxyError::new(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the provider's auth_injection header name is invalid",
                )
            })?;
            let text = format
                .as_deref()
                .unwrap_or("{api_key}")
                .replace("{api_key}", secret)
                .replace("{access_token}", secret);
            headers.insert(name, value(&text)?);
            Ok(uri)
        }
        AuthInjection::Query { name } => {
            let pair: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(&name, secret)
                .finish();
            let path = uri.path();
            let text = match uri.query() {
                Some(q) if !q.is_empty() => format!("{path}?{q}&{pair}"),
                _ => format!("{path}?{pair}"),
            };
            let mut parts = uri.into_parts();
            parts.path_and_query = Some(
                text.parse()
                    .map_err(|_| ProxyError::target("the query cannot carry the credential"))?,
            );
            Uri::from_parts(parts)
                .map_err(|_| ProxyError::target("the query cannot carry the credential"))
        }
    }
}
