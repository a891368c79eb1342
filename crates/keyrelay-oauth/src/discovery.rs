//! Authorization server metadata: RFC 8414 and OpenID Connect Discovery 1.0.

use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::authorize::parse_endpoint;
use crate::error::OAuthError;
use crate::lenient;

const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
const OPENID_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Where to look for an issuer's metadata, in order:
///
/// 1. RFC 8414 §3.1: `/.well-known/oauth-authorization-server` inserted
///    between the host and the issuer's path (trailing `/` removed), e.g.
///    `https://as.example.com/tenant1` →
///    `https://as.example.com/.well-known/oauth-authorization-server/tenant1`;
///    without a path just `https://as.example.com/.well-known/oauth-authorization-server`.
/// 2. OpenID Connect Discovery §4: the issuer without trailing `/`, then
///    `/.well-known/openid-configuration`.
///
/// The issuer must be an absolute `http(s)` URL without query or fragment
/// (RFC 8414 §2).
pub fn discovery_urls(issuer: &str) -> Result<Vec<String>, OAuthError> {
    let url = parse_endpoint(issuer, "issuer")?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(OAuthError::InvalidUrl(
            "issuer must not have a query or fragment".into(),
        ));
    }
    let path = url.path().trim_end_matches('/');

    let mut rfc8414 = url.clone();
    rfc8414.set_path(&format!("{OAUTH_WELL_KNOWN}{path}"));

    let openid = format!("{}{OPENID_WELL_KNOWN}", url.as_str().trim_end_matches('/'));
    Ok(vec![rfc8414.to_string(), openid])
}

/// The parts of an authorization server's metadata keyrelay uses. Unknown
/// fields are ignored; list fields that are missing or `null` are empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub scopes_supported: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub authorization_response_iss_parameter_supported: bool,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl ServerMetadata {
    /// Whether the server advertises the PKCE `S256` method.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    }
}

/// Parses a metadata document fetched from one of [`discovery_urls`].
///
/// The document's `issuer` must equal `expected_issuer` (RFC 8414 §3.3,
/// OpenID Discovery §4.3), which defeats a document served for another
/// issuer. The comparison is exact except that ONE trailing `/` is removed
/// from both sides first: `https://as.example.com` and
/// `https://as.example.com/` name the same issuer and providers are
/// inconsistent about it; nothing else (case, default ports, …) is
/// normalised. Every endpoint present must be an absolute `http(s)` URL.
pub fn parse_metadata(body: &[u8], expected_issuer: &str) -> Result<ServerMetadata, OAuthError> {
    let meta: ServerMetadata = serde_json::from_slice(body).map_err(|e| {
        OAuthError::Discovery(format!(
            "metadata is not a valid JSON document (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let strip = |s: &'_ str| s.strip_suffix('/').unwrap_or(s).to_owned();
    if strip(&meta.issuer) != strip(expected_issuer) {
        return Err(OAuthError::Discovery(format!(
            "issuer mismatch: expected `{}`, the document says `{}`",
            lenient::sanitize(expected_issuer, 200),
            lenient::sanitize(&meta.issuer, 200)
        )));
    }
    let endpoints = [
        ("authorization_endpoint", &meta.authorization_endpoint),
        ("token_endpoint", &meta.token_endpoint),
        ("revocation_endpoint", &meta.revocation_endpoint),
        ("introspection_endpoint", &meta.introspection_endpoint),
        ("userinfo_endpoint", &meta.userinfo_endpoint),
    ];
    for (name, value) in endpoints {
        if let Some(value) = value {
            let ok = Url::parse(value)
                .ok()
                .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err(OAuthError::Discovery(format!(
                    "{name} is not an absolute http(s) URL"
                )));
            }
        }
    }
    Ok(meta)
}
