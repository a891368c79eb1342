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
    /// `{code, message, at}` while the provider refuses the app's own
    /// credentials (`invalid_client`); cleared by updating the integration.
    pub problem: Option<serde_json::Value>,
}

/// A connect session: the link an app hands its end user. Only the SHA-256
/// of the session token is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSession {
    pub token_hash: Vec<u8>,
    pub id: String,
    pub project_id: String,
    pub integration_id: String,
    pub integration_key: String,
    pub user_id: String,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub connection_config: serde_json::Map<String, serde_json::Value>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// One authorization in flight: what the callback needs to finish it.
/// `state` and the browser binding are stored as hashes; the PKCE verifier
/// as a vault ciphertext.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthFlow {
    pub state_hash: Vec<u8>,
    pub session_id: String,
    pub binding_hash: Vec<u8>,
    pub project_id: String,
    pub integration_id: String,
    pub integration_key: String,
    pub user_id: String,
    pub redirect_url: String,
    /// The exact redirect_uri sent in the authorization request.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub connection_config: serde_json::Map<String, serde_json::Value>,
    pub pkce_verifier: Option<Vec<u8>>,
    pub expected_issuer: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// One end user's grant at one integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: String,
    pub project_id: String,
    pub integration_id: String,
    pub integration_key: String,
    pub user_id: String,
    pub auth_mode: String,
    pub status: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Vault ciphertext of the credential set (JSON).
    pub credentials: Vec<u8>,
    pub connection_config: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub refresh_count: i64,
    pub last_error: Option<serde_json::Value>,
    /// Bumped on every credential write; writers check it so that a slow
    /// writer never overwrites newer credentials.
    pub version: i64,
    /// When the scheduler should refresh it next (`None`: never).
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// Transient refresh failures since the last success (for backoff).
    pub refresh_failures: i64,
}

/// Filters and page position for listing connections, newest first.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub integration_key: Option<String>,
    pub user_id: Option<String>,
    pub status: Option<String>,
    /// Continue after this (created_at, id).
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// One entry of the audit trail. `detail` holds reasons and error codes,
/// never a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub project_id: String,
    pub integration_key: String,
    pub user_id: String,
    pub kind: String,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Filters and page position for listing events, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub integration_key: Option<String>,
    pub user_id: Option<String>,
    pub kind: Option<String>,
    /// Continue after this (created_at, id).
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// A revocation at the provider waiting to be retried. `tokens` is a vault
/// ciphertext; the row is deleted once the provider accepts or retries end.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    pub id: String,
    pub project_id: String,
    pub integration_id: String,
    pub integration_key: String,
    pub user_id: String,
    pub tokens: Vec<u8>,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}
