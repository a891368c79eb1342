//! The connections API (project secret key).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router, routing};
use chrono::{DateTime, Utc};
use keyrelay_store::ConnectionFilter;
use keyrelay_vault::{AccessToken, ApiKey, Password, RefreshToken, TokenSecret};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, ProjectAuth};
use crate::http::views::{ConnectionJson, timestamp};
use crate::services::connections::{self, ImportedCredentials};
use crate::services::credentials::Credentials;
use crate::services::revoke::{self, Revoked};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/connections", routing::get(list).post(import))
        .route(
            "/v1/connections/{integration}/{user_id}",
            routing::get(get_one).delete(delete),
        )
        .route(
            "/v1/connections/{integration}/{user_id}/token",
            routing::get(token),
        )
        .route(
            "/v1/connections/{integration}/{user_id}/refresh",
            routing::post(refresh),
        )
        .route(
            "/v1/connections/{integration}/{user_id}/verify",
            routing::post(verify),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    integration: Option<String>,
    user_id: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let filter = ConnectionFilter {
        integration_key: q.integration,
        user_id: q.user_id,
        status: q.status,
        after: None,
        limit: q.limit.unwrap_or(50),
    };
    let page = connections::list(&app, &auth.project_id, filter, q.cursor.as_deref()).await?;
    let labels: std::collections::HashMap<String, Option<String>> =
        crate::services::integrations::list(&app, &auth.project_id)
            .await?
            .into_iter()
            .map(|v| (v.record.key.clone(), v.provider_label()))
            .collect();
    let list: Vec<ConnectionJson> = page
        .connections
        .iter()
        .map(|c| ConnectionJson::new(c, labels.get(&c.integration_key).cloned().flatten()))
        .collect();
    Ok(Json(
        json!({"connections": list, "next_cursor": page.next_cursor}),
    ))
}

async fn get_one(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiPath((integration, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (connection, view) =
        connections::get(&app, &auth.project_id, &integration, &user_id).await?;
    Ok(Json(json!(ConnectionJson::new(
        &connection,
        view.provider_label()
    ))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenQuery {
    #[serde(default)]
    force_refresh: bool,
}

/// The one response whose job is to return credentials.
fn credentials_json(creds: &Credentials, scopes: &[String]) -> Value {
    match creds {
        Credentials::OAuth2 {
            access_token,
            token_type,
            expires_at,
            ..
        } => json!({
            "access_token": access_token.expose_secret(),
            "token_type": token_type.clone().unwrap_or_else(|| "Bearer".into()),
            "expires_at": expires_at.map(timestamp),
            "scopes": scopes,
        }),
        Credentials::OAuth1 {
            token,
            token_secret,
            ..
        } => json!({
            "oauth_token": token.expose_secret(),
            "oauth_token_secret": token_secret.expose_secret(),
        }),
        Credentials::ApiKey { api_key } => json!({"api_key": api_key.expose_secret()}),
        Credentials::Basic { username, password } => {
            json!({"username": username, "password": password.expose_secret()})
        }
    }
}

async fn token(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiPath((integration, user_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> ApiResult<Json<Value>> {
    let live = connections::token(
        &app,
        &auth.project_id,
        &integration,
        &user_id,
        q.force_refresh,
    )
    .await?;
    Ok(Json(credentials_json(&live.creds, &live.connection.scopes)))
}

async fn refresh(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiPath((integration, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    let live = connections::token(&app, &auth.project_id, &integration, &user_id, true).await?;
    let label = provider_label(&app, &auth.project_id, &integration).await?;
    Ok(Json(json!(ConnectionJson::new(&live.connection, label))))
}

async fn verify(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiPath((integration, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    let verdict = connections::verify(&app, &auth.project_id, &integration, &user_id).await?;
    Ok(Json(json!({
        "valid": verdict.valid,
        "checked_at": timestamp(Utc::now()),
        "detail": verdict.detail,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    reason: Option<String>,
}

async fn delete(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiPath((integration, user_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<Json<Value>> {
    if q.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "reason: at most 500 characters",
        ));
    }
    let revoked =
        revoke::delete_connection(&app, &auth.project_id, &integration, &user_id, q.reason).await?;
    let at_provider = match revoked {
        Revoked::Yes => json!(true),
        Revoked::No => json!(false),
        Revoked::NotSupported => json!("not_supported"),
    };
    Ok(Json(
        json!({"deleted": true, "revoked_at_provider": at_provider}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ImportCredentials {
    access_token: Option<AccessToken>,
    refresh_token: Option<RefreshToken>,
    token_type: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    expires_in: Option<i64>,
    scopes: Option<Vec<String>>,
    api_key: Option<ApiKey>,
    username: Option<String>,
    password: Option<Password>,
    oauth_token: Option<AccessToken>,
    oauth_token_secret: Option<TokenSecret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Import {
    integration: String,
    user_id: String,
    #[serde(default)]
    credentials: ImportCredentials,
    #[serde(default)]
    connection_config: Map<String, Value>,
}

async fn import(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<Import>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let c = body.credentials;
    let imported = ImportedCredentials {
        access_token: c.access_token,
        refresh_token: c.refresh_token,
        token_type: c.token_type,
        expires_at: c.expires_at,
        expires_in: c.expires_in,
        scopes: c.scopes,
        api_key: c.api_key,
        username: c.username,
        password: c.password,
        oauth_token: c.oauth_token,
        oauth_token_secret: c.oauth_token_secret,
    };
    let (connection, created) = connections::import(
        &app,
        &auth.project_id,
        &body.integration,
        &body.user_id,
        imported,
        body.connection_config,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let label = provider_label(&app, &auth.project_id, &connection.integration_key).await?;
    Ok((status, Json(json!(ConnectionJson::new(&connection, label)))))
}

async fn provider_label(app: &App, project_id: &str, key: &str) -> ApiResult<Option<String>> {
    Ok(crate::services::integrations::get(app, project_id, key)
        .await?
        .provider_label())
}
