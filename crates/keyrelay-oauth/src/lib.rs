//! OAuth 2.0 and OAuth 1.0a for keyrelay as pure functions: request builders
//! and lenient response parsers.
//!
//! This crate does no I/O. It builds requests (URL, headers, form body) that
//! the server sends with its own HTTP client, and parses the replies it gets
//! back. Keeping it pure makes every provider quirk testable with plain byte
//! strings.
//!
//! It is hand-written on purpose instead of using the `oauth2` crate: that
//! crate insists on RFC-conformant replies and refuses the non-standard ones
//! real providers send (GitHub's form-encoded replies and errors inside a 200,
//! Slack's `{"ok": false}` and nested user tokens, `expires_in` as a string or
//! a float, comma-separated scopes, Salesforce's missing `expires_in`, …).
//! [`parse_token_response`] accepts all of those.
//!
//! Secrets stay in the redacting types of `keyrelay_vault`; request and reply
//! types implement `Debug` and `Display` so that neither tokens, codes, client
//! secrets nor raw bodies ever reach a log line.
//!
//! Modules:
//! - [`pkce`]: PKCE (RFC 7636) verifiers/challenges and `state` values;
//! - [`authorize`]: the authorization request URL (RFC 6749 §4.1.1);
//! - [`token`]: token endpoint requests and client authentication (§2.3, §4, §6);
//! - [`response`]: the lenient token-response parser (§5.1, §5.2);
//! - [`revoke`]: revocation (RFC 7009) and introspection (RFC 7662);
//! - [`discovery`]: authorization server metadata (RFC 8414, OpenID Discovery);
//! - [`oauth1`]: OAuth 1.0a (RFC 5849): signatures, the `Authorization`
//!   header, and the three-legged flow's requests and reply parsers.
//!
//! Cargo feature `rsa-sha1` (off by default) enables OAuth 1.0a RSA-SHA1
//! signing. It pulls in the `rsa` crate, which has an unfixed RustSec
//! advisory (RUSTSEC-2023-0071, the "Marvin" timing side channel in its
//! private-key operations), so only builds that need RSA-SHA1 providers
//! should enable it. Without it, asking for RSA-SHA1 fails with
//! [`Oauth1Error::RsaSha1Unavailable`].

pub mod authorize;
pub mod discovery;
pub mod error;
pub mod oauth1;
pub mod pkce;
pub mod response;
pub mod revoke;
pub mod token;

mod lenient;

pub use authorize::{AuthorizationRequest, authorization_url};
pub use discovery::{ServerMetadata, discovery_urls, parse_metadata};
pub use error::OAuthError;
pub use oauth1::{Oauth1Error, Oauth1Signer, SignatureMethod, SignedHeader, SigningParams};
pub use pkce::{Pkce, new_state, pkce_s256, s256_challenge};
pub use response::{TokenError, TokenSet, parse_token_response};
pub use revoke::{Introspection, introspection_request, parse_introspection, revocation_request};
pub use token::{ClientCredentials, FormRequest, Grant, token_request};
