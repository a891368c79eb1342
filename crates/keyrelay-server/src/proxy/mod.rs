//! `ANY /v1/proxy/{path}`: find the connection, stamp its credentials,
//! stream the request to the provider and its answer back unchanged.
//!
//! The hot path (fresh token) is: hash the key, three in-memory lookups,
//! path checks, one upstream request. Bodies stream both ways; the only
//! body ever held is a small one (≤ 64 KiB) kept so that a 401 can be
//! retried once after a refresh.

pub mod cache;
mod client;
mod error;
mod headers;
mod stamp;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, header};
use http_body_util::BodyExt;
use keyrelay_vault::TokenHash;

pub use client::ProxyClient;
pub use error::ProxyError;

use crate::app::App;
use crate::error::ServiceError;
use crate::proxy::cache::{Live, Prepared};
use crate::proxy::stamp::Stamp;
use crate::proxy::target::Base;
use crate::services::integrations::{self, IntegrationView};
use crate::services::refresh::{self, Trigger};
use crate::services::{auth, providers};

/// Bodies up to this size are kept for one retry after a 401.
const RETRY_BODY_LIMIT: u64 = 64 * 1024;

pub fn client(
    allow_local: bool,
    connect_timeout: Duration,
    extra_roots: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<ProxyClient, rustls::Error> {
    client::build(allow_local, connect_timeout, extra_roots)
}

/// The route handler.
pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    match proxy(&app, req).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ProxyError> {
    let value = headers.get(name).ok_or_else(|| {
        ProxyError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("send the {name} header to name the connection"),
        )
    })?;
    value.to_str().map_err(|_| {
        ProxyError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the {name} header is not valid text"),
        )
    })
}

async fn project_of(app: &App, headers: &HeaderMap) -> Result<String, ProxyError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ProxyError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "send your project secret key as `Authorization: Bearer kr_sk_…`",
            )
        })?;
    let hash = TokenHash::of(bearer);
    if let Some(project) = app.proxy_cache.project(&hash) {
        return Ok(project);
    }
    let project = auth::authenticate_project(app, bearer).await?;
    app.proxy_cache.put_project(&hash, project.clone());
    Ok(project)
}

async fn integration_of(
    app: &App,
    project_id: &str,
    key: &str,
) -> Result<Arc<IntegrationView>, ProxyError> {
    if let Some(view) = app.proxy_cache.integration(project_id, key) {
        return Ok(view);
    }
    let view = Arc::new(integrations::get(app, project_id, key).await?);
    app.proxy_cache.put_integration(view.clone());
    Ok(view)
}

/// The connection with credentials fresh enough to use: from the cache when
/// they are, else through the refresher.
async fn live_connection(
    app: &Arc<App>,
    view: &IntegrationView,
    user_id: &str,
) -> Result<Arc<Live>, ProxyError> {
    let (project_id, key) = (&view.record.project_id, &view.record.key);
    if let Some(live) = app.proxy_cache.connection(project_id, key, user_id)
        && !refresh::due_for_use(app, &live)
    {
        check_status(&live)?;
        return Ok(live);
    }
    let connection = app
        .store
        .get_connection(project_id, key, user_id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| {
            ProxyError::new(
                StatusCode::NOT_FOUND,
                "unknown_connection",
                format!("integration {key:?} has no connection for user {user_id:?}"),
            )
        })?;
    let live = refresh::fresh_credentials(app, connection, view, Trigger::Use).await?;
    app.proxy_cache.put_connection(live.clone());
    Ok(live)
}

fn check_status(live: &Live) -> Result<(), ProxyError> {
    if live.connection.status == "reauthorization_required" {
        return Err(ProxyError::new(
            StatusCode::CONFLICT,
            "reauthorization_required",
            "the user's grant is no longer valid; send the user through a new connect session",
        ));
    }
    Ok(())
}

/// The per-connection target and stamp, built once per cached connection.
fn prepare(
    app: &App,
    view: &Arc<IntegrationView>,
    live: &Live,
) -> Result<Arc<Prepared>, ProxyError> {
    live.prepared(view, || {
        let template = view.definition.api_base_url.as_deref().ok_or_else(|| {
            ProxyError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "this provider has no api_base_url, so there is nothing to proxy to",
            )
        })?;
        let default = providers::substitute(template, &live.connection.connection_config)?;
        let base = Base::parse(&default).map_err(ProxyError::target)?;
        check_destination(app, &base)?;
        Ok(Prepared {
            view: view.clone(),
            base,
            stamp: stamp::plan(&view.definition, &live.creds)?,
        })
    })
}

/// Refuses a literal local destination unless local providers are allowed
/// (names are checked again after DNS, by the client's resolver).
fn check_destination(app: &App, base: &Base) -> Result<(), ProxyError> {
    if !app.config.allow_local_providers {
        let url = url::Url::parse(&format!("{}://{}/", base.scheme, base.authority))
            .map_err(|_| ProxyError::target("the API base URL is invalid"))?;
        crate::net::check_url(&url, false).map_err(ProxyError::target)?;
    }
    Ok(())
}

/// A `Keyrelay-Base-Url`, allowed when it is the provider's own origin or
/// one of its `allowed_hosts`.
fn base_override(
    app: &App,
    view: &IntegrationView,
    default: &Base,
    value: &http::HeaderValue,
) -> Result<Base, ProxyError> {
    let text = value
        .to_str()
        .map_err(|_| ProxyError::target("Keyrelay-Base-Url is not valid text"))?;
    let other = Base::parse(text).map_err(ProxyError::target)?;
    // The same origin (scheme, host and port), or an allowed host on its
    // scheme's default port: a port change is another server.
    let same_origin = other.scheme == default.scheme && other.authority == default.authority;
    let allowed_host = other.authority == other.host
        && view
            .definition
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&other.host));
    let allowed = same_origin || allowed_host;
    let scheme_ok = other.scheme == "https" || app.config.allow_local_providers;
    if !allowed || !scheme_ok || text.contains(['?', '#']) {
        return Err(ProxyError::target(format!(
            "Keyrelay-Base-Url {text:?} is not this provider's API host or one of its allowed_hosts"
        )));
    }
    check_destination(app, &other)?;
    Ok(other)
}

/// What to send as the body: nothing, a kept copy (retryable), or the stream.
enum Outgoing {
    Kept(Bytes),
    Stream(Body),
}

async fn prepare_body(
    headers: &HeaderMap,
    body: Body,
    limit: Option<u64>,
) -> Result<Outgoing, ProxyError> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    if let Some(limit) = limit {
        if length.is_some_and(|n| n > limit) {
            return Err(ProxyError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than this keyrelay forwards ({limit} bytes)"),
            ));
        }
        // A body without a length is cut off at the limit (the upstream
        // request then fails rather than receiving a truncated body).
        let limited =
            http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
        let body = Body::new(limited);
        return match (length, chunked) {
            (None, false) => Ok(Outgoing::Kept(Bytes::new())),
            (Some(n), false) if n <= RETRY_BODY_LIMIT => collect(body).await,
            _ => Ok(Outgoing::Stream(body)),
        };
    }
    match (length, chunked) {
        (None, false) => Ok(Outgoing::Kept(Bytes::new())),
        (Some(n), false) if n <= RETRY_BODY_LIMIT => collect(body).await,
        _ => Ok(Outgoing::Stream(body)),
    }
}

async fn collect(body: Body) -> Result<Outgoing, ProxyError> {
    let collected = body.collect().await.map_err(|e| {
        ProxyError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the request body could not be read: {e}"),
        )
    })?;
    Ok(Outgoing::Kept(collected.to_bytes()))
}

async fn proxy(app: &Arc<App>, req: Request) -> Result<Response, ProxyError> {
    let (parts, body) = req.into_parts();
    let project_id = project_of(app, &parts.headers).await?;
    let key = header_str(&parts.headers, "keyrelay-integration")?;
    let user_id = header_str(&parts.headers, "keyrelay-user")?;
    let view = integration_of(app, &project_id, key).await?;
    let mut live = live_connection(app, &view, user_id).await?;

    let raw_path = parts
        .uri
        .path()
        .strip_prefix("/v1/proxy/")
        .unwrap_or_default();
    target::check_path(raw_path).map_err(ProxyError::target)?;
    let prepared = prepare(app, &view, &live)?;
    let uri = match parts.headers.get("keyrelay-base-url") {
        None => prepared.base.join(raw_path, parts.uri.query()),
        Some(value) => {
            base_override(app, &view, &prepared.base, value)?.join(raw_path, parts.uri.query())
        }
    }
    .map_err(ProxyError::target)?;
    let outgoing = prepare_body(&parts.headers, body, app.config.proxy_max_body_bytes).await?;
    let headers = headers::request_headers(parts.headers);

    let bytes = match outgoing {
        Outgoing::Kept(bytes) => bytes,
        Outgoing::Stream(body) => {
            // A streamed body cannot be sent twice: one attempt, as it comes.
            let response = send(
                app,
                &view,
                &prepared.stamp,
                parts.method,
                uri,
                headers,
                body,
            );
            return Ok(into_response(response.await?));
        }
    };
    let retry = refresh::refreshable(&view, &live.creds)
        .then(|| (parts.method.clone(), uri.clone(), headers.clone()));
    let first = send(
        app,
        &view,
        &prepared.stamp,
        parts.method,
        uri,
        headers,
        Body::from(bytes.clone()),
    )
    .await?;
    if first.status() != StatusCode::UNAUTHORIZED {
        return Ok(into_response(first));
    }
    let Some((method, uri, headers)) = retry else {
        return Ok(into_response(first));
    };
    // One refresh shared by everyone who saw this version fail, then one retry.
    live =
        refresh::fresh_credentials(app, live.connection.clone(), &view, Trigger::Rejected).await?;
    app.proxy_cache.put_connection(live.clone());
    let prepared = prepare(app, &view, &live)?;
    let retried = send(
        app,
        &view,
        &prepared.stamp,
        method,
        uri,
        headers,
        Body::from(bytes),
    )
    .await?;
    Ok(into_response(retried))
}

async fn send(
    app: &App,
    view: &IntegrationView,
    stamp: &Stamp,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    body: Body,
) -> Result<http::Response<hyper::body::Incoming>, ProxyError> {
    let uri = stamp.apply(&mut headers, uri)?;
    let host = uri.host().unwrap_or_default().to_string();
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let key = &view.record.key;
    match tokio::time::timeout(app.config.proxy_timeout, app.proxy_client.request(request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(upstream_error(key, &host, &err)),
        Err(_) => Err(ProxyError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            format!(
                "the API of integration {key:?} at {host} did not answer within {} s",
                app.config.proxy_timeout.as_secs_f32()
            ),
        )),
    }
}

fn upstream_error(key: &str, host: &str, err: &hyper_util::client::legacy::Error) -> ProxyError {
    use std::error::Error;
    let mut cause = String::new();
    let mut source = err.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let timed_out = cause.contains("timed out") || cause.contains("deadline");
    if timed_out {
        return ProxyError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            format!("connecting to the API of integration {key:?} at {host} timed out"),
        );
    }
    let what = if err.is_connect() {
        "could not connect to"
    } else {
        "lost the connection to"
    };
    ProxyError::new(
        StatusCode::BAD_GATEWAY,
        "upstream_unreachable",
        format!("keyrelay {what} the API of integration {key:?} at {host}: {cause}"),
    )
}

fn into_response(response: http::Response<hyper::body::Incoming>) -> Response {
    let (mut parts, body) = response.into_parts();
    headers::response_headers(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}
