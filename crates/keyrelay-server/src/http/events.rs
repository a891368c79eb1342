//! `GET /v1/events`: the project's audit trail.

use std::sync::Arc;

use axum::extract::State;
use axum::{Json, Router, routing};
use keyrelay_store::EventFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::http::error::ApiResult;
use crate::http::extract::{ApiQuery, ProjectAuth};
use crate::http::timestamp;
use crate::services::events;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/v1/events", routing::get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    integration: Option<String>,
    user_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let filter = EventFilter {
        integration_key: q.integration,
        user_id: q.user_id,
        kind: q.kind,
        after: None,
        limit: q.limit.unwrap_or(50),
    };
    let (list, next) = events::list(&app, &auth.project_id, filter, q.cursor.as_deref()).await?;
    let list: Vec<Value> = list
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "type": e.kind,
                "integration": e.integration_key,
                "user_id": e.user_id,
                "created_at": timestamp(e.created_at),
                "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({"events": list, "next_cursor": next})))
}
