//! The JSON shapes the API returns. None of them can hold a secret: secrets
//! appear only in the one-time `created` responses, built field by field.

use chrono::{DateTime, SecondsFormat, Utc};
use keyrelay_store::{Project, SecretKeyRecord};
use serde::Serialize;
use serde_json::Value;

use crate::config::ServerConfig;
use crate::services::integrations::{IntegrationView, ProviderSource};
use keyrelay_catalog::AuthMode;

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Serialize)]
pub struct ProjectJson {
    pub id: String,
    pub name: String,
    pub allowed_redirect_urls: Vec<String>,
    pub webhook_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Project> for ProjectJson {
    fn from(p: &Project) -> Self {
        ProjectJson {
            id: p.id.clone(),
            name: p.name.clone(),
            allowed_redirect_urls: p.allowed_redirect_urls.clone(),
            webhook_url: p.webhook_url.clone(),
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct SecretKeyJson {
    pub id: String,
    pub created_at: String,
}

impl From<&SecretKeyRecord> for SecretKeyJson {
    fn from(k: &SecretKeyRecord) -> Self {
        SecretKeyJson {
            id: k.id.clone(),
            created_at: timestamp(k.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct IntegrationJson {
    pub key: String,
    /// The catalog name, or the inline definition.
    pub provider: Value,
    pub auth_mode: AuthMode,
    pub display_name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    /// The redirect URL to register at the provider (OAuth modes only).
    pub callback_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// `misconfigured` while the provider refuses the app's client
    /// credentials (`problem` says how), else `ok`.
    pub status: &'static str,
    pub problem: Option<Value>,
}

impl IntegrationJson {
    pub fn new(view: &IntegrationView, config: &ServerConfig) -> Self {
        let def = &view.definition;
        let provider = match &view.source {
            ProviderSource::Catalog(name) => Value::String(name.clone()),
            ProviderSource::Inline => view.record.provider.clone().unwrap_or(Value::Null),
        };
        let callback_url = match def.auth_mode {
            AuthMode::OAuth2 => Some(config.oauth_callback_url()),
            AuthMode::OAuth1 => Some(config.oauth1_callback_url()),
            _ => None,
        };
        IntegrationJson {
            key: view.record.key.clone(),
            provider,
            auth_mode: def.auth_mode,
            display_name: def.display_name.clone(),
            client_id: view.record.client_id.clone(),
            client_secret_set: view.record.client_secret.is_some(),
            scopes: view.record.scopes.clone(),
            callback_url,
            created_at: timestamp(view.record.created_at),
            updated_at: timestamp(view.record.updated_at),
            status: if view.record.problem.is_some() {
                "misconfigured"
            } else {
                "ok"
            },
            problem: view.record.problem.clone(),
        }
    }
}

/// Distinguishes a field sent as `null` (Some(None)) from one left out (None).
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}

/// A connection as the API shows it: never any credential.
#[derive(Serialize)]
pub struct ConnectionJson {
    pub integration: String,
    pub user_id: String,
    pub provider: Option<String>,
    pub auth_mode: String,
    pub status: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_refresh_at: Option<String>,
    pub refresh_count: i64,
    pub last_error: Option<Value>,
    pub connection_config: serde_json::Map<String, Value>,
}

impl ConnectionJson {
    /// `provider`: the integration's catalog name, or its inline
    /// definition's display name.
    pub fn new(c: &keyrelay_store::Connection, provider: Option<String>) -> Self {
        ConnectionJson {
            integration: c.integration_key.clone(),
            user_id: c.user_id.clone(),
            provider,
            auth_mode: c.auth_mode.clone(),
            status: c.status.clone(),
            scopes: c.scopes.clone(),
            expires_at: c.expires_at.map(timestamp),
            created_at: timestamp(c.created_at),
            updated_at: timestamp(c.updated_at),
            last_refresh_at: c.last_refresh_at.map(timestamp),
            refresh_count: c.refresh_count,
            last_error: c.last_error.clone(),
            connection_config: c.connection_config.clone(),
        }
    }
}
