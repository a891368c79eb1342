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
        })
    }
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    Ok(serde_json::to_string(value)?)
}

pub(crate) fn collect<R, T>(rows: Vec<R>, f: impl Fn(R) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(f).collect()
}
