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

use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, header};
use http_body_util::BodyExt;
use keyrelay_catalog::AuthMode;
use keyrelay_oauth::oauth1::form_body_for_signing;
use keyrelay_vault::TokenHash;

pub use client::ProxyClient;
pub use error::ProxyError;

use crate::app::App;
use crate::error::ServiceError;
use crate::http::{on_main, send_upstream};
use crate::proxy::cache::{Live, Prepared};
use crate::proxy::stamp::Stamp;
use crate::proxy::target::Base;
use crate::services::integrations::{self, IntegrationView};
use crate::services::refresh::{self, Trigger};
use crate::services::{auth, providers};

/// Bodies up to this size are kept for one retry after a 401.
const RETRY_BODY_LIMIT: u64 = 64 * 1024;
/// Form bodies of OAuth 1.0a requests are signed, so they are held whole;
/// up to this size (or the configured body limit, if smaller).
const SIGNED_FORM_LIMIT: u64 = 1024 * 1024;
/// A refused body up to this size is read and dropped before the 413 goes
/// out; a larger one is cut off by closing the connection.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

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

fn bearer(headers: &HeaderMap) -> Result<&str, ProxyError> {
    headers
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
        })
}

async fn project_of(app: &App, headers: &HeaderMap) -> Result<String, ProxyError> {
    let bearer = bearer(headers)?;
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
async fn prepare(
    app: &App,
    view: &Arc<IntegrationView>,
    live: &Live,
) -> Result<Arc<Prepared>, ProxyError> {
    if let Some(prepared) = live.prepared(view) {
        return Ok(prepared);
    }
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
    // An OAuth 1.0a signature needs the consumer secret too.
    let consumer_secret = if view.definition.auth_mode == AuthMode::OAuth1 {
        integrations::open_client_secret(app, &view.record).await?
    } else {
        None
    };
    Ok(live.keep_prepared(Prepared {
        view: view.clone(),
        base,
        stamp: stamp::plan(view, &live.creds, consumer_secret)?,
    }))
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
enum Body {
    Kept(Bytes),
    Stream(AxumBody),
}

fn too_large(limit: u64, why: &str) -> ProxyError {
    ProxyError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {limit} bytes, {why}"),
    )
}

fn unreadable(e: &axum::Error) -> ProxyError {
    ProxyError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("the request body could not be read: {e}"),
    )
}

/// Reads the body into memory, refusing it beyond `limit` bytes. A body
/// that is too large is still read to its end (up to [`DRAIN_LIMIT`]) and
/// dropped, so that the caller, still sending, gets the 413 rather than a
/// connection reset.
async fn hold(mut body: AxumBody, limit: u64, why: &str) -> Result<Body, ProxyError> {
    let mut kept = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|e| unreadable(&e))?.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len() as u64);
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else {
            kept = bytes::BytesMut::new();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > limit {
        return Err(too_large(limit, why));
    }
    Ok(Body::Kept(kept.freeze()))
}

/// Refuses a body whose declared length is over `limit`, reading it first
/// when it is small enough to be worth it (see [`hold`]).
async fn refuse(body: AxumBody, length: u64, limit: u64, why: &str) -> ProxyError {
    if length <= DRAIN_LIMIT {
        let mut body = body;
        while let Some(Ok(_)) = body.frame().await {}
    }
    too_large(limit, why)
}

/// `signed_form`: the body is an OAuth 1.0a form body, which the signature
/// covers, so it must be held whole.
async fn prepare_body(
    headers: &HeaderMap,
    body: AxumBody,
    limit: Option<u64>,
    signed_form: bool,
) -> Result<Body, ProxyError> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    if signed_form {
        let cap = limit.map_or(SIGNED_FORM_LIMIT, |l| l.min(SIGNED_FORM_LIMIT));
        let why = "the most keyrelay holds to sign an OAuth 1.0a form body; send it as another \
                   content type, or in parts";
        if let Some(n) = length.filter(|n| *n > cap) {
            return Err(refuse(body, n, cap, why).await);
        }
        return hold(body, cap, why).await;
    }
    if let Some(limit) = limit {
        if let Some(n) = length.filter(|n| *n > limit) {
            return Err(refuse(body, n, limit, "the most this keyrelay forwards").await);
        }
        // A body without a length is cut off at the limit (the upstream
        // request then fails rather than receiving a truncated body).
        let limited =
            http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
        let body = AxumBody::new(limited);
        return match (length, chunked) {
            (None, false) => Ok(Body::Kept(Bytes::new())),
            (Some(n), false) if n <= RETRY_BODY_LIMIT => collect(body).await,
            _ => Ok(Body::Stream(body)),
        };
    }
    match (length, chunked) {
        (None, false) => Ok(Body::Kept(Bytes::new())),
        (Some(n), false) if n <= RETRY_BODY_LIMIT => collect(body).await,
        _ => Ok(Body::Stream(body)),
    }
}

async fn collect(body: AxumBody) -> Result<Body, ProxyError> {
    let collected = body.collect().await.map_err(|e| unreadable(&e))?;
    Ok(Body::Kept(collected.to_bytes()))
}

/// The integration and connection a call names, with its credentials.
struct Found {
    view: Arc<IntegrationView>,
    live: Arc<Live>,
}

/// The hot path's lookups, all in memory. `None` when anything is missing
/// from the cache, or the credentials are due for a refresh, or the
/// connection's target and stamp are not built yet.
fn cached(app: &App, headers: &HeaderMap) -> Result<Option<Found>, ProxyError> {
    let hash = TokenHash::of(bearer(headers)?);
    let Some(project_id) = app.proxy_cache.project(&hash) else {
        return Ok(None);
    };
    let key = header_str(headers, "keyrelay-integration")?;
    let user_id = header_str(headers, "keyrelay-user")?;
    let Some(view) = app.proxy_cache.integration(&project_id, key) else {
        return Ok(None);
    };
    let Some(live) = app.proxy_cache.connection(&project_id, key, user_id) else {
        return Ok(None);
    };
    if refresh::due_for_use(app, &live) || live.prepared(&view).is_none() {
        return Ok(None);
    }
    check_status(&live)?;
    Ok(Some(Found { view, live }))
}

/// The same, from the database where the cache has nothing (and refreshed
/// when due).
async fn looked_up(app: &Arc<App>, headers: &HeaderMap) -> Result<Found, ProxyError> {
    let project_id = project_of(app, headers).await?;
    let key = header_str(headers, "keyrelay-integration")?;
    let user_id = header_str(headers, "keyrelay-user")?;
    let view = integration_of(app, &project_id, key).await?;
    let live = live_connection(app, &view, user_id).await?;
    Ok(Found { view, live })
}

fn lost() -> ProxyError {
    ProxyError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "keyrelay's handling of this call failed unexpectedly; retry the request",
    )
}

async fn proxy(app: &Arc<App>, req: Request) -> Result<Response, ProxyError> {
    let (parts, body) = req.into_parts();
    if let Some(found) = cached(app, &parts.headers)? {
        return forward(app, found, parts, body).await;
    }
    // Database work belongs on the main runtime (see http::workers).
    let app = app.clone();
    on_main(async move {
        let found = looked_up(&app, &parts.headers).await?;
        forward(&app, found, parts, body).await
    })
    .await
    .unwrap_or_else(|| Err(lost()))
}

/// Checks the target, stamps and sends the call; on a 401, refreshes once
/// and retries once when the body was kept.
async fn forward(
    app: &Arc<App>,
    found: Found,
    parts: http::request::Parts,
    body: AxumBody,
) -> Result<Response, ProxyError> {
    let Found { view, live } = found;
    let raw_path = parts
        .uri
        .path()
        .strip_prefix("/v1/proxy/")
        .unwrap_or_default();
    target::check_path(raw_path).map_err(ProxyError::target)?;
    let prepared = prepare(app, &view, &live).await?;
    let uri = match parts.headers.get("keyrelay-base-url") {
        None => prepared.base.join(raw_path, parts.uri.query()),
        Some(value) => {
            base_override(app, &view, &prepared.base, value)?.join(raw_path, parts.uri.query())
        }
    }
    .map_err(ProxyError::target)?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let signed_form = matches!(prepared.stamp, Stamp::Oauth1(_))
        && form_body_for_signing(content_type, b"").is_some();
    let body = prepare_body(
        &parts.headers,
        body,
        app.config.proxy_max_body_bytes,
        signed_form,
    )
    .await?;
    let request = Outgoing {
        method: parts.method,
        uri,
        headers: headers::request_headers(parts.headers),
    };

    let bytes = match body {
        Body::Kept(bytes) => bytes,
        Body::Stream(body) => {
            // A streamed body cannot be sent twice: one attempt, as it comes.
            let response = send(app, &view, &prepared.stamp, request, body, None);
            return Ok(into_response(response.await?));
        }
    };
    let form = signed_form.then_some(&bytes[..]);
    let retry = refresh::refreshable(&view, &live.creds).then(|| request.clone());
    let first = send(
        app,
        &view,
        &prepared.stamp,
        request,
        AxumBody::from(bytes.clone()),
        form,
    )
    .await?;
    if first.status() != StatusCode::UNAUTHORIZED {
        return Ok(into_response(first));
    }
    let Some(request) = retry else {
        return Ok(into_response(first));
    };
    // One refresh shared by everyone who saw this version fail, then one
    // retry. The refresh talks to the database: on the main runtime.
    let prepared = {
        let (app, view, connection) = (app.clone(), view.clone(), live.connection.clone());
        on_main(async move {
            let live =
                refresh::fresh_credentials(&app, connection, &view, Trigger::Rejected).await?;
            app.proxy_cache.put_connection(live.clone());
            prepare(&app, &view, &live).await
        })
        .await
        .unwrap_or_else(|| Err(lost()))?
    };
    let retried = send(
        app,
        &view,
        &prepared.stamp,
        request,
        AxumBody::from(bytes.clone()),
        form,
    )
    .await?;
    Ok(into_response(retried))
}

/// The request line and headers going upstream, before stamping.
#[derive(Clone)]
struct Outgoing {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

/// `form`: the body, when an OAuth 1.0a signature must cover it.
async fn send(
    app: &App,
    view: &IntegrationView,
    stamp: &Stamp,
    outgoing: Outgoing,
    body: AxumBody,
    form: Option<&[u8]>,
) -> Result<http::Response<hyper::body::Incoming>, ProxyError> {
    let Outgoing {
        method,
        uri,
        mut headers,
    } = outgoing;
    let uri = stamp.apply(&method, &mut headers, uri, form)?;
    let host = uri.host().unwrap_or_default().to_string();
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let key = &view.record.key;
    match tokio::time::timeout(app.config.proxy_timeout, send_upstream(app, request)).await {
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
    Response::from_parts(parts, AxumBody::new(body))
}
