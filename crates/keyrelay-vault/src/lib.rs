//! Secrets handling for keyrelay: redacted secret types, the master keyring,
//! envelope encryption of stored fields, API token generation and hashing,
//! and the on-disk master key file.
//!
//! Layering: a [`MasterKey`] (from config or [`keyfile`]) wraps [`DataKey`]s
//! via the [`Keyring`]; data keys encrypt individual fields into [`Sealed`]
//! blobs bound by [`Aad`] to their table, row and column.

pub mod data_key;
pub mod error;
pub mod keyfile;
pub mod keyring;
pub mod master_key;
pub mod sealed;
pub mod secret;
pub mod token;

pub use data_key::{Aad, DataKey};
pub use error::VaultError;
pub use keyring::{Keyring, WrappedDataKey};
pub use master_key::MasterKey;
pub use sealed::{Sealed, open_with, seal_with};
pub use secret::{
    AccessToken, AdminToken, ApiKey, AuthorizationCode, ClientSecret, OAuthState, Password,
    PkceVerifier, ProjectSecretKey, RefreshToken, SecretBytes, TokenSecret, WebhookSecret,
};
pub use token::{TokenHash, generate_id, generate_token, webhook_secret};
pub use zeroize::Zeroizing;
