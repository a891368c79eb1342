//! The background scheduler: refreshes connections before they expire and
//! keeps idle refresh tokens alive, and retries queued revocations.
//!
//! Every instance may run it. Due connections are claimed in batches with
//! one UPDATE that takes their leases, so instances never refresh the same
//! connection twice; the refreshes themselves go through the same engine as
//! every other path, with bounded concurrency so that proxy traffic is not
//! starved.

use std::sync::Arc;

use chrono::Utc;
use futures_util::StreamExt;
use keyrelay_store::Connection;

use crate::app::App;
use crate::error::ServiceResult;
use crate::services::integrations::{self, IntegrationView};
use crate::services::refresh::{self, Trigger};
use crate::services::revoke;

/// Runs until `stop` turns true; then finishes the refreshes in flight
/// (so that no token the provider has issued is dropped) and returns.
pub async fn run(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(app.config.refresh.scheduler_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = refresh_due(&app, &stop).await {
            tracing::warn!(error = %e, "scheduled refreshes failed; retrying on the next tick");
        }
        if *stop.borrow() {
            return;
        }
        if let Err(e) = revoke::retry_due(&app).await {
            tracing::warn!(error = %e, "queued revocations failed; retrying on the next tick");
        }
    }
}

/// Refreshes every connection due now; returns how many were looked at.
pub async fn refresh_due(
    app: &Arc<App>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> ServiceResult<usize> {
    let cfg = &app.config.refresh;
    let concurrency = cfg.scheduler_concurrency.max(1);
    let batch = i64::try_from(concurrency * 8).unwrap_or(256);
    let lease = chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::MAX);
    let mut total = 0;
    loop {
        if *stop.borrow() {
            return Ok(total);
        }
        let now = Utc::now();
        let claimed = app
            .store
            .claim_due_connections(app.refresher.owner(), now, now + lease, batch)
            .await?;
        if claimed.is_empty() {
            return Ok(total);
        }
        total += claimed.len();
        futures_util::stream::iter(claimed)
            .for_each_concurrent(concurrency, |c| refresh_claimed(app, c, stop))
            .await;
    }
}

async fn refresh_claimed(
    app: &Arc<App>,
    claimed: Connection,
    stop: &tokio::sync::watch::Receiver<bool>,
) {
    let id = claimed.id.clone();
    if *stop.borrow() {
        // Shutting down: give back the claims not started yet.
        reschedule(app, &id, claimed.next_refresh_at).await;
        return;
    }
    let version = claimed.version;
    let view = match integration(app, &claimed).await {
        Ok(view) => view,
        Err(e) => {
            tracing::debug!(error = %e, "a scheduled connection's integration is gone");
            reschedule(app, &id, None).await;
            return;
        }
    };
    match refresh::fresh_credentials(app, claimed, &view, Trigger::Scheduled).await {
        // Refreshed (or failed and recorded): the write released the lease.
        Ok(live) if live.connection.version != version => {}
        // Nothing was written (not refreshable, or no longer due): look
        // again when its credentials call for it.
        Ok(live) => {
            let next = refresh::next_refresh_at(
                &app.config.refresh,
                refresh::refreshable(&view, &live.creds),
                live.creds.expires_at(),
                Utc::now(),
            );
            reschedule(app, &id, next).await;
        }
        Err(e) => {
            tracing::debug!(error = %e, "a scheduled refresh failed");
            if let Err(e) = app
                .store
                .release_connection_lease(&id, app.refresher.owner())
                .await
            {
                tracing::debug!(error = %e, "could not release a lease (it lapses)");
            }
        }
    }
}

/// The connection's integration, from the proxy's cache when it is there
/// (a storm of refreshes is mostly a handful of integrations).
async fn integration(app: &App, c: &Connection) -> ServiceResult<Arc<IntegrationView>> {
    if let Some(view) = app
        .proxy_cache
        .integration(&c.project_id, &c.integration_key)
    {
        return Ok(view);
    }
    let view = Arc::new(integrations::get(app, &c.project_id, &c.integration_key).await?);
    app.proxy_cache.put_integration(view.clone());
    Ok(view)
}

async fn reschedule(app: &App, id: &str, next: Option<chrono::DateTime<Utc>>) {
    if let Err(e) = app
        .store
        .reschedule_connection(id, app.refresher.owner(), next)
        .await
    {
        tracing::debug!(error = %e, "could not reschedule a connection");
    }
}
