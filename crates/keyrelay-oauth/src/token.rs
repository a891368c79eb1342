//! Token endpoint requests (RFC 6749 §4.1.3, §4.4.2, §6) and client
//! authentication (§2.3.1).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyrelay_catalog::TokenEndpointAuthMethod;
use keyrelay_vault::{AuthorizationCode, ClientSecret, PkceVerifier, RefreshToken};
use url::form_urlencoded;

use crate::authorize::join_scopes;

/// The provider app's credentials and how to present them.
#[derive(Debug, Clone, Copy)]
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a ClientSecret,
    pub method: TokenEndpointAuthMethod,
}

/// What is exchanged for a token.
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    /// RFC 6749 §4.1.3, with the PKCE verifier of RFC 7636 §4.5.
    AuthorizationCode {
        code: &'a AuthorizationCode,
        redirect_uri: &'a str,
        code_verifier: Option<&'a PkceVerifier>,
    },
    /// RFC 6749 §6; `scopes` narrows the grant when given and non-empty.
    RefreshToken {
        refresh_token: &'a RefreshToken,
        scopes: Option<&'a [String]>,
    },
    /// RFC 6749 §4.4.2; `scope` is sent when non-empty.
    ClientCredentials { scopes: &'a [String] },
}

impl Grant<'_> {
    fn grant_type(&self) -> &'static str {
        match self {
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::ClientCredentials { .. } => "client_credentials",
        }
    }
}

/// A `POST` with an `application/x-www-form-urlencoded` body, ready to send.
///
/// `headers` and `body` hold secrets (client secret, code, tokens): `Debug`
/// prints the URL and the header names only.
#[derive(Clone, PartialEq, Eq)]
pub struct FormRequest {
    pub url: String,
    /// `(name, value)`; always `Content-Type`. OAuth 2 requests add `Accept:
    /// application/json`, and `Authorization` with `client_secret_basic`;
    /// OAuth 1.0a requests add `Authorization: OAuth …`.
    pub headers: Vec<(&'static str, String)>,
    /// The form-urlencoded body.
    pub body: String,
}

impl FormRequest {
    /// The value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for FormRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("FormRequest")
            .field("url", &self.url)
            .field("headers", &names)
            .field(
                "body",
                &format_args!("[redacted; {} bytes]", self.body.len()),
            )
            .finish()
    }
}

/// Names an extra param may never take, whatever the request: the grant and
/// credential parameters.
const ALWAYS_RESERVED: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "token",
    "token_type_hint",
];

/// Builds a form request: `params` in order, the client authentication, then
/// the extra params that do not collide with a parameter already set or a
/// reserved name.
pub(crate) fn form_request(
    url: &str,
    params: &[(&str, &str)],
    client: &ClientCredentials<'_>,
    extra_params: &BTreeMap<String, String>,
) -> FormRequest {
    let mut headers: Vec<(&'static str, String)> = vec![
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("Accept", "application/json".to_owned()),
    ];
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    match client.method {
        TokenEndpointAuthMethod::ClientSecretBasic => {
            headers.push(("Authorization", basic_auth(client)));
        }
        TokenEndpointAuthMethod::ClientSecretPost => {
            form.append_pair("client_id", client.client_id);
            form.append_pair("client_secret", client.client_secret.expose_secret());
        }
    }
    for (k, v) in extra_params {
        let k = k.as_str();
        if ALWAYS_RESERVED.contains(&k) || params.iter().any(|(p, _)| *p == k) {
            continue;
        }
        form.append_pair(k, v);
    }
    FormRequest {
        url: url.to_owned(),
        headers,
        body: form.finish(),
    }
}

/// `Basic base64(urlencode(client_id) ":" urlencode(client_secret))`:
/// RFC 6749 §2.3.1 form-urlencodes both before the Basic encoding, so a `:`
/// in the id or secret cannot break the split.
fn basic_auth(client: &ClientCredentials<'_>) -> String {
    let id: String = form_urlencoded::byte_serialize(client.client_id.as_bytes()).collect();
    let secret: String =
        form_urlencoded::byte_serialize(client.client_secret.expose_secret().as_bytes()).collect();
    let mut pair = String::with_capacity(id.len() + 1 + secret.len());
    pair.push_str(&id);
    pair.push(':');
    pair.push_str(&secret);
    format!("Basic {}", STANDARD.encode(pair.as_bytes()))
}

/// A token endpoint request.
///
/// The body holds `grant_type` and the grant's fields (`code`,
/// `redirect_uri`, `code_verifier` / `refresh_token` / nothing), then `scope`
/// for the refresh (when scopes are given and non-empty) and client
/// credentials (when non-empty) grants, joined with `scope_separator` (empty
/// means `" "`).
///
/// Client authentication: `client_secret_basic` sends an `Authorization:
/// Basic` header and does not repeat `client_id` in the body;
/// `client_secret_post` puts `client_id` and `client_secret` in the body.
///
/// The provider's extra `token_params` come last, in key order, except those
/// named like a parameter this request already has or like a grant or
/// credential parameter (`grant_type`, `code`, `redirect_uri`,
/// `code_verifier`, `refresh_token`, `client_id`, `client_secret`, …), which
/// are skipped. So a provider may add a `scope` to the code exchange, but never
/// override what keyrelay sends.
pub fn token_request(
    token_endpoint: &str,
    grant: &Grant<'_>,
    client: &ClientCredentials<'_>,
    scope_separator: &str,
    extra_params: &BTreeMap<String, String>,
) -> FormRequest {
    let scope = match grant {
        Grant::AuthorizationCode { .. } => None,
        Grant::RefreshToken { scopes, .. } => scopes
            .filter(|s| !s.is_empty())
            .map(|s| join_scopes(s, scope_separator)),
        Grant::ClientCredentials { scopes } => {
            (!scopes.is_empty()).then(|| join_scopes(scopes, scope_separator))
        }
    };
    let mut params: Vec<(&str, &str)> = vec![("grant_type", grant.grant_type())];
    match grant {
        Grant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            params.push(("code", code.expose_secret()));
            params.push(("redirect_uri", redirect_uri));
            if let Some(verifier) = code_verifier {
                params.push(("code_verifier", verifier.expose_secret()));
            }
        }
        Grant::RefreshToken { refresh_token, .. } => {
            params.push(("refresh_token", refresh_token.expose_secret()));
        }
        Grant::ClientCredentials { .. } => {}
    }
    if let Some(scope) = scope.as_deref() {
        params.push(("scope", scope));
    }
    form_request(token_endpoint, &params, client, extra_params)
}
