//! Getting tokens from token endpoints: the code exchange, refreshes and
//! client-credentials grants. Every refresh of a connection goes through
//! `fresh_credentials`, single-flight per connection inside this process and
//! checked against the row's version on write (the seam the full refresh
//! engine, with cross-instance leases and a scheduler, builds on).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use keyrelay_catalog::AuthMode;
use keyrelay_oauth::{ClientCredentials, Grant, TokenError, TokenSet, parse_token_response};
use keyrelay_store::Connection;
use keyrelay_vault::{AuthorizationCode, ClientSecret, PkceVerifier};
use serde_json::json;

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::credentials::Credentials;
use crate::services::integrations::{self, IntegrationView};
use crate::services::outbound;
use crate::services::providers::Endpoints;

/// Refresh this long before expiry.
const REFRESH_MARGIN: Duration = Duration::minutes(5);

/// Per-connection locks, so concurrent callers share one refresh.
#[derive(Default)]
pub struct Refresher {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Refresher {
    fn lock_for(&self, connection_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(connection_id.to_string()).or_default().clone()
    }
}

/// Why a token call failed, in the terms the callers map to responses.
#[derive(Debug)]
pub enum TokenCallError {
    /// The provider answered with an OAuth error code.
    Refused {
        error: String,
        description: Option<String>,
    },
    /// The reply was not a token reply, or the network failed.
    Failed(String),
}

impl TokenCallError {
    pub fn describe(&self) -> String {
        match self {
            TokenCallError::Refused { error, description } => match description {
                Some(d) => format!("the provider answered {error}: {d}"),
                None => format!("the provider answered {error}"),
            },
            TokenCallError::Failed(reason) => reason.clone(),
        }
    }
}

/// The app's client id and decrypted secret for an integration.
pub async fn client_of(app: &App, view: &IntegrationView) -> ServiceResult<(String, ClientSecret)> {
    let id = view.record.client_id.clone().unwrap_or_default();
    let secret = integrations::client_secret(app, &view.record.project_id, &view.record.key)
        .await?
        .ok_or_else(|| {
            ServiceError::invalid(
                "integration_misconfigured",
                format!(
                    "integration {:?} has no client_secret; PATCH it with one",
                    view.record.key
                ),
            )
        })?;
    Ok((id, secret))
}

/// Sends one grant to the token endpoint and parses the reply leniently.
pub async fn call_token_endpoint(
    app: &App,
    view: &IntegrationView,
    endpoints: &Endpoints,
    grant: &Grant<'_>,
) -> ServiceResult<Result<TokenSet, TokenCallError>> {
    let def = &view.definition;
    let token_endpoint = endpoints.token.as_deref().ok_or_else(|| {
        ServiceError::invalid(
            "integration_misconfigured",
            "the provider has no token endpoint",
        )
    })?;
    let (client_id, secret) = client_of(app, view).await?;
    let client = ClientCredentials {
        client_id: &client_id,
        client_secret: &secret,
        method: def.token_endpoint_auth_method,
    };
    let request = keyrelay_oauth::token_request(
        token_endpoint,
        grant,
        &client,
        def.scope_separator(),
        &def.token_params,
    );
    let reply = match outbound::send_form(app, &request).await {
        Ok(reply) => reply,
        Err(reason) => return Ok(Err(TokenCallError::Failed(reason))),
    };
    let parsed = parse_token_response(
        reply.status,
        reply.content_type.as_deref(),
        &reply.body,
        def.token_response.as_ref(),
        def.scope_separator(),
    );
    Ok(parsed.map_err(|e| match e {
        TokenError::OAuth {
            error, description, ..
        } => TokenCallError::Refused { error, description },
        other => TokenCallError::Failed(other.to_string()),
    }))
}

/// Exchanges an authorization code.
pub async fn exchange_code(
    app: &App,
    view: &IntegrationView,
    endpoints: &Endpoints,
    code: &AuthorizationCode,
    redirect_uri: &str,
    verifier: Option<&PkceVerifier>,
) -> ServiceResult<Result<TokenSet, TokenCallError>> {
    let grant = Grant::AuthorizationCode {
        code,
        redirect_uri,
        code_verifier: verifier,
    };
    call_token_endpoint(app, view, endpoints, &grant).await
}

/// When the access token of `tokens` expires: its `expires_in`, else the
/// lifetime the catalog says the provider's tokens have.
pub fn expiry_of(
    view: &IntegrationView,
    tokens: &TokenSet,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    tokens
        .expires_in
        .or(view.definition.token_lifetime_seconds)
        .and_then(|s| i64::try_from(s).ok())
        .map(|s| now + Duration::seconds(s))
}

pub fn needs_refresh(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|at| at - now <= REFRESH_MARGIN)
}

/// The connection's credentials, refreshed first when they expire within the
/// margin (or when `force`). One refresh per connection at a time; it runs
/// in its own task, so it completes even if the caller goes away.
pub async fn fresh_credentials(
    app: &Arc<App>,
    connection: Connection,
    view: &IntegrationView,
    force: bool,
) -> ServiceResult<(Connection, Credentials)> {
    ensure_usable(&connection)?;
    let creds = Credentials::open(app, &connection.id, &connection.credentials).await?;
    let now = Utc::now();
    if !force && !needs_refresh(creds.expires_at(), now) {
        return Ok((connection, creds));
    }
    let app = app.clone();
    let view = view.clone();
    let task = tokio::spawn(async move { refresh_locked(&app, connection, &view, force).await });
    task.await.map_err(|e| ServiceError::Upstream {
        code: "refresh_failed",
        message: format!("the refresh task failed: {e}"),
    })?
}

fn ensure_usable(connection: &Connection) -> ServiceResult<()> {
    if connection.status == "reauthorization_required" {
        return Err(ServiceError::conflict(
            "reauthorization_required",
            format!(
                "the grant of user {:?} at {:?} is no longer valid; send the user through a new connect session",
                connection.user_id, connection.integration_key
            ),
        ));
    }
    Ok(())
}

async fn refresh_locked(
    app: &App,
    seen: Connection,
    view: &IntegrationView,
    force: bool,
) -> ServiceResult<(Connection, Credentials)> {
    let lock = app.refresher.lock_for(&seen.id);
    let _guard = lock.lock().await;
    // Someone may have refreshed while we waited: start from what is committed.
    let current = app
        .store
        .get_connection(&seen.project_id, &seen.integration_key, &seen.user_id)
        .await?
        .ok_or_else(|| {
            ServiceError::not_found("unknown_connection", "the connection was deleted")
        })?;
    ensure_usable(&current)?;
    let creds = Credentials::open(app, &current.id, &current.credentials).await?;
    let now = Utc::now();
    let refreshed_meanwhile = current.version != seen.version;
    if (refreshed_meanwhile || !force) && !needs_refresh(creds.expires_at(), now) {
        return Ok((current, creds));
    }
    let endpoints =
        crate::services::providers::resolve(app, &view.definition, &current.connection_config)
            .await?;
    let outcome = match (&creds, view.definition.auth_mode) {
        (_, AuthMode::OAuth2ClientCredentials) => {
            let scopes = current.scopes.clone();
            let grant = Grant::ClientCredentials { scopes: &scopes };
            call_token_endpoint(app, view, &endpoints, &grant).await?
        }
        (
            Credentials::OAuth2 {
                refresh_token: Some(rt),
                ..
            },
            _,
        ) => {
            let grant = Grant::RefreshToken {
                refresh_token: rt,
                scopes: None,
            };
            call_token_endpoint(app, view, &endpoints, &grant).await?
        }
        _ if force => {
            return Err(ServiceError::invalid(
                "not_refreshable",
                "this connection has no refresh token, so it cannot be refreshed",
            ));
        }
        // Nothing to refresh with: hand out what we have; a 401 will tell.
        _ => return Ok((current, creds)),
    };
    match outcome {
        Ok(tokens) => save_refreshed(app, current, creds, view, tokens).await,
        Err(err) => Err(record_failure(app, current, &err).await),
    }
}

async fn save_refreshed(
    app: &App,
    mut connection: Connection,
    old: Credentials,
    view: &IntegrationView,
    tokens: TokenSet,
) -> ServiceResult<(Connection, Credentials)> {
    let now = Utc::now();
    // Providers that do not rotate refresh tokens omit them: keep the old one.
    let (old_refresh, mut extra) = match old {
        Credentials::OAuth2 {
            refresh_token,
            extra,
            ..
        } => (refresh_token, extra),
        _ => (None, serde_json::Map::new()),
    };
    extra.extend(tokens.extra.clone());
    let expires_at = expiry_of(view, &tokens, now);
    let creds = Credentials::OAuth2 {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token.or(old_refresh),
        token_type: tokens.token_type,
        expires_at,
        extra,
    };
    let expected = connection.version;
    connection.credentials = creds.seal(app, &connection.id)?;
    connection.expires_at = expires_at;
    if let Some(scopes) = tokens.scopes {
        connection.scopes = scopes;
    }
    connection.status = "active".into();
    connection.last_error = None;
    connection.last_refresh_at = Some(now);
    connection.refresh_count += 1;
    connection.updated_at = now;
    if !app.store.update_connection(&connection, expected).await? {
        return Err(ServiceError::conflict(
            "refresh_conflict",
            "the connection changed while it was being refreshed; retry",
        ));
    }
    connection.version = expected + 1;
    app.proxy_cache.forget_connection(
        &connection.project_id,
        &connection.integration_key,
        &connection.user_id,
    );
    Ok((connection, creds))
}

/// Records a failed refresh. `invalid_grant` (and `invalid_token`) mean the
/// grant is dead: the connection needs the user again. Anything else is
/// recorded and the connection stays active.
async fn record_failure(
    app: &App,
    mut connection: Connection,
    err: &TokenCallError,
) -> ServiceError {
    let dead = matches!(err, TokenCallError::Refused { error, .. } if error == "invalid_grant" || error == "invalid_token");
    let now = Utc::now();
    let code = match err {
        TokenCallError::Refused { error, .. } => error.clone(),
        TokenCallError::Failed(_) => "refresh_failed".into(),
    };
    connection.last_error = Some(json!({
        "code": code,
        "message": err.describe(),
        "at": crate::http::timestamp(now),
    }));
    if dead {
        connection.status = "reauthorization_required".into();
    }
    connection.updated_at = now;
    let expected = connection.version;
    if let Err(e) = app.store.update_connection(&connection, expected).await {
        tracing::warn!(error = %e, "could not record a refresh failure");
    }
    app.proxy_cache.forget_connection(
        &connection.project_id,
        &connection.integration_key,
        &connection.user_id,
    );
    if dead {
        ServiceError::conflict(
            "reauthorization_required",
            format!(
                "the provider no longer accepts this grant ({}); send the user through a new connect session",
                err.describe()
            ),
        )
    } else {
        ServiceError::Upstream {
            code: "refresh_failed",
            message: format!("refreshing the token failed: {}", err.describe()),
        }
    }
}
