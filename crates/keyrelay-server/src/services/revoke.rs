//! Revoking a connection's tokens at the provider (RFC 7009) when it is
//! deleted: the refresh token first (revoking it ends the grant at most
//! providers), then the access token, each with its `token_type_hint` and
//! the app's client authentication.
//!
//! A revocation that fails for a reason worth retrying (a 5xx, a 429, the
//! network) is queued in the database with the tokens sealed, and retried
//! with backoff by [`retry_due`] until the provider accepts it or
//! [`MAX_ATTEMPTS`] is reached; then the row, and the tokens, are gone.

use std::sync::Arc;

use chrono::Utc;
use keyrelay_oauth::{ClientCredentials, revocation_request};
use keyrelay_store::Revocation;
use keyrelay_vault::token;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::{Zeroize, Zeroizing};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::connections;
use crate::services::credentials::Credentials;
use crate::services::events;
use crate::services::integrations::{self, IntegrationView};
use crate::services::{outbound, providers, refresh};
use crate::vault::Field;

/// Attempts in all (the first, at delete time, included).
pub const MAX_ATTEMPTS: i64 = 20;

/// What `DELETE /v1/connections/…` reports as `revoked_at_provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Yes,
    /// Not (yet): refused, or queued for a retry.
    No,
    /// The provider has no revocation endpoint.
    NotSupported,
}

/// The tokens still to revoke, as sealed in the queue.
#[derive(Serialize, Deserialize, Default, Zeroize)]
#[zeroize(drop)]
struct Pending {
    refresh_token: Option<String>,
    access_token: Option<String>,
    /// The connection's values for `{connection_config.…}` placeholders in
    /// the revocation endpoint: the connection is gone by the retry. (Not
    /// secret; absent from rows queued before it was kept.)
    #[serde(default)]
    #[zeroize(skip)]
    connection_config: serde_json::Map<String, serde_json::Value>,
}

impl Pending {
    /// In the order RFC 7009 suggests: refresh token, then access token.
    fn items(&self) -> Vec<(&str, &'static str)> {
        let mut items = Vec::new();
        if let Some(t) = &self.refresh_token {
            items.push((t.as_str(), "refresh_token"));
        }
        if let Some(t) = &self.access_token {
            items.push((t.as_str(), "access_token"));
        }
        items
    }

    fn forget(&mut self, hint: &str) {
        match hint {
            "refresh_token" => self.refresh_token = None,
            _ => self.access_token = None,
        }
    }
}

enum Attempt {
    Done,
    /// Worth trying again later (5xx, 429, network).
    Retry(String),
    /// The provider said no in a way retrying will not change.
    Refused(String),
}

/// Sends each pending token; stops at the first failure, leaving what is
/// left in `pending`.
async fn attempt(
    app: &App,
    view: &IntegrationView,
    endpoint: &str,
    pending: &mut Pending,
) -> ServiceResult<Attempt> {
    let (client_id, secret) = refresh::client_of(app, view).await?;
    let client = ClientCredentials {
        client_id: &client_id,
        client_secret: &secret,
        method: view.definition.token_endpoint_auth_method,
    };
    let items: Vec<(Zeroizing<String>, &'static str)> = pending
        .items()
        .into_iter()
        .map(|(t, h)| (Zeroizing::new(t.to_string()), h))
        .collect();
    for (token, hint) in items {
        let request = revocation_request(endpoint, &token, hint, &client);
        match outbound::send_form(app, &request).await {
            Ok(reply) if (200..300).contains(&reply.status) => pending.forget(hint),
            Ok(reply) if reply.status == 429 || reply.status >= 500 => {
                return Ok(Attempt::Retry(format!(
                    "the revocation endpoint answered HTTP {}",
                    reply.status
                )));
            }
            Ok(reply) => {
                return Ok(Attempt::Refused(format!(
                    "the revocation endpoint refused the {hint} with HTTP {}",
                    reply.status
                )));
            }
            Err(reason) => return Ok(Attempt::Retry(reason)),
        }
    }
    Ok(Attempt::Done)
}

/// Revokes at the provider (or queues the revocation), then deletes the
/// connection and its credentials.
pub async fn delete_connection(
    app: &Arc<App>,
    project_id: &str,
    key: &str,
    user_id: &str,
    reason: Option<String>,
) -> ServiceResult<Revoked> {
    let (connection, view) = connections::get(app, project_id, key, user_id).await?;
    let creds = Credentials::open(app, &connection.id, &connection.credentials).await?;
    let mut pending = match &creds {
        Credentials::OAuth2 {
            access_token,
            refresh_token,
            ..
        } => Pending {
            refresh_token: refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_string()),
            access_token: Some(access_token.expose_secret().to_string()),
            connection_config: connection.connection_config.clone(),
        },
        _ => Pending::default(),
    };
    let endpoint = if pending.items().is_empty() {
        None
    } else {
        providers::resolve(app, &view.definition, &connection.connection_config)
            .await
            .ok()
            .and_then(|e| e.revocation)
    };
    let (revoked, detail) = match &endpoint {
        None => (Revoked::NotSupported, None),
        Some(endpoint) => match attempt(app, &view, endpoint, &mut pending).await? {
            Attempt::Done => (Revoked::Yes, None),
            Attempt::Refused(why) => (Revoked::No, Some(why)),
            Attempt::Retry(why) => {
                queue(app, &connection, &pending, reason.clone(), &why).await?;
                (Revoked::No, Some(format!("{why}; keyrelay retries later")))
            }
        },
    };
    app.proxy_cache.forget_connection(project_id, key, user_id);
    if !app.store.delete_connection(&connection.id).await? {
        return Err(ServiceError::not_found(
            "unknown_connection",
            format!("integration {key:?} has no connection for user {user_id:?}"),
        ));
    }
    if revoked == Revoked::Yes {
        events::record(
            app,
            events::about(&connection, "revoked", json!({"reason": reason})),
        )
        .await;
    }
    let at_provider = match revoked {
        Revoked::Yes => json!(true),
        Revoked::No => json!(false),
        Revoked::NotSupported => json!("not_supported"),
    };
    events::record(
        app,
        events::about(
            &connection,
            "deleted",
            json!({"reason": reason, "revoked_at_provider": at_provider, "revocation_detail": detail}),
        ),
    )
    .await;
    Ok(revoked)
}

async fn queue(
    app: &App,
    connection: &keyrelay_store::Connection,
    pending: &Pending,
    reason: Option<String>,
    why: &str,
) -> ServiceResult<()> {
    let id = token::generate_id("rev_");
    let json = Zeroizing::new(
        serde_json::to_vec(pending)
            .map_err(|e| keyrelay_vault::VaultError::Malformed(e.to_string()))?,
    );
    let now = Utc::now();
    let row = Revocation {
        tokens: app
            .vault
            .seal(Field::new("revocations", &id, "tokens"), &json),
        id,
        project_id: connection.project_id.clone(),
        integration_id: connection.integration_id.clone(),
        integration_key: connection.integration_key.clone(),
        user_id: connection.user_id.clone(),
        reason,
        attempts: 1,
        next_attempt_at: refresh::backoff(1, None, now),
        last_error: Some(why.to_string()),
        created_at: now,
    };
    app.store.insert_revocation(&row).await?;
    Ok(())
}

/// Retries the queued revocations whose time has come; returns how many
/// were settled (revoked, or given up).
pub async fn retry_due(app: &Arc<App>) -> ServiceResult<usize> {
    let now = Utc::now();
    let lease =
        chrono::Duration::from_std(app.config.refresh.lease).unwrap_or(chrono::Duration::MAX);
    let due = app
        .store
        .claim_due_revocations(now, now + lease, 50)
        .await?;
    let mut settled = 0;
    for row in due {
        if retry_one(app, &row).await? {
            settled += 1;
        }
    }
    Ok(settled)
}

async fn retry_one(app: &Arc<App>, row: &Revocation) -> ServiceResult<bool> {
    let json = app
        .vault
        .open_field(Field::new("revocations", &row.id, "tokens"), &row.tokens)
        .await?;
    let mut pending: Pending = serde_json::from_slice(&json).map_err(|e| {
        keyrelay_store::StoreError::Corrupt(format!("a queued revocation is not valid: {e}"))
    })?;
    let view = integrations::get(app, &row.project_id, &row.integration_key).await;
    let outcome = match &view {
        Ok(view) => {
            let endpoint = providers::resolve(app, &view.definition, &pending.connection_config)
                .await
                .ok()
                .and_then(|e| e.revocation);
            match endpoint {
                Some(endpoint) => attempt(app, view, &endpoint, &mut pending).await?,
                None => Attempt::Refused("the provider no longer has a revocation endpoint".into()),
            }
        }
        Err(_) => Attempt::Refused("the integration was deleted".into()),
    };
    let attempts = row.attempts + 1;
    let (kind, detail) = match outcome {
        Attempt::Done => (
            "revoked",
            json!({"reason": row.reason, "attempts": attempts}),
        ),
        Attempt::Retry(why) if attempts < MAX_ATTEMPTS => {
            let next = refresh::backoff(attempts, None, Utc::now());
            app.store
                .reschedule_revocation(&row.id, attempts, next, &why)
                .await?;
            return Ok(false);
        }
        Attempt::Retry(why) | Attempt::Refused(why) => (
            "revocation_failed",
            json!({"reason": row.reason, "attempts": attempts, "error": why}),
        ),
    };
    app.store.delete_revocation(&row.id).await?;
    events::record(
        app,
        keyrelay_store::Event {
            id: token::generate_id("evt_"),
            project_id: row.project_id.clone(),
            integration_key: row.integration_key.clone(),
            user_id: row.user_id.clone(),
            kind: kind.into(),
            detail,
            created_at: Utc::now(),
        },
    )
    .await;
    Ok(true)
}
