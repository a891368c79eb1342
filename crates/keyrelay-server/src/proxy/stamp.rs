//! Putting a connection's credentials on a request, by the provider's
//! `auth_injection` (or HTTP Basic for `basic` providers).
//!
//! The work is split in two so that the hot path does almost none of it:
//! [`plan`] builds the exact header value (or query pair) once per cached
//! connection, and [`Stamp::apply`] only inserts it on each request.

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use keyrelay_catalog::{AuthInjection, ProviderDefinition};
use zeroize::Zeroizing;

use crate::proxy::error::ProxyError;
use crate::services::credentials::Credentials;

/// A credential ready to put on a request. It holds the secret, so it has
/// no `Debug`; header values are marked sensitive, and the query pair is
/// wiped when dropped.
pub enum Stamp {
    Header(HeaderName, HeaderValue),
    /// The encoded `name=value` pair appended to the query.
    Query(Zeroizing<String>),
}

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

/// How `creds` go on requests to the provider `def`.
pub fn plan(def: &ProviderDefinition, creds: &Credentials) -> Result<Stamp, ProxyError> {
    let secret = match creds {
        Credentials::Basic { username, password } => {
            let raw = Zeroizing::new(format!("{username}:{}", password.expose_secret()));
            let encoded =
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()));
            let text = Zeroizing::new(format!("Basic {}", encoded.as_str()));
            return Ok(Stamp::Header(header::AUTHORIZATION, value(&text)?));
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
            let text = Zeroizing::new(format!("Bearer {secret}"));
            Ok(Stamp::Header(header::AUTHORIZATION, value(&text)?))
        }
        AuthInjection::Header { name, format } => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ProxyError::new(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the provider's auth_injection header name is invalid",
                )
            })?;
            let text = Zeroizing::new(
                format
                    .as_deref()
                    .unwrap_or("{api_key}")
                    .replace("{api_key}", secret)
                    .replace("{access_token}", secret),
            );
            Ok(Stamp::Header(name, value(&text)?))
        }
        AuthInjection::Query { name } => Ok(Stamp::Query(Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair(&name, secret)
                .finish(),
        ))),
    }
}

impl Stamp {
    /// Stamps the request; returns the URI (changed for query injection).
    pub fn apply(&self, headers: &mut HeaderMap, uri: Uri) -> Result<Uri, ProxyError> {
        match self {
            Stamp::Header(name, value) => {
                headers.insert(name.clone(), value.clone());
                Ok(uri)
            }
            Stamp::Query(pair) => {
                let path = uri.path();
                let text = Zeroizing::new(match uri.query() {
                    Some(q) if !q.is_empty() => format!("{path}?{q}&{}", pair.as_str()),
                    _ => format!("{path}?{}", pair.as_str()),
                });
                let mut parts = uri.into_parts();
                parts.path_and_query =
                    Some(text.parse().map_err(|_| {
                        ProxyError::target("the query cannot carry the credential")
                    })?);
                Uri::from_parts(parts)
                    .map_err(|_| ProxyError::target("the query cannot carry the credential"))
            }
        }
    }
}
