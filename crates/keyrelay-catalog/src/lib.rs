//! Provider definitions for keyrelay: the schema shared by catalog entries and
//! inline API definitions, its validation, and the bundled catalog.
//!
//! Discovery (RFC 8414 / OpenID) and all network access live elsewhere; this
//! crate is pure data so it can be used by the server, CLI and tests alike.

pub mod catalog;
pub mod definition;
pub mod doc;
pub mod error;
pub mod validate;

pub use catalog::{Catalog, is_valid_provider_name};
pub use definition::{
    AuthInjection, AuthMode, ProviderDefinition, SignatureMethod, TokenEndpointAuthMethod,
    TokenResponsePointers, Verification,
};
pub use doc::markdown_table;
pub use error::{CatalogError, ValidationError};
pub use validate::ValidationOptions;
