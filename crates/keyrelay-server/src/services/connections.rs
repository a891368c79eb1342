//! Connections: one end user's grant at one integration. Storing (from the
//! callback, an import, or a client-credentials grant), listing, handing out
//! fresh credentials, verifying and deleting.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use keyrelay_catalog::{AuthInjection, AuthMode};
use keyrelay_oauth::{ClientCredentials, Grant, introspection_request, parse_introspection};
use keyrelay_store::{Connection, ConnectionFilter, StoreError};
use keyrelay_vault::{AccessToken, ApiKey, Password, RefreshToken, TokenSecret, token};
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::proxy::cache::Live;
use crate::services::credentials::Credentials;
use crate::services::events;
use crate::services::integrations::{self, IntegrationView};
use crate::services::providers::{self, check_connection_config};
use crate::services::refresh::{self, TokenCallError, Trigger};
use crate::services::{oauth1, outbound, validate};

/// Checks an end-user id: 1–256 characters, no control characters.
pub fn check_user_id(user_id: &str) -> ServiceResult<()> {
    let len = user_id.chars().count();
    if len == 0 || len > 256 || user_id.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "invalid_request",
            "user_id: must be 1-256 characters without control characters",
        ));
    }
    Ok(())
}

fn unknown_connection(key: &str, user_id: &str) -> ServiceError {
    ServiceError::not_found(
        "unknown_connection",
        format!("integration {key:?} has no connection for user {user_id:?}"),
    )
}

/// A connection with its integration, for showing or using.
pub async fn get(
    app: &App,
    project_id: &str,
    key: &str,
    user_id: &str,
) -> ServiceResult<(Connection, IntegrationView)> {
    let view = integrations::get(app, project_id, key).await?;
    let connection = app
        .store
        .get_connection(project_id, key, user_id)
        .await?
        .ok_or_else(|| unknown_connection(key, user_id))?;
    Ok((connection, view))
}

/// Stores credentials for (integration, user): a new connection, or the
/// existing one with its credentials replaced and made active again.
/// Returns the connection and whether it was new.
pub async fn upsert(
    app: &App,
    view: &IntegrationView,
    user_id: &str,
    config: Map<String, Value>,
    creds: Credentials,
    scopes: Vec<String>,
) -> ServiceResult<(Connection, bool)> {
    let now = Utc::now();
    let record = &view.record;
    for _ in 0..3 {
        match app
            .store
            .get_connection(&record.project_id, &record.key, user_id)
            .await?
        {
            Some(mut existing) => {
                let expected = existing.version;
                existing.credentials = creds.seal(app, &existing.id)?;
                existing.expires_at = creds.expires_at();
                existing.scopes = scopes.clone();
                existing.connection_config = config.clone();
                let reconnected = existing.status != "active";
                existing.status = "active".into();
                existing.last_error = None;
                existing.updated_at = now;
                existing.refresh_failures = 0;
                existing.next_refresh_at = refresh::next_refresh_at(
                    &app.config.refresh,
                    refresh::refreshable(view, &creds),
                    creds.expires_at(),
                    now,
                );
                let event = events::about(
                    &existing,
                    if reconnected {
                        "reauthorized"
                    } else {
                        "credentials_replaced"
                    },
                    json!({}),
                );
                if app
                    .store
                    .update_connection(&existing, expected, Some(&event))
                    .await?
                {
                    app.proxy_cache
                        .forget_connection(&record.project_id, &record.key, user_id);
                    existing.version = expected + 1;
                    return Ok((existing, false));
                }
            }
            None => {
                let id = token::generate_id("con_");
                let connection = Connection {
                    credentials: creds.seal(app, &id)?,
                    id,
                    project_id: record.project_id.clone(),
                    integration_id: record.id.clone(),
                    integration_key: record.key.clone(),
                    user_id: user_id.to_string(),
                    auth_mode: view.definition.auth_mode.as_str().to_string(),
                    status: "active".into(),
                    scopes: scopes.clone(),
                    expires_at: creds.expires_at(),
                    connection_config: config.clone(),
                    created_at: now,
                    updated_at: now,
                    last_refresh_at: None,
                    refresh_count: 0,
                    last_error: None,
                    version: 1,
                    next_refresh_at: refresh::next_refresh_at(
                        &app.config.refresh,
                        refresh::refreshable(view, &creds),
                        creds.expires_at(),
                        now,
                    ),
                    refresh_failures: 0,
                };
                match app.store.insert_connection(&connection).await {
                    Ok(()) => {
                        let mode = connection.auth_mode.clone();
                        events::record(
                            app,
                            events::about(&connection, "created", json!({"auth_mode": mode})),
                        )
                        .await;
                        return Ok((connection, true));
                    }
                    // Another request created it a moment ago: update that one.
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Err(ServiceError::conflict(
        "connection_busy",
        "the connection is being changed by other requests; retry",
    ))
}

/// Listing with filters and a cursor.
pub struct Page {
    pub connections: Vec<Connection>,
    pub next_cursor: Option<String>,
}

pub async fn list(
    app: &App,
    project_id: &str,
    mut filter: ConnectionFilter,
    cursor: Option<&str>,
) -> ServiceResult<Page> {
    if let Some(status) = &filter.status
        && !matches!(
            status.as_str(),
            "active" | "reauthorization_required" | "revoked"
        )
    {
        return Err(ServiceError::invalid(
            "invalid_request",
            "status: must be active, reauthorization_required or revoked",
        ));
    }
    if !(1..=200).contains(&filter.limit) {
        return Err(ServiceError::invalid(
            "invalid_request",
            "limit: must be between 1 and 200",
        ));
    }
    filter.after = cursor.map(decode_cursor).transpose()?;
    let connections = app.store.list_connections(project_id, &filter).await?;
    let next_cursor = if connections.len() as i64 == filter.limit {
        connections
            .last()
            .map(|c| encode_cursor(c.created_at, &c.id))
    } else {
        None
    };
    Ok(Page {
        connections,
        next_cursor,
    })
}

pub(crate) fn encode_cursor(at: DateTime<Utc>, id: &str) -> String {
    use base64::Engine;
    let raw = format!("{}|{id}", at.timestamp_micros());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub(crate) fn decode_cursor(cursor: &str) -> ServiceResult<(DateTime<Utc>, String)> {
    use base64::Engine;
    let bad = || {
        ServiceError::invalid(
            "invalid_cursor",
            "cursor: not a cursor from a previous page; start again without it",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = raw.split_once('|').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((at, id.to_string()))
}

/// Fresh credentials, refreshed first when needed.
pub async fn token(
    app: &Arc<App>,
    project_id: &str,
    key: &str,
    user_id: &str,
    force: bool,
) -> ServiceResult<Arc<Live>> {
    let (connection, view) = get(app, project_id, key, user_id).await?;
    let trigger = if force { Trigger::Forced } else { Trigger::Use };
    refresh::fresh_credentials(app, connection, &view, trigger).await
}

/// Credentials made elsewhere, as `POST /v1/connections` takes them.
#[derive(Debug, Default)]
pub struct ImportedCredentials {
    pub access_token: Option<AccessToken>,
    pub refresh_token: Option<RefreshToken>,
    pub token_type: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub expires_in: Option<i64>,
    pub scopes: Option<Vec<String>>,
    pub api_key: Option<ApiKey>,
    pub username: Option<String>,
    pub password: Option<Password>,
    pub oauth_token: Option<AccessToken>,
    pub oauth_token_secret: Option<TokenSecret>,
}

/// Imports a connection, or (client credentials) makes one by asking the
/// provider for a token.
pub async fn import(
    app: &Arc<App>,
    project_id: &str,
    key: &str,
    user_id: &str,
    imported: ImportedCredentials,
    config: Map<String, Value>,
) -> ServiceResult<(Connection, bool)> {
    check_user_id(user_id)?;
    let view = integrations::get(app, project_id, key).await?;
    check_connection_config(&view.definition, &config)?;
    let missing = |field: &str, mode: AuthMode| {
        ServiceError::invalid(
            "invalid_request",
            format!("credentials.{field}: required for {mode} integrations"),
        )
    };
    let mode = view.definition.auth_mode;
    // OAuth 1.0a grants have no scopes, unless the app says what it asked for.
    let default_scopes = match mode {
        AuthMode::OAuth1 => Vec::new(),
        _ => view.record.scopes.clone(),
    };
    let mut scopes = imported.scopes.clone().unwrap_or(default_scopes);
    validate::scopes(&scopes)?;
    let creds = match mode {
        AuthMode::OAuth2 => {
            let expires_at = match (imported.expires_at, imported.expires_in) {
                (Some(at), _) => Some(at),
                (None, Some(secs)) if secs > 0 => {
                    Some(Utc::now() + chrono::Duration::seconds(secs))
                }
                (None, Some(_)) => {
                    return Err(ServiceError::invalid(
                        "invalid_request",
                        "credentials.expires_in: must be a positive number of seconds",
                    ));
                }
                (None, None) => None,
            };
            Credentials::OAuth2 {
                access_token: imported
                    .access_token
                    .ok_or_else(|| missing("access_token", mode))?,
                refresh_token: imported.refresh_token,
                token_type: imported.token_type.or(Some("Bearer".into())),
                expires_at,
                extra: Map::new(),
            }
        }
        AuthMode::OAuth2ClientCredentials => {
            let endpoints = providers::resolve(app, &view.definition, &config).await?;
            let grant_scopes = scopes.clone();
            let grant = Grant::ClientCredentials {
                scopes: &grant_scopes,
            };
            let tokens = refresh::call_token_endpoint(app, &view, &endpoints, &grant)
                .await?
                .map_err(|e| token_failure(&e))?;
            if let Some(granted) = &tokens.scopes {
                scopes = granted.clone();
            }
            Credentials::OAuth2 {
                expires_at: refresh::expiry_of(&view, &tokens, Utc::now()),
                access_token: tokens.access_token,
                refresh_token: None,
                token_type: tokens.token_type,
                extra: tokens.extra,
            }
        }
        AuthMode::ApiKey => Credentials::ApiKey {
            api_key: imported.api_key.ok_or_else(|| missing("api_key", mode))?,
        },
        AuthMode::Basic => Credentials::Basic {
            username: imported.username.ok_or_else(|| missing("username", mode))?,
            password: imported.password.ok_or_else(|| missing("password", mode))?,
        },
        AuthMode::OAuth1 => Credentials::OAuth1 {
            token: imported
                .oauth_token
                .ok_or_else(|| missing("oauth_token", mode))?,
            token_secret: imported
                .oauth_token_secret
                .ok_or_else(|| missing("oauth_token_secret", mode))?,
            extra: Map::new(),
        },
    };
    upsert(app, &view, user_id, config, creds, scopes).await
}

fn token_failure(err: &TokenCallError) -> ServiceError {
    ServiceError::Upstream {
        code: "token_request_failed",
        message: format!("the provider did not issue a token: {}", err.describe()),
    }
}

/// The verdict of `verify`.
pub struct Verification {
    pub valid: bool,
    pub detail: String,
}

/// Checks the credentials at the provider: introspection when it has it,
/// else its verification request.
pub async fn verify(
    app: &Arc<App>,
    project_id: &str,
    key: &str,
    user_id: &str,
) -> ServiceResult<Verification> {
    let (connection, view) = get(app, project_id, key, user_id).await?;
    let live = refresh::fresh_credentials(app, connection, &view, Trigger::Use).await?;
    let (connection, creds) = (&live.connection, &live.creds);
    let endpoints =
        providers::resolve(app, &view.definition, &connection.connection_config).await?;
    if let (Some(endpoint), Credentials::OAuth2 { access_token, .. }) =
        (&endpoints.introspection, &creds)
    {
        let (client_id, secret) = refresh::client_of(app, &view).await?;
        let client = ClientCredentials {
            client_id: &client_id,
            client_secret: &secret,
            method: view.definition.token_endpoint_auth_method,
        };
        let request = introspection_request(endpoint, access_token.expose_secret(), &client);
        let reply = outbound::send_form(app, &request)
            .await
            .map_err(|reason| upstream_failed("introspection", &reason))?;
        if !(200..300).contains(&reply.status) {
            return Err(upstream_failed(
                "introspection",
                &format!("answered HTTP {}", reply.status),
            ));
        }
        let result = parse_introspection(&reply.body)
            .map_err(|e| upstream_failed("introspection", &e.to_string()))?;
        return Ok(Verification {
            valid: result.active,
            detail: format!(
                "introspection says the token is {}",
                if result.active { "active" } else { "inactive" }
            ),
        });
    }
    let Some(check) = &view.definition.verification else {
        return Err(ServiceError::invalid(
            "not_supported",
            "this provider has neither an introspection endpoint nor a verification request",
        ));
    };
    let base = endpoints.api_base_url.as_deref().ok_or_else(|| {
        ServiceError::invalid("not_supported", "this provider has no api_base_url")
    })?;
    let url = url::Url::parse(&format!("{}{}", base.trim_end_matches('/'), check.path))
        .map_err(|e| upstream_failed("verification", &e.to_string()))?;
    crate::net::check_url(&url, app.config.allow_local_providers)
        .map_err(|e| upstream_failed("verification", &e))?;
    let method = reqwest::Method::from_bytes(check.method.as_bytes())
        .map_err(|e| upstream_failed("verification", &e.to_string()))?;
    let request = match creds {
        Credentials::Basic { username, password } => app
            .http
            .request(method, url)
            .basic_auth(username, Some(password.expose_secret())),
        Credentials::OAuth1 {
            token,
            token_secret,
            ..
        } => {
            let signer = oauth1::consumer_signer(app, &view)
                .await?
                .with_token(token.expose_secret(), token_secret.clone());
            let signed = signer
                .authorize(method.as_str(), url.as_str(), None, &[])
                .map_err(|e| oauth1::misconfigured(key, &e))?;
            app.http
                .request(method, url)
                .header(reqwest::header::AUTHORIZATION, signed.expose_secret())
        }
        Credentials::OAuth2 { access_token, .. } => {
            injected(app, method, url, &view, access_token.expose_secret())
        }
        Credentials::ApiKey { api_key } => {
            injected(app, method, url, &view, api_key.expose_secret())
        }
    };
    let resp = request
        .send()
        .await
        .map_err(|e| upstream_failed("verification", &outbound::describe(&e)))?;
    let status = resp.status().as_u16();
    Ok(Verification {
        valid: (200..300).contains(&status),
        detail: format!("{} {} answered HTTP {status}", check.method, check.path),
    })
}

/// A request carrying `secret` as the provider's `auth_injection` says.
fn injected(
    app: &App,
    method: reqwest::Method,
    mut url: url::Url,
    view: &IntegrationView,
    secret: &str,
) -> reqwest::RequestBuilder {
    match view.definition.auth_injection() {
        AuthInjection::Bearer => app.http.request(method, url).bearer_auth(secret),
        AuthInjection::Header { name, format } => {
            let value = format
                .as_deref()
                .unwrap_or("{api_key}")
                .replace("{api_key}", secret)
                .replace("{access_token}", secret);
            app.http.request(method, url).header(name, value)
        }
        AuthInjection::Query { name } => {
            url.query_pairs_mut().append_pair(&name, secret);
            app.http.request(method, url)
        }
    }
}

fn upstream_failed(what: &str, reason: &str) -> ServiceError {
    ServiceError::Upstream {
        code: "verification_failed",
        message: format!("the provider's {what} could not be used: {reason}"),
    }
}
