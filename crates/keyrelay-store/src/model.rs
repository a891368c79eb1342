//! Records as stored. Secret fields hold vault ciphertexts (`Vec<u8>`) or
//! hashes; this crate never sees a plaintext secret.

use chrono::{DateTime, Utc};

/// A wrapped data key: the key that encrypts secrets, itself encrypted by a
/// master key (`master_kid`).
#[derive(Debug, Clone, PartialEq)]
pub struct DataKeyRecord {
    pub id: String,
    pub master_kid: String,
    pub wrapped: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// A tenant: its integrations, connections and keys are its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub allowed_redirect_urls: Vec<String>,
    pub webhook_url: Option<String>,
    /// Vault ciphertext of the `whsec_…` signing secret.
    pub webhook_secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A project secret key, stored as the SHA-256 of the key only.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretKeyRecord {
    pub id: String,
    pub project_id: String,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// A provider plus a project's app credentials at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub id: String,
    pub project_id: String,
    pub key: String,
    /// The catalog name, when the provider comes from the catalog.
    pub provider_name: Option<String>,
    /// The inline provider definition (JSON), when it does not.
    pub provider: Option<serde_json::Value>,
    pub client_id: Option<String>,
    /// Vault ciphertext of the client secret.
    pub client_secret: Option<Vec<u8>>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
