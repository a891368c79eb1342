//! Liveness and readiness.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::{Json, Router, routing};
use serde_json::{Value, json};

use crate::app::App;
use crate::http::error::{ApiError, ApiResult};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/healthz", routing::get(healthz))
        .route("/readyz", routing::get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready while the database answers within two seconds.
async fn readyz(State(app): State<Arc<App>>) -> ApiResult<Json<Value>> {
    match tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await {
        Ok(Ok(())) => Ok(Json(
            json!({"status": "ready", "database": app.store.backend().as_str()}),
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::unavailable(
                "the database is not answering; keyrelay will recover when it is back",
            ))
        }
        Err(_) => Err(ApiError::unavailable(
            "the database did not answer within 2 seconds",
        )),
    }
}
