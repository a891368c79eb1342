//! Connect sessions (project API) and the public routes the end user's
//! browser visits: `/connect/{token}` and the OAuth callback. The public
//! routes are rate limited per IP and answer with `no-store` pages that send
//! no referrer, so codes and states in URLs go nowhere else.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath, ProjectAuth};
use crate::http::views::timestamp;
use crate::services::connect::{self, CallbackParams, Finished, NewSession, Page};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/connect/sessions", routing::post(create_session))
        .route("/connect/{token}", routing::get(begin))
        .route("/oauth/callback", routing::get(callback))
        .route("/oauth1/callback", routing::get(oauth1_callback))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSession {
    integration: String,
    user_id: String,
    redirect_url: String,
    scopes: Option<Vec<String>>,
    #[serde(default)]
    connection_config: Map<String, Value>,
}

async fn create_session(
    auth: ProjectAuth,
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<CreateSession>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = connect::create_session(
        &app,
        &auth.project_id,
        NewSession {
            integration: body.integration,
            user_id: body.user_id,
            redirect_url: body.redirect_url,
            scopes: body.scopes,
            connection_config: body.connection_config,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": created.token, "url": created.url,
                    "expires_at": timestamp(created.expires_at)})),
    ))
}

/// Headers every public page and redirect carries.
fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn redirect_to(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    private(response)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(page: &Page) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{message}</p></body></html>",
        title = escape(page.title),
        message = escape(&page.message)
    );
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, html).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    private(response)
}

fn limited(app: &App, peer: SocketAddr) -> Option<Response> {
    app.public_limiter.check(peer.ip()).err().map(|e| {
        let mut response = ApiError::from(e).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        private(response)
    })
}

async fn begin(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(token): ApiPath<String>,
) -> Response {
    if let Some(response) = limited(&app, peer) {
        return response;
    }
    match connect::begin(&app, &token).await {
        Ok(started) => {
            let mut response = redirect_to(&started.location);
            if let Ok(cookie) = HeaderValue::from_str(&started.cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(p) => page(&p),
    }
}

async fn callback(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(response) = limited(&app, peer) {
        return response;
    }
    let Ok(Query(params)) = query else {
        return page(&Page {
            status: 400,
            title: "Malformed callback",
            message: "The callback's query string could not be read.".into(),
        });
    };
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    match connect::finish(&app, params, cookies).await {
        Finished::Redirect(location) => redirect_to(&location),
        Finished::Page(p) => page(&p),
    }
}

async fn oauth1_callback(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(response) = limited(&app, peer) {
        return response;
    }
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    match connect::oauth1::finish(&app, query.as_deref().unwrap_or_default(), cookies).await {
        Finished::Redirect(location) => redirect_to(&location),
        Finished::Page(p) => page(&p),
    }
}
