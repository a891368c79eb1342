//! Row shapes shared by both backends, and their conversion to records.
//! JSON-valued columns are TEXT in both databases so one query text serves both.

use chrono::{DateTime, Utc};

use crate::error::StoreResult;
use crate::model::{DataKeyRecord, Integration, Project, SecretKeyRecord};

#[derive(sqlx::FromRow)]
pub(crate) struct DataKeyRow {
    id: String,
    master_kid: String,
    wrapped: Vec<u8>,
    created_at: DateTime<Utc>,
}

impl From<DataKeyRow> for DataKeyRecord {
    fn from(r: DataKeyRow) -> Self {
        DataKeyRecord {
            id: r.id,
            master_kid: r.master_kid,
            wrapped: r.wrapped,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProjectRow {
    id: String,
    name: String,
    allowed_redirect_urls: String,
    webhook_url: Option<String>,
    webhook_secret: Vec<u8>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ProjectRow {
    pub(crate) fn into_record(self) -> StoreResult<Project> {
        Ok(Project {
            id: self.id,
            name: self.name,
            allowed_redirect_urls: serde_json::from_str(&self.allowed_redirect_urls)?,
            webhook_url: self.webhook_url,
            webhook_secret: self.webhook_secret,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SecretKeyRow {
    id: String,
    project_id: String,
    hash: Vec<u8>,
    created_at: DateTime<Utc>,
}

impl From<SecretKeyRow> for SecretKeyRecord {
    fn from(r: SecretKeyRow) -> Self {
        SecretKeyRecord {
            id: r.id,
            project_id: r.project_id,
            hash: r.hash,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IntegrationRow {
    id: String,
    project_id: String,
    key: String,
    provider_name: Option<String>,
    provider: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Vec<u8>>,
    scopes: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    problem: Option<String>,
}

impl IntegrationRow {
    pub(crate) fn into_record(self) -> StoreResult<Integration> {
        Ok(Integration {
            id: self.id,
            project_id: self.project_id,
            key: self.key,
            provider_name: self.provider_name,
            provider: self
                .provider
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scopes: serde_json::from_str(&self.scopes)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            problem: self
                .problem
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
        })
    }
}

/// Unix milliseconds, the form of lease and schedule instants.
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    Ok(serde_json::to_string(value)?)
}

pub(crate) fn collect<R, T>(rows: Vec<R>, f: impl Fn(R) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(f).collect()
}

fn map_of(text: &str) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    Ok(serde_json::from_str(text)?)
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConnectSessionRow {
    token_hash: Vec<u8>,
    id: String,
    project_id: String,
    integration_id: String,
    integration_key: String,
    user_id: String,
    redirect_url: String,
    scopes: String,
    connection_config: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

impl ConnectSessionRow {
    pub(crate) fn into_record(self) -> StoreResult<crate::model::ConnectSession> {
        Ok(crate::model::ConnectSession {
            token_hash: self.token_hash,
            id: self.id,
            project_id: self.project_id,
            integration_id: self.integration_id,
            integration_key: self.integration_key,
            user_id: self.user_id,
            redirect_url: self.redirect_url,
            scopes: serde_json::from_str(&self.scopes)?,
            connection_config: map_of(&self.connection_config)?,
            expires_at: self.expires_at,
            created_at: self.created_at,
            used_at: self.used_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OAuthFlowRow {
    state_hash: Vec<u8>,
    session_id: String,
    binding_hash: Vec<u8>,
    project_id: String,
    integration_id: String,
    integration_key: String,
    user_id: String,
    redirect_url: String,
    redirect_uri: String,
    scopes: String,
    connection_config: String,
    pkce_verifier: Option<Vec<u8>>,
    expected_issuer: Option<String>,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl OAuthFlowRow {
    pub(crate) fn into_record(self) -> StoreResult<crate::model::OAuthFlow> {
        Ok(crate::model::OAuthFlow {
            state_hash: self.state_hash,
            session_id: self.session_id,
            binding_hash: self.binding_hash,
            project_id: self.project_id,
            integration_id: self.integration_id,
            integration_key: self.integration_key,
            user_id: self.user_id,
            redirect_url: self.redirect_url,
            redirect_uri: self.redirect_uri,
            scopes: serde_json::from_str(&self.scopes)?,
            connection_config: map_of(&self.connection_config)?,
            pkce_verifier: self.pkce_verifier,
            expected_issuer: self.expected_issuer,
            expires_at: self.expires_at,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConnectionRow {
    id: String,
    project_id: String,
    integration_id: String,
    integration_key: String,
    user_id: String,
    auth_mode: String,
    status: String,
    scopes: String,
    expires_at: Option<DateTime<Utc>>,
    credentials: Vec<u8>,
    connection_config: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_refresh_at: Option<DateTime<Utc>>,
    refresh_count: i64,
    last_error: Option<String>,
    version: i64,
    next_refresh_at: Option<i64>,
    refresh_failures: i64,
}

impl ConnectionRow {
    pub(crate) fn into_record(self) -> StoreResult<crate::model::Connection> {
        Ok(crate::model::Connection {
            id: self.id,
            project_id: self.project_id,
            integration_id: self.integration_id,
            integration_key: self.integration_key,
            user_id: self.user_id,
            auth_mode: self.auth_mode,
            status: self.status,
            scopes: serde_json::from_str(&self.scopes)?,
            expires_at: self.expires_at,
            credentials: self.credentials,
            connection_config: map_of(&self.connection_config)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_refresh_at: self.last_refresh_at,
            refresh_count: self.refresh_count,
            last_error: self
                .last_error
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            version: self.version,
            next_refresh_at: self.next_refresh_at.map(from_millis),
            refresh_failures: self.refresh_failures,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: String,
    project_id: String,
    integration_key: String,
    user_id: String,
    #[sqlx(rename = "type")]
    kind: String,
    detail: String,
    created_at: DateTime<Utc>,
}

impl EventRow {
    pub(crate) fn into_record(self) -> StoreResult<crate::model::Event> {
        Ok(crate::model::Event {
            id: self.id,
            project_id: self.project_id,
            integration_key: self.integration_key,
            user_id: self.user_id,
            kind: self.kind,
            detail: serde_json::from_str(&self.detail)?,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RevocationRow {
    id: String,
    project_id: String,
    integration_id: String,
    integration_key: String,
    user_id: String,
    tokens: Vec<u8>,
    reason: Option<String>,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

impl RevocationRow {
    pub(crate) fn into_record(self) -> StoreResult<crate::model::Revocation> {
        Ok(crate::model::Revocation {
            id: self.id,
            project_id: self.project_id,
            integration_id: self.integration_id,
            integration_key: self.integration_key,
            user_id: self.user_id,
            tokens: self.tokens,
            reason: self.reason,
            attempts: self.attempts,
            next_attempt_at: from_millis(self.next_attempt_at),
            last_error: self.last_error,
            created_at: self.created_at,
        })
    }
}
