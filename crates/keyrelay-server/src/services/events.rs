//! The audit trail: what happened to each connection, with reasons and
//! error codes, never a secret.

use chrono::Utc;
use keyrelay_store::{Connection, Event, EventFilter};
use keyrelay_vault::token;
use serde_json::Value;

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::connections::{decode_cursor, encode_cursor};

/// An event about `connection`, stamped now.
pub fn about(connection: &Connection, kind: &str, detail: Value) -> Event {
    Event {
        id: token::generate_id("evt_"),
        project_id: connection.project_id.clone(),
        integration_key: connection.integration_key.clone(),
        user_id: connection.user_id.clone(),
        kind: kind.to_string(),
        detail,
        created_at: Utc::now(),
    }
}

/// Records an event on its own (events that go with a connection write are
/// recorded by that write). A failure is logged, not returned: the action
/// it records has happened.
pub async fn record(app: &App, event: Event) {
    if let Err(e) = app.store.insert_event(&event).await {
        tracing::warn!(error = %e, kind = %event.kind, "could not record an event");
    }
}

/// One page of the trail, newest first, and the cursor of the next.
pub async fn list(
    app: &App,
    project_id: &str,
    mut filter: EventFilter,
    cursor: Option<&str>,
) -> ServiceResult<(Vec<Event>, Option<String>)> {
    if !(1..=200).contains(&filter.limit) {
        return Err(ServiceError::invalid(
            "invalid_request",
            "limit: must be between 1 and 200",
        ));
    }
    filter.after = cursor.map(decode_cursor).transpose()?;
    let events = app.store.list_events(project_id, &filter).await?;
    let next = if events.len() as i64 == filter.limit {
        events.last().map(|e| encode_cursor(e.created_at, &e.id))
    } else {
        None
    };
    Ok((events, next))
}
