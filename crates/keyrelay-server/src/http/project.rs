//! A project's own routes (secret key): its settings and integrations.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router, routing};
use keyrelay_vault::ClientSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::http::error::ApiResult;
use crate::http::extract::{ApiJson, ApiPath, ProjectAuth};
use crate::http::views::{IntegrationJson, ProjectJson, double_option};
use crate::services::integrations::{self, IntegrationPatch, NewIntegration};
use crate::services::projects::{self, ProjectPatch};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/v1/project",
            routing::get(get_project).patch(patch_project),
        )
        .route(
            "/v1/integrations",
            routing::post(create_integration).get(list_integrations),
        )
        .route(
            "/v1/integrations/{key}",
            routing::get(get_integration)
                .patch(patch_integration)
                .delete(delete_integration),
        )
}

async fn get_project(auth: ProjectAuth, State(app): State<Arc<App>>) -> ApiResult<Json<Value>> {
    let project = projects::get(&app, &auth.project_id).await?;
    Ok(Json(json!(ProjectJson::from(&project))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchProject {
    allowed_redirect_urls: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    webhook_url: Option<Option<String>>,
}

async fn patch_project(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<PatchProject>,
) -> ApiResult<Json<Value>> {
    let patch = ProjectPatch {
        allowed_redirect_urls: body.allowed_redirect_urls,
        webhook_url: body.webhook_url,
    };
    let project = projects::update(&app, &auth.project_id, patch).await?;
    Ok(Json(json!(ProjectJson::from(&project))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateIntegration {
    key: String,
    provider: Value,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    #[serde(default)]
    scopes: Vec<String>,
}

async fn create_integration(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<CreateIntegration>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = NewIntegration {
        key: body.key,
        provider: body.provider,
        client_id: body.client_id,
        client_secret: body.client_secret,
        scopes: body.scopes,
    };
    let view = integrations::create(&app, &auth.project_id, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!(IntegrationJson::new(&view, &app.config))),
    ))
}

async fn list_integrations(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
) -> ApiResult<Json<Value>> {
    let views = integrations::list(&app, &auth.project_id).await?;
    let list: Vec<IntegrationJson> = views
        .iter()
        .map(|v| IntegrationJson::new(v, &app.config))
        .collect();
    Ok(Json(json!({ "integrations": list })))
}

async fn get_integration(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let view = integrations::get(&app, &auth.project_id, &key).await?;
    Ok(Json(json!(IntegrationJson::new(&view, &app.config))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchIntegration {
    provider: Option<Value>,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    scopes: Option<Vec<String>>,
}

async fn patch_integration(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<PatchIntegration>,
) -> ApiResult<Json<Value>> {
    let patch = IntegrationPatch {
        provider: body.provider,
        client_id: body.client_id,
        client_secret: body.client_secret,
        scopes: body.scopes,
    };
    let view = integrations::update(&app, &auth.project_id, &key, patch).await?;
    Ok(Json(json!(IntegrationJson::new(&view, &app.config))))
}

async fn delete_integration(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    integrations::delete(&app, &auth.project_id, &key).await?;
    Ok(Json(json!({"deleted": true})))
}
