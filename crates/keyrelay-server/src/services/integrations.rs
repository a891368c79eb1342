//! Integrations: a provider (catalog name or inline definition) plus a
//! project's app credentials at it. The client secret is sealed in the vault
//! and never leaves keyrelay through the API.

use chrono::Utc;
use keyrelay_catalog::{AuthMode, ProviderDefinition, ValidationOptions};
use keyrelay_store::{Integration, StoreError};
use keyrelay_vault::{ClientSecret, token};
use serde_json::Value;

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::{oauth1, validate};
use crate::vault::Field;

/// A new integration as the API receives it.
#[derive(Debug)]
pub struct NewIntegration {
    pub key: String,
    /// A catalog name (JSON string) or an inline definition (JSON object).
    pub provider: Value,
    pub client_id: Option<String>,
    pub client_secret: Option<ClientSecret>,
    pub scopes: Vec<String>,
}

/// Changes to an integration; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct IntegrationPatch {
    pub provider: Option<Value>,
    pub client_id: Option<String>,
    pub client_secret: Option<ClientSecret>,
    pub scopes: Option<Vec<String>>,
}

/// The provider behind an integration, resolved.
#[derive(Debug, Clone)]
pub enum ProviderSource {
    Catalog(String),
    Inline,
}

/// An integration with its provider definition resolved, ready to show.
#[derive(Debug, Clone)]
pub struct IntegrationView {
    pub record: Integration,
    pub source: ProviderSource,
    pub definition: ProviderDefinition,
}

/// Turns the `provider` field into a definition: a catalog name, or an inline
/// definition checked against the schema and validated.
fn resolve_provider(
    app: &App,
    provider: &Value,
) -> ServiceResult<(ProviderSource, ProviderDefinition)> {
    match provider {
        Value::String(name) => match app.catalog.get(name) {
            Some(def) => Ok((ProviderSource::Catalog(name.clone()), def.clone())),
            None => Err(ServiceError::invalid(
                "unknown_provider",
                format!(
                    "provider: {name:?} is not in the provider catalog; run `keyrelay providers list` \
                     for the names, or pass an inline provider definition object"
                ),
            )),
        },
        Value::Object(_) => {
            let def: ProviderDefinition = serde_json::from_value(provider.clone())
                .map_err(|e| ServiceError::invalid("invalid_provider", format!("provider: {e}")))?;
            def.validate(&ValidationOptions {
                allow_local: app.config.allow_local_providers,
            })
            .map_err(|e| ServiceError::invalid("invalid_provider", e.to_string()))?;
            Ok((ProviderSource::Inline, def))
        }
        _ => Err(ServiceError::invalid(
            "invalid_provider",
            "provider: must be a catalog name (string) or a provider definition (object)",
        )),
    }
}

/// OAuth modes need the app's client credentials; key and basic modes take
/// theirs per connection instead.
fn needs_client_credentials(mode: AuthMode) -> bool {
    matches!(
        mode,
        AuthMode::OAuth2 | AuthMode::OAuth2ClientCredentials | AuthMode::OAuth1
    )
}

fn check_client_credentials(
    def: &ProviderDefinition,
    client_id: Option<&str>,
    has_secret: bool,
) -> ServiceResult<()> {
    let mode = def.auth_mode;
    if needs_client_credentials(mode) {
        if client_id.is_none_or(str::is_empty) {
            return Err(ServiceError::invalid(
                "invalid_request",
                format!(
                    "client_id: required for {mode} providers; copy it from your app's settings at the provider"
                ),
            ));
        }
        if !has_secret {
            return Err(ServiceError::invalid(
                "invalid_request",
                format!(
                    "client_secret: required for {mode} providers; copy it from your app's settings at the provider"
                ),
            ));
        }
    }
    if let Some(id) = client_id
        && (id.len() > 1024 || id.chars().any(char::is_control))
    {
        return Err(ServiceError::invalid(
            "invalid_request",
            "client_id: must be at most 1024 characters without control characters",
        ));
    }
    Ok(())
}

fn seal_secret(app: &App, id: &str, secret: &ClientSecret) -> ServiceResult<Vec<u8>> {
    if secret.expose_secret().is_empty() || secret.expose_secret().len() > 4096 {
        return Err(ServiceError::invalid(
            "invalid_request",
            "client_secret: must be 1-4096 characters",
        ));
    }
    Ok(app.vault.seal(
        Field::new("integrations", id, "client_secret"),
        secret.expose_secret().as_bytes(),
    ))
}

fn stored_provider(source: &ProviderSource, provider: &Value) -> (Option<String>, Option<Value>) {
    match source {
        ProviderSource::Catalog(name) => (Some(name.clone()), None),
        ProviderSource::Inline => (None, Some(provider.clone())),
    }
}

pub async fn create(
    app: &App,
    project_id: &str,
    input: NewIntegration,
) -> ServiceResult<IntegrationView> {
    validate::integration_key(&input.key)?;
    validate::scopes(&input.scopes)?;
    let (source, definition) = resolve_provider(app, &input.provider)?;
    check_client_credentials(
        &definition,
        input.client_id.as_deref(),
        input.client_secret.is_some(),
    )?;
    oauth1::check_consumer_secret(&definition, input.client_secret.as_ref())?;
    let id = token::generate_id("int_");
    let client_secret = input
        .client_secret
        .as_ref()
        .map(|s| seal_secret(app, &id, s))
        .transpose()?;
    let (provider_name, provider) = stored_provider(&source, &input.provider);
    let now = Utc::now();
    let record = Integration {
        id,
        project_id: project_id.to_string(),
        key: input.key,
        provider_name,
        provider,
        client_id: input.client_id,
        client_secret,
        scopes: input.scopes,
        created_at: now,
        updated_at: now,
        problem: None,
    };
    app.store
        .insert_integration(&record)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::conflict(
                "integration_exists",
                format!(
                    "an integration with the key {:?} exists already; PATCH it, or pick another key",
                    record.key
                ),
            ),
            other => other.into(),
        })?;
    Ok(IntegrationView {
        record,
        source,
        definition,
    })
}

/// Resolves a stored integration's provider. A catalog entry that was removed
/// since (e.g. a providers file edited) is reported, not hidden.
pub fn view(app: &App, record: Integration) -> ServiceResult<IntegrationView> {
    let provider = match (&record.provider_name, &record.provider) {
        (Some(name), _) => Value::String(name.clone()),
        (None, Some(def)) => def.clone(),
        (None, None) => {
            return Err(
                StoreError::Corrupt(format!("integration {} has no provider", record.key)).into(),
            );
        }
    };
    let (source, definition) = resolve_provider(app, &provider)?;
    Ok(IntegrationView {
        record,
        source,
        definition,
    })
}

impl IntegrationView {
    /// How connections name their provider: the catalog name, or the inline
    /// definition's display name.
    pub fn provider_label(&self) -> Option<String> {
        match &self.source {
            ProviderSource::Catalog(name) => Some(name.clone()),
            ProviderSource::Inline => self.definition.display_name.clone(),
        }
    }
}

pub async fn get(app: &App, project_id: &str, key: &str) -> ServiceResult<IntegrationView> {
    let record = app
        .store
        .get_integration(project_id, key)
        .await?
        .ok_or_else(|| unknown_integration(key))?;
    view(app, record)
}

pub async fn list(app: &App, project_id: &str) -> ServiceResult<Vec<IntegrationView>> {
    app.store
        .list_integrations(project_id)
        .await?
        .into_iter()
        .map(|r| view(app, r))
        .collect()
}

pub async fn update(
    app: &App,
    project_id: &str,
    key: &str,
    patch: IntegrationPatch,
) -> ServiceResult<IntegrationView> {
    let current = get(app, project_id, key).await?;
    let mut record = current.record;
    let (source, definition) = match &patch.provider {
        Some(provider) => {
            let (source, definition) = resolve_provider(app, provider)?;
            (record.provider_name, record.provider) = stored_provider(&source, provider);
            (source, definition)
        }
        None => (current.source, current.definition),
    };
    if let Some(scopes) = patch.scopes {
        validate::scopes(&scopes)?;
        record.scopes = scopes;
    }
    if let Some(client_id) = patch.client_id {
        record.client_id = Some(client_id);
    }
    oauth1::check_consumer_secret(&definition, patch.client_secret.as_ref())?;
    if let Some(secret) = &patch.client_secret {
        record.client_secret = Some(seal_secret(app, &record.id, secret)?);
    }
    check_client_credentials(
        &definition,
        record.client_id.as_deref(),
        record.client_secret.is_some(),
    )?;
    record.updated_at = Utc::now();
    // An update is the operator's answer to a flagged problem: clear it
    // (the next refresh flags it again if it persists).
    record.problem = None;
    app.store.update_integration(&record).await?;
    app.proxy_cache.forget_integration(project_id, key);
    Ok(IntegrationView {
        record,
        source,
        definition,
    })
}

pub async fn delete(app: &App, project_id: &str, key: &str) -> ServiceResult<()> {
    let view = get(app, project_id, key).await?;
    let count = app.store.count_connections(&view.record.id).await?;
    if count > 0 {
        return Err(ServiceError::conflict(
            "integration_has_connections",
            format!(
                "integration {key:?} still has {count} connections; delete them first (DELETE /v1/connections/{key}/USER_ID)"
            ),
        ));
    }
    app.proxy_cache.forget_integration(project_id, key);
    if app.store.delete_integration(project_id, key).await? {
        Ok(())
    } else {
        Err(unknown_integration(key))
    }
}

/// The integration's client secret, decrypted, for token calls.
pub async fn client_secret(
    app: &App,
    project_id: &str,
    key: &str,
) -> ServiceResult<Option<ClientSecret>> {
    let record = app
        .store
        .get_integration(project_id, key)
        .await?
        .ok_or_else(|| unknown_integration(key))?;
    open_client_secret(app, &record).await
}

/// The client secret of a record already in hand, decrypted.
pub async fn open_client_secret(
    app: &App,
    record: &Integration,
) -> ServiceResult<Option<ClientSecret>> {
    let Some(sealed) = &record.client_secret else {
        return Ok(None);
    };
    let text = app
        .vault
        .open_string(
            Field::new("integrations", &record.id, "client_secret"),
            sealed,
        )
        .await?;
    Ok(Some(ClientSecret::new(text.as_str())))
}

fn unknown_integration(key: &str) -> ServiceError {
    ServiceError::not_found(
        "unknown_integration",
        format!("this project has no integration {key:?}; list them with GET /v1/integrations"),
    )
}
