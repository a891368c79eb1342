//! OAuth 1.0a (RFC 5849): request signing and the three-legged flow, as pure
//! functions like the rest of the crate.
//!
//! - [`percent_encode`]: the §3.6 encoding everything else builds on;
//! - [`signature_base_string`]: §3.4.1, from the method, URL, form body and
//!   protocol parameters;
//! - [`Oauth1Signer`]: HMAC-SHA1, HMAC-SHA256, PLAINTEXT and RSA-SHA1
//!   signatures and the `Authorization: OAuth …` header;
//! - [`temporary_credentials_request`], [`authorization_redirect_url`],
//!   [`parse_callback`], [`token_credentials_request`] and their reply
//!   parsers: the flow of §2.
//!
//! RSA-SHA1 needs the `rsa-sha1` cargo feature (off by default, see
//! [`SignatureMethod::RsaSha1`] and the crate docs).

mod base_string;
mod encode;
mod error;
mod flow;
#[cfg(feature = "rsa-sha1")]
mod rsa_sha1;
mod sign;
mod signer;

pub use base_string::{form_body_for_signing, signature_base_string};
pub use encode::percent_encode;
pub use error::Oauth1Error;
pub use flow::{
    Oauth1Callback, TemporaryCredentials, TokenCredentials, authorization_redirect_url,
    parse_callback, parse_temporary_credentials, parse_token_credentials,
    temporary_credentials_request, token_credentials_request,
};
pub use sign::SignatureMethod;
pub use signer::{Oauth1Signer, SignedHeader, SigningParams};
