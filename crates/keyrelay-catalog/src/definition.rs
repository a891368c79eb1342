//! The provider definition schema.
//!
//! One schema serves both the bundled catalog and inline definitions sent in
//! API calls, so the field names are part of the public contract (they follow
//! RFC 8414 where one exists). Unknown fields are refused so that a typo such
//! as `token_endpiont` fails loudly instead of silently falling back to a
//! default.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How keyrelay obtains and uses credentials for a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthMode {
    /// OAuth 2.0 authorization code grant (RFC 6749 §4.1), with refresh.
    #[serde(rename = "oauth2")]
    OAuth2,
    /// OAuth 2.0 client credentials grant (RFC 6749 §4.4): no end-user redirect.
    #[serde(rename = "oauth2_client_credentials")]
    OAuth2ClientCredentials,
    /// OAuth 1.0a (RFC 5849) three-legged flow.
    #[serde(rename = "oauth1")]
    OAuth1,
    /// A static API key supplied by the end user or app.
    #[serde(rename = "api_key")]
    ApiKey,
    /// HTTP Basic credentials (username and password) supplied by the app.
    #[serde(rename = "basic")]
    Basic,
}

impl AuthMode {
    /// The wire name, as used in JSON and TOML.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMode::OAuth2 => "oauth2",
            AuthMode::OAuth2ClientCredentials => "oauth2_client_credentials",
            AuthMode::OAuth1 => "oauth1",
            AuthMode::ApiKey => "api_key",
            AuthMode::Basic => "basic",
        }
    }

    /// Whether this is one of the OAuth 2.0 grants (which share endpoints,
    /// token response parsing and client authentication).
    pub fn is_oauth2(&self) -> bool {
        matches!(self, AuthMode::OAuth2 | AuthMode::OAuth2ClientCredentials)
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the client authenticates at the token endpoint (RFC 8414 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic with client id and secret; the RFC 6749 default.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// OAuth 1.0a signature method (RFC 5849 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SignatureMethod {
    #[default]
    #[serde(rename = "HMAC-SHA1")]
    HmacSha1,
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
    #[serde(rename = "RSA-SHA1")]
    RsaSha1,
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
}

impl SignatureMethod {
    /// The wire name, as sent in `oauth_signature_method`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
            SignatureMethod::RsaSha1 => "RSA-SHA1",
            SignatureMethod::Plaintext => "PLAINTEXT",
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// JSON pointers (RFC 6901) into a non-standard token response, for providers
/// that nest the token (e.g. Slack's user token under `/authed_user`).
/// A missing pointer means the standard top-level RFC 6749 field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenResponsePointers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Where the proxy puts the credential on outgoing API requests.
///
/// `basic` connections always send `Authorization: Basic`, so this is refused
/// for them by validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", from = "RawAuthInjection")]
pub enum AuthInjection {
    /// `Authorization: Bearer <token>`.
    #[default]
    Bearer,
    /// A named header. `format` may use `{access_token}` / `{api_key}`
    /// (both mean the connection's credential); without it the credential is
    /// sent verbatim.
    Header {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
    },
    /// A query parameter carrying the credential verbatim.
    Query { name: String },
}

/// Deserialization twin of [`AuthInjection`]. serde ignores unknown fields on
/// a unit variant of an internally tagged enum, so `{"type": "bearer",
/// "name": "x"}` would be silently accepted; an empty struct variant makes
/// `deny_unknown_fields` apply to bearer too.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawAuthInjection {
    Bearer {},
    Header {
        name: String,
        #[serde(default)]
        format: Option<String>,
    },
    Query {
        name: String,
    },
}

impl From<RawAuthInjection> for AuthInjection {
    fn from(raw: RawAuthInjection) -> Self {
        match raw {
            RawAuthInjection::Bearer {} => AuthInjection::Bearer,
            RawAuthInjection::Header { name, format } => AuthInjection::Header { name, format },
            RawAuthInjection::Query { name } => AuthInjection::Query { name },
        }
    }
}

/// A cheap authenticated request used to check that a connection works.
/// `path` is relative to `api_base_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    #[serde(default = "default_verification_method")]
    pub method: String,
    pub path: String,
}

fn default_verification_method() -> String {
    "GET".to_owned()
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A provider definition: one catalog entry, or an inline definition in an
/// API call. Check it with [`ProviderDefinition::validate`] before use; the
/// type alone only guarantees the shape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderDefinition {
    pub auth_mode: AuthMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
    /// OAuth 2.0 issuer; endpoints that are not given are discovered from it
    /// (discovery lives outside this crate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// Send a PKCE (RFC 7636, S256) challenge. Defaults to true because it is
    /// harmless for providers that ignore it; set false for those that reject it.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub pkce: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_separator: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_scopes: Vec<String>,
    /// Extra query parameters for the authorization request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorization_params: BTreeMap<String, String>,
    /// Extra form parameters for token requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub token_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_response: Option<TokenResponsePointers>,
    /// OAuth 1.0a temporary credentials endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_token_endpoint: Option<String>,
    /// OAuth 1.0a token credentials endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_method: Option<SignatureMethod>,
    /// Base of proxied API requests; may hold `{connection_config.NAME}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    /// Further bare hostnames (lowercase, no scheme, port or path) the proxy
    /// may reach besides the `api_base_url` host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_injection: Option<AuthInjection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// Names of per-connection values the app supplies (e.g. `subdomain`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connection_config: Vec<String>,
    /// Assumed access-token lifetime when the token response has no
    /// `expires_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl ProviderDefinition {
    /// A definition with only `auth_mode` set and every other field at its
    /// default; handy as a base for struct-update syntax.
    pub fn new(auth_mode: AuthMode) -> Self {
        ProviderDefinition {
            auth_mode,
            display_name: None,
            docs_url: None,
            issuer: None,
            authorization_endpoint: None,
            token_endpoint: None,
            revocation_endpoint: None,
            introspection_endpoint: None,
            token_endpoint_auth_method: TokenEndpointAuthMethod::default(),
            pkce: true,
            scope_separator: None,
            default_scopes: Vec::new(),
            authorization_params: BTreeMap::new(),
            token_params: BTreeMap::new(),
            token_response: None,
            request_token_endpoint: None,
            access_token_endpoint: None,
            signature_method: None,
            api_base_url: None,
            allowed_hosts: Vec::new(),
            auth_injection: None,
            verification: None,
            connection_config: Vec::new(),
            token_lifetime_seconds: None,
            categories: Vec::new(),
        }
    }

    /// Separator used to join scopes; RFC 6749 says space, some providers
    /// (Slack) use a comma.
    pub fn scope_separator(&self) -> &str {
        self.scope_separator.as_deref().unwrap_or(" ")
    }

    /// Effective credential placement; bearer unless configured.
    pub fn auth_injection(&self) -> AuthInjection {
        self.auth_injection.clone().unwrap_or_default()
    }

    /// Effective OAuth 1.0a signature method; HMAC-SHA1 unless configured.
    pub fn signature_method(&self) -> SignatureMethod {
        self.signature_method.unwrap_or_default()
    }
}
