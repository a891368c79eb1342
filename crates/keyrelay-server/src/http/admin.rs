//! The operator's routes (admin token): projects and their secret keys.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router, routing};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::http::error::ApiResult;
use crate::http::extract::{Admin, ApiJson, ApiPath};
use crate::http::views::{ProjectJson, SecretKeyJson};
use crate::services::projects::{self, NewProject};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/v1/admin/projects",
            routing::post(create_project).get(list_projects),
        )
        .route(
            "/v1/admin/projects/{id}/secret-keys",
            routing::post(create_secret_key).get(list_secret_keys),
        )
        .route(
            "/v1/admin/projects/{id}/secret-keys/{key_id}",
            routing::delete(delete_secret_key),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProject {
    name: String,
    #[serde(default)]
    allowed_redirect_urls: Vec<String>,
    webhook_url: Option<String>,
}

async fn create_project(
    _: Admin,
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = projects::create(
        &app,
        NewProject {
            name: body.name,
            allowed_redirect_urls: body.allowed_redirect_urls,
            webhook_url: body.webhook_url,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created_json(&created))))
}

/// The one response that shows a new project's secrets.
pub fn created_json(created: &projects::CreatedProject) -> Value {
    let mut body = json!(ProjectJson::from(&created.project));
    if let Some(map) = body.as_object_mut() {
        map.insert("secret_key_id".into(), json!(created.secret_key_id));
        map.insert(
            "secret_key".into(),
            json!(created.secret_key.expose_secret()),
        );
        map.insert(
            "webhook_secret".into(),
            json!(created.webhook_secret.expose_secret()),
        );
    }
    body
}

async fn list_projects(_: Admin, State(app): State<Arc<App>>) -> ApiResult<Json<Value>> {
    let list = projects::list(&app).await?;
    let projects: Vec<ProjectJson> = list.iter().map(ProjectJson::from).collect();
    Ok(Json(json!({ "projects": projects })))
}

async fn create_secret_key(
    _: Admin,
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (key_id, key) = projects::create_secret_key(&app, &id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": key_id, "project_id": id, "secret_key": key.expose_secret()})),
    ))
}

async fn list_secret_keys(
    _: Admin,
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let keys = projects::list_secret_keys(&app, &id).await?;
    let keys: Vec<SecretKeyJson> = keys.iter().map(SecretKeyJson::from).collect();
    Ok(Json(json!({ "secret_keys": keys })))
}

async fn delete_secret_key(
    _: Admin,
    State(app): State<Arc<App>>,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    projects::delete_secret_key(&app, &id, &key_id).await?;
    Ok(Json(json!({"deleted": true})))
}
