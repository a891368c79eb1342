//! The refresh engine: every path that needs fresh credentials (the proxy,
//! `…/token`, `…/refresh`, the scheduler) comes through [`fresh_credentials`].
//!
//! - Inside a process, one refresh per connection at a time: callers queue
//!   on the connection's gate, and those who saw the same version get the
//!   first one's result (success or failure) without calling the provider.
//! - Across instances sharing a database, the refresher first takes the
//!   connection's lease with one conditional UPDATE; an instance that finds
//!   it taken waits for the holder's write (or for the lease to lapse, if
//!   the holder died). The write is checked against the version read, so a
//!   slow instance never overwrites newer credentials.
//! - The new credentials are committed before anyone sees them, and the
//!   refresh runs in its own task, so it completes even when the request
//!   that started it goes away.

mod schedule;
mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use keyrelay_catalog::AuthMode;
use keyrelay_oauth::{Grant, TokenSet};
use keyrelay_store::Connection;
use serde_json::json;

pub use schedule::{backoff, margin, needs_refresh, next_refresh_at};
pub use token::{
    FailureClass, TokenCallError, call_token_endpoint, client_of, exchange_code, expiry_of,
};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::proxy::cache::Live;
use crate::services::credentials::Credentials;
use crate::services::events;
use crate::services::integrations::IntegrationView;

/// Why fresh credentials are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// About to be used: refresh only when expired or inside the margin.
    Use,
    /// The provider refused the credentials of the version seen (a 401).
    Rejected,
    /// Asked for explicitly (`force_refresh`, `…/refresh`).
    Forced,
    /// The scheduler found the connection due.
    Scheduled,
}

/// The in-process half of single-flight, and this instance's lease name.
pub struct Refresher {
    owner: String,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

/// One connection's queue. It keeps the last outcome, so that everyone who
/// queued behind a refresh of the same version shares it.
#[derive(Default)]
struct Gate {
    settled: tokio::sync::Mutex<Option<Settled>>,
}

struct Settled {
    /// The version the refresh started from.
    from_version: i64,
    outcome: ServiceResult<Arc<Live>>,
}

impl Default for Refresher {
    fn default() -> Self {
        Refresher {
            owner: keyrelay_vault::token::generate_id("ins_"),
            gates: Mutex::new(HashMap::new()),
        }
    }
}

impl Refresher {
    /// This instance's name in leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn gate(&self, connection_id: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates.retain(|_, g| Arc::strong_count(g) > 1);
        gates.entry(connection_id.to_string()).or_default().clone()
    }
}

/// When the connection's current credentials were issued, for the margin
/// rule (every credential write stamps `updated_at`).
pub fn issued_at(connection: &Connection) -> DateTime<Utc> {
    connection.updated_at
}

/// Whether keyrelay can get new credentials for it on its own.
pub fn refreshable(view: &IntegrationView, creds: &Credentials) -> bool {
    match (creds, view.definition.auth_mode) {
        (_, AuthMode::OAuth2ClientCredentials) => true,
        (Credentials::OAuth2 { refresh_token, .. }, _) => refresh_token.is_some(),
        _ => false,
    }
}

/// Whether the credentials must be refreshed before they are used.
pub fn due_for_use(app: &App, live: &Live) -> bool {
    needs_refresh(
        &app.config.refresh,
        issued_at(&live.connection),
        live.creds.expires_at(),
        Utc::now(),
    )
}

/// The connection's credentials, fresh enough for `trigger`.
pub async fn fresh_credentials(
    app: &Arc<App>,
    connection: Connection,
    view: &IntegrationView,
    trigger: Trigger,
) -> ServiceResult<Arc<Live>> {
    ensure_usable(&connection)?;
    let creds = Credentials::open(app, &connection.id, &connection.credentials).await?;
    let live = Live::new(connection, creds);
    if trigger == Trigger::Use && (!due_for_use(app, &live) || !refreshable(view, &live.creds)) {
        return Ok(Arc::new(live));
    }
    let app = app.clone();
    let view = view.clone();
    let seen = live.connection;
    let task = tokio::spawn(async move { shared_refresh(&app, seen, &view, trigger).await });
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

/// Queues on the connection's gate; the first in refreshes, the others who
/// saw the same version take its outcome.
async fn shared_refresh(
    app: &App,
    seen: Connection,
    view: &IntegrationView,
    trigger: Trigger,
) -> ServiceResult<Arc<Live>> {
    let gate = app.refresher.gate(&seen.id);
    let mut settled = gate.settled.lock().await;
    if let Some(s) = settled.as_ref()
        && s.from_version >= seen.version
    {
        return s.outcome.clone();
    }
    let from_version = seen.version;
    let outcome = refresh_once(app, seen, view, trigger).await;
    *settled = Some(Settled {
        from_version,
        outcome: outcome.clone(),
    });
    outcome
}

/// Polls for another instance's refresh this often.
const LEASE_POLL: StdDuration = StdDuration::from_millis(50);

/// Refreshes unless what is committed makes it unnecessary, holding the
/// cross-instance lease while the provider is called.
async fn refresh_once(
    app: &App,
    seen: Connection,
    view: &IntegrationView,
    trigger: Trigger,
) -> ServiceResult<Arc<Live>> {
    let cfg = &app.config.refresh;
    let give_up = tokio::time::Instant::now() + cfg.lease + StdDuration::from_secs(5);
    loop {
        // Start from what is committed: someone may have refreshed already.
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
        let moved = current.version != seen.version;
        let live = Live::new(current, creds);
        let expired = live.creds.expires_at().is_some_and(|at| at <= now);
        let still_due = match trigger {
            Trigger::Use => due_for_use(app, &live),
            Trigger::Rejected | Trigger::Forced => !moved,
            Trigger::Scheduled => live.connection.next_refresh_at.is_some_and(|at| at <= now),
        };
        if !still_due {
            return Ok(Arc::new(live));
        }
        if !refreshable(view, &live.creds) {
            if trigger == Trigger::Forced {
                return Err(ServiceError::invalid(
                    "not_refreshable",
                    "this connection has no refresh token (OAuth 1.0a, API-key and basic connections have none), so it cannot be refreshed",
                ));
            }
            // Nothing to refresh with: hand out what we have; a 401 will tell.
            return Ok(Arc::new(live));
        }
        // After transient failures, wait out the backoff (unless forced):
        // the old token is used while it is valid.
        let backing_off = live.connection.refresh_failures > 0
            && live.connection.next_refresh_at.is_some_and(|at| at > now);
        if backing_off && trigger != Trigger::Forced {
            if !expired && trigger != Trigger::Rejected {
                return Ok(Arc::new(live));
            }
            return Err(backing_off_error(&live.connection));
        }
        let until = now + chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::MAX);
        if app
            .store
            .lease_connection(
                &live.connection.id,
                live.connection.version,
                app.refresher.owner(),
                now,
                until,
            )
            .await?
        {
            return refresh_leased(app, live, view, trigger).await;
        }
        // Another instance is refreshing (or has just written a newer
        // version): read again until its write lands or its lease lapses.
        if tokio::time::Instant::now() >= give_up {
            return Err(ServiceError::Upstream {
                code: "refresh_failed",
                message: "another keyrelay instance has been refreshing this connection for too long; retry".into(),
            });
        }
        tokio::time::sleep(LEASE_POLL).await;
    }
}

fn backing_off_error(connection: &Connection) -> ServiceError {
    let last = connection
        .last_error
        .as_ref()
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .unwrap_or("the last refresh failed");
    ServiceError::Upstream {
        code: "refresh_failed",
        message: format!(
            "refreshing the token failed ({last}); keyrelay retries at {}",
            connection
                .next_refresh_at
                .map(crate::http::timestamp)
                .unwrap_or_default()
        ),
    }
}

/// Calls the provider while holding the lease; every way out either writes
/// the connection (which releases the lease) or releases it.
async fn refresh_leased(
    app: &App,
    live: Live,
    view: &IntegrationView,
    trigger: Trigger,
) -> ServiceResult<Arc<Live>> {
    let outcome = call_provider(app, &live, view).await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            release(app, &live.connection).await;
            return Err(e);
        }
    };
    match outcome {
        Ok(tokens) => save_refreshed(app, live, view, tokens).await,
        Err(err) => record_failure(app, live, view, &err, trigger).await,
    }
}

async fn release(app: &App, connection: &Connection) {
    if let Err(e) = app
        .store
        .release_connection_lease(&connection.id, app.refresher.owner())
        .await
    {
        tracing::warn!(error = %e, "could not release a refresh lease (it lapses on its own)");
    }
}

async fn call_provider(
    app: &App,
    live: &Live,
    view: &IntegrationView,
) -> ServiceResult<Result<TokenSet, TokenCallError>> {
    let connection = &live.connection;
    let endpoints =
        crate::services::providers::resolve(app, &view.definition, &connection.connection_config)
            .await?;
    match (&live.creds, view.definition.auth_mode) {
        (_, AuthMode::OAuth2ClientCredentials) => {
            let grant = Grant::ClientCredentials {
                scopes: &connection.scopes,
            };
            call_token_endpoint(app, view, &endpoints, &grant).await
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
            call_token_endpoint(app, view, &endpoints, &grant).await
        }
        _ => Err(ServiceError::invalid(
            "not_refreshable",
            "this connection has no refresh token (OAuth 1.0a, API-key and basic connections have none), so it cannot be refreshed",
        )),
    }
}

/// Commits the new credentials (keeping the refresh token when the provider
/// did not rotate it, and the provider's other reply fields), then hands
/// them out.
async fn save_refreshed(
    app: &App,
    live: Live,
    view: &IntegrationView,
    tokens: TokenSet,
) -> ServiceResult<Arc<Live>> {
    let now = Utc::now();
    let Live {
        connection: mut c,
        creds: old,
        ..
    } = live;
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
    let rotated = tokens.refresh_token.is_some();
    let creds = Credentials::OAuth2 {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token.or(old_refresh),
        token_type: tokens.token_type,
        expires_at,
        extra,
    };
    let expected = c.version;
    c.credentials = creds.seal(app, &c.id)?;
    c.expires_at = expires_at;
    if let Some(scopes) = tokens.scopes {
        c.scopes = scopes;
    }
    c.status = "active".into();
    c.last_error = None;
    c.last_refresh_at = Some(now);
    c.refresh_count += 1;
    c.refresh_failures = 0;
    c.updated_at = now;
    c.next_refresh_at = next_refresh_at(
        &app.config.refresh,
        refreshable(view, &creds),
        expires_at,
        now,
    );
    let event = events::about(
        &c,
        "refreshed",
        json!({"rotated_refresh_token": rotated, "expires_at": expires_at.map(crate::http::timestamp)}),
    );
    if !app
        .store
        .update_connection(&c, expected, Some(&event))
        .await?
    {
        // Someone wrote meanwhile (a reconnect, another instance): theirs
        // is newer, and the tokens we got are dropped.
        return Err(ServiceError::conflict(
            "refresh_conflict",
            "the connection changed while it was being refreshed; retry",
        ));
    }
    c.version = expected + 1;
    if view.record.problem.is_some() {
        clear_problem(app, view).await;
    }
    // Drop any cached copy; the proxy caches the new one when it uses it
    // (the scheduler must not fill the cache with every connection it
    // refreshes).
    app.proxy_cache
        .forget_connection(&c.project_id, &c.integration_key, &c.user_id);
    Ok(Arc::new(Live::new(c, creds)))
}

async fn clear_problem(app: &App, view: &IntegrationView) {
    if let Err(e) = app
        .store
        .set_integration_problem(&view.record.id, None)
        .await
    {
        tracing::warn!(error = %e, "could not clear an integration problem");
    }
    app.proxy_cache
        .forget_integration(&view.record.project_id, &view.record.key);
}

/// Records a failed refresh by its class (see [`FailureClass`]) and says
/// what the caller gets: the error, or for a transient failure during
/// ordinary use, the old credentials while they are still valid.
async fn record_failure(
    app: &App,
    live: Live,
    view: &IntegrationView,
    err: &TokenCallError,
    trigger: Trigger,
) -> ServiceResult<Arc<Live>> {
    let now = Utc::now();
    let class = err.class();
    let Live {
        connection: mut c,
        creds,
        ..
    } = live;
    let last_error = json!({
        "code": err.code(),
        "message": err.describe(),
        "at": crate::http::timestamp(now),
    });
    c.last_error = Some(last_error.clone());
    c.updated_at = now;
    let kind = match class {
        FailureClass::Dead => {
            c.status = "reauthorization_required".into();
            c.next_refresh_at = None;
            "reauthorization_required"
        }
        FailureClass::ClientRejected | FailureClass::Transient => {
            c.refresh_failures += 1;
            c.next_refresh_at = Some(backoff(c.refresh_failures, err.retry_after(), now));
            "refresh_failed"
        }
    };
    let event = events::about(
        &c,
        kind,
        json!({"code": err.code(), "reason": err.describe(), "class": format!("{class:?}").to_lowercase()}),
    );
    let expected = c.version;
    match app
        .store
        .update_connection(&c, expected, Some(&event))
        .await
    {
        Ok(true) => c.version = expected + 1,
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not record a refresh failure"),
    }
    app.proxy_cache
        .forget_connection(&c.project_id, &c.integration_key, &c.user_id);
    match class {
        FailureClass::Dead => Err(ServiceError::conflict(
            "reauthorization_required",
            format!(
                "the provider no longer accepts this grant ({}); send the user through a new connect session",
                err.describe()
            ),
        )),
        FailureClass::ClientRejected => {
            let problem = json!({
                "code": err.code(),
                "message": format!("the provider refused the integration's client_id/client_secret: {}", err.describe()),
                "at": crate::http::timestamp(now),
            });
            if let Err(e) = app
                .store
                .set_integration_problem(&view.record.id, Some(&problem))
                .await
            {
                tracing::warn!(error = %e, "could not flag an integration");
            }
            app.proxy_cache
                .forget_integration(&view.record.project_id, &view.record.key);
            Err(ServiceError::Upstream {
                code: "refresh_failed",
                message: format!(
                    "the provider refused integration {:?}'s client credentials ({}); fix its client_id/client_secret with PATCH /v1/integrations/{}",
                    view.record.key,
                    err.describe(),
                    view.record.key
                ),
            })
        }
        FailureClass::Transient => {
            let valid = creds.expires_at().is_none_or(|at| at > now);
            if valid && matches!(trigger, Trigger::Use | Trigger::Scheduled) {
                return Ok(Arc::new(Live::new(c, creds)));
            }
            Err(ServiceError::Upstream {
                code: "refresh_failed",
                message: format!(
                    "refreshing the token failed: {}; keyrelay retries on its own",
                    err.describe()
                ),
            })
        }
    }
}
