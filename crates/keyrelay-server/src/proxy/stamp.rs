//! Putting a connection's credentials on a request, by the provider's
//! `auth_injection` (HTTP Basic for `basic` providers, an OAuth 1.0a
//! signature for `oauth1` ones).
//!
//! The work is split in two so that the hot path does almost none of it:
//! [`plan`] builds the exact header value (or query pair, or signer) once
//! per cached connection, and [`Stamp::apply`] only inserts it on each
//! request, or, for OAuth 1.0a, signs that request.

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use keyrelay_catalog::AuthInjection;
use keyrelay_oauth::oauth1::{Oauth1Signer, SigningParams};
use keyrelay_vault::ClientSecret;
use zeroize::Zeroizing;

use crate::proxy::error::ProxyError;
use crate::services::credentials::Credentials;
use crate::services::integrations::IntegrationView;
use crate::services::oauth1::signer_from;

/// A credential ready to put on a request. It holds the secret, so it has
/// no `Debug`; header values are marked sensitive, and the query pair is
/// wiped when dropped.
pub enum Stamp {
    Header(HeaderName, HeaderValue),
    /// The encoded `name=value` pair appended to the query.
    Query(Zeroizing<String>),
    /// Signs each request with the consumer's key and the access token
    /// (boxed: it is large, and the other stamps are the common case).
    Oauth1(Box<Oauth1Signer>),
}

fn value(text: &str) -> Result<HeaderValue, ProxyError> {
    let mut v = HeaderValue::from_str(text)
        .map_err(|_| internal("the stored credential cannot be sent in a header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

fn internal(message: String) -> ProxyError {
    ProxyError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
}

/// How `creds` go on requests to the provider of `view`; `consumer_secret`
/// is the integration's client secret, needed for OAuth 1.0a only.
pub fn plan(
    view: &IntegrationView,
    creds: &Credentials,
    consumer_secret: Option<ClientSecret>,
) -> Result<Stamp, ProxyError> {
    let def = &view.definition;
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
        Credentials::OAuth1 {
            token,
            token_secret,
            ..
        } => {
            let signer = signer_from(view, consumer_secret)?
                .with_token(token.expose_secret(), token_secret.clone());
            return Ok(Stamp::Oauth1(Box::new(signer)));
        }
    };
    match def.auth_injection() {
        AuthInjection::Bearer => {
            let text = Zeroizing::new(format!("Bearer {secret}"));
            Ok(Stamp::Header(header::AUTHORIZATION, value(&text)?))
        }
        AuthInjection::Header { name, format } => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                internal("the provider's auth_injection header name is invalid".into())
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
    /// `form_body` is the whole body when it is form-encoded, which an
    /// OAuth 1.0a signature covers.
    pub fn apply(
        &self,
        method: &Method,
        headers: &mut HeaderMap,
        uri: Uri,
        form_body: Option<&[u8]>,
    ) -> Result<Uri, ProxyError> {
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
            Stamp::Oauth1(signer) => sign(signer, method, headers, uri, form_body),
        }
    }
}

/// Signs one request (RFC 5849 §3.4) and sets its `Authorization` header.
///
/// The signature covers the URL as the `url` crate normalises it, so that
/// URL is what gets sent: it differs from the caller's only where a
/// character the caller left raw must be percent-encoded, and a provider
/// recomputing the signature from what it receives then agrees with it.
fn sign(
    signer: &Oauth1Signer,
    method: &Method,
    headers: &mut HeaderMap,
    uri: Uri,
    form_body: Option<&[u8]>,
) -> Result<Uri, ProxyError> {
    let sent = uri.to_string();
    let url = url::Url::parse(&sent)
        .map_err(|_| ProxyError::target("the target URL cannot be signed"))?;
    let params = SigningParams::generate().map_err(|e| internal(e.to_string()))?;
    let signed = signer
        .authorization_header(method.as_str(), url.as_str(), form_body, &[], &params)
        .map_err(|e| {
            ProxyError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("this request cannot be signed with OAuth 1.0a: {e}"),
            )
        })?;
    headers.insert(header::AUTHORIZATION, value(signed.expose_secret())?);
    if url.as_str() == sent {
        return Ok(uri);
    }
    url.as_str()
        .parse()
        .map_err(|_| ProxyError::target("the target URL cannot be signed"))
}
