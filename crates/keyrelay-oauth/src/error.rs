//! Errors of the request builders, discovery and introspection.
//!
//! Token endpoint replies have their own error type,
//! [`TokenError`](crate::TokenError). No message here ever contains a secret.

/// A request could not be built or a metadata/introspection reply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// An endpoint or issuer is not a usable absolute `http(s)` URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The authorization server metadata document was refused.
    #[error("authorization server discovery failed: {0}")]
    Discovery(String),
    /// The introspection reply was not understood.
    #[error("token introspection failed: {0}")]
    Introspection(String),
}
