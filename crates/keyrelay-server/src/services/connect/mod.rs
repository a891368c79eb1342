//! The hosted authorization: connect sessions, the redirect to the provider,
//! and the callback that checks the state, exchanges the grant and stores the
//! credentials. This module runs OAuth2; [`oauth1`] runs OAuth 1.0a, whose
//! flows are keyed by the temporary token instead of a state.
//!
//! A `state` is 256 random bits, stored only as its hash, single use, and
//! bound twice: to the connect session it came from, and to the browser that
//! started it (an HttpOnly cookie whose hash the flow keeps), so a state
//! carried into another browser does not complete.

use chrono::{DateTime, Duration, Utc};
use keyrelay_catalog::AuthMode;
use keyrelay_oauth::{AuthorizationRequest, authorization_url, new_state, pkce_s256};
use keyrelay_store::{ConnectSession, OAuthFlow};
use keyrelay_vault::{AuthorizationCode, PkceVerifier, TokenHash, token};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::connections::{self, check_user_id};
use crate::services::credentials::Credentials;
use crate::services::integrations::{self, IntegrationView};
use crate::services::providers::{self, check_connection_config};
use crate::services::refresh;
use crate::services::validate;
use crate::vault::Field;

pub mod oauth1;

const SESSION_TTL: Duration = Duration::minutes(30);
const FLOW_TTL: Duration = Duration::minutes(10);

/// A connect session request.
#[derive(Debug)]
pub struct NewSession {
    pub integration: String,
    pub user_id: String,
    pub redirect_url: String,
    pub scopes: Option<Vec<String>>,
    pub connection_config: Map<String, Value>,
}

/// The link to hand to the end user.
#[derive(Debug)]
pub struct CreatedSession {
    pub token: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn create_session(
    app: &App,
    project_id: &str,
    input: NewSession,
) -> ServiceResult<CreatedSession> {
    check_user_id(&input.user_id)?;
    let project = crate::services::projects::get(app, project_id).await?;
    if !project.allowed_redirect_urls.contains(&input.redirect_url) {
        return Err(ServiceError::invalid(
            "redirect_url_not_allowed",
            format!(
                "redirect_url {:?} is not one of the project's allowed_redirect_urls; add it with PATCH /v1/project",
                input.redirect_url
            ),
        ));
    }
    let view = integrations::get(app, project_id, &input.integration).await?;
    let scopes = match view.definition.auth_mode {
        AuthMode::OAuth2 => input.scopes.unwrap_or_else(|| view.record.scopes.clone()),
        // OAuth 1.0a has no scopes: providers take their permissions as
        // authorization parameters (Trello's `scope`, Flickr's `perms`).
        AuthMode::OAuth1 if input.scopes.as_ref().is_some_and(|s| !s.is_empty()) => {
            return Err(ServiceError::invalid(
                "invalid_request",
                "scopes: OAuth 1.0a providers take no scopes; set the permissions the provider \
                 asks for in its definition's authorization_params",
            ));
        }
        AuthMode::OAuth1 => Vec::new(),
        mode => {
            return Err(ServiceError::invalid(
                "not_connectable",
                format!(
                    "{mode} integrations need no end-user authorization; create the connection with POST /v1/connections"
                ),
            ));
        }
    };
    validate::scopes(&scopes)?;
    check_connection_config(&view.definition, &input.connection_config)?;
    let token = token::generate_token("kr_cs_");
    let now = Utc::now();
    let session = ConnectSession {
        token_hash: TokenHash::of(&token).as_bytes().to_vec(),
        id: token::generate_id("cs_"),
        project_id: project_id.to_string(),
        integration_id: view.record.id.clone(),
        integration_key: view.record.key.clone(),
        user_id: input.user_id,
        redirect_url: input.redirect_url,
        scopes,
        connection_config: input.connection_config,
        expires_at: now + SESSION_TTL,
        created_at: now,
        used_at: None,
    };
    app.store.insert_connect_session(&session).await?;
    Ok(CreatedSession {
        url: format!("{}/connect/{token}", app.config.public_url),
        token,
        expires_at: session.expires_at,
    })
}

/// A page shown to the end user instead of a redirect (nothing to redirect
/// to, or nowhere safe).
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub title: &'static str,
    pub message: String,
}

impl Page {
    pub(crate) fn new(status: u16, title: &'static str, message: impl Into<String>) -> Self {
        Page {
            status,
            title,
            message: message.into(),
        }
    }

    pub(crate) fn from_service(err: &ServiceError) -> Self {
        let status = match err {
            ServiceError::Store(keyrelay_store::StoreError::Unavailable(_)) => 503,
            ServiceError::Upstream { .. } => 502,
            _ => 400,
        };
        Page::new(status, "This connection cannot be started", err.to_string())
    }
}

/// Where `/connect/{token}` sends the browser, and the cookie it sets.
pub struct Started {
    pub location: String,
    pub cookie: String,
}

/// The cookie that binds a flow to the browser that started it. Its name
/// depends on the state so that several flows in one browser do not clash.
fn cookie_name(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    format!("kr_flow_{}", hex::encode(&digest[..8]))
}

/// `GET /connect/{token}`: uses up the session and redirects to the provider.
pub async fn begin(app: &App, session_token: &str) -> Result<Started, Page> {
    let now = Utc::now();
    let hash = TokenHash::of(session_token);
    let session = app
        .store
        .take_connect_session(hash.as_bytes(), now)
        .await
        .map_err(|e| Page::from_service(&e.into()))?
        .ok_or_else(|| {
            Page::new(
                404,
                "This link is not valid",
                "The connect link is unknown or was used already. Go back to the app and start again.",
            )
        })?;
    if session.expires_at <= now {
        return Err(Page::new(
            410,
            "This link has expired",
            "The connect link has expired. Go back to the app and start again.",
        ));
    }
    start_flow(app, &session, now)
        .await
        .map_err(|e| Page::from_service(&e))
}

async fn start_flow(
    app: &App,
    session: &ConnectSession,
    now: DateTime<Utc>,
) -> ServiceResult<Started> {
    let view = integrations::get(app, &session.project_id, &session.integration_key).await?;
    if view.definition.auth_mode == AuthMode::OAuth1 {
        return oauth1::start(app, session, &view, now).await;
    }
    let def = &view.definition;
    let endpoints = providers::resolve(app, def, &session.connection_config).await?;
    let authorization_endpoint = endpoints.authorization.clone().ok_or_else(|| {
        ServiceError::invalid(
            "integration_misconfigured",
            "the provider has no authorization endpoint",
        )
    })?;
    let state = new_state();
    let binding = token::generate_token("");
    let pkce = endpoints.pkce.then(pkce_s256);
    let state_hash = TokenHash::of(state.expose_secret()).as_bytes().to_vec();
    let redirect_uri = app.config.oauth_callback_url();
    let mut scopes = def.default_scopes.clone();
    for scope in &session.scopes {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    let url = authorization_url(&AuthorizationRequest {
        authorization_endpoint: &authorization_endpoint,
        client_id: view.record.client_id.as_deref().unwrap_or_default(),
        redirect_uri: &redirect_uri,
        scopes: &scopes,
        scope_separator: def.scope_separator(),
        state: state.expose_secret(),
        code_challenge: pkce.as_ref().map(|p| p.challenge.as_str()),
        extra_params: &def.authorization_params,
    })
    .map_err(|e| ServiceError::invalid("integration_misconfigured", e.to_string()))?;
    crate::net::check_url(&url, app.config.allow_local_providers)
        .map_err(|e| ServiceError::invalid("integration_misconfigured", e))?;
    let pkce_verifier = pkce.as_ref().map(|p| {
        app.vault.seal(
            Field::new("oauth_states", &hex::encode(&state_hash), "pkce_verifier"),
            p.verifier.expose_secret().as_bytes(),
        )
    });
    let flow = OAuthFlow {
        state_hash,
        session_id: session.id.clone(),
        binding_hash: TokenHash::of(&binding).as_bytes().to_vec(),
        project_id: session.project_id.clone(),
        integration_id: session.integration_id.clone(),
        integration_key: session.integration_key.clone(),
        user_id: session.user_id.clone(),
        redirect_url: session.redirect_url.clone(),
        redirect_uri,
        scopes,
        connection_config: session.connection_config.clone(),
        pkce_verifier,
        expected_issuer: endpoints.issuer.clone(),
        expires_at: now + FLOW_TTL,
        created_at: now,
    };
    app.store.insert_oauth_flow(&flow).await?;
    Ok(Started {
        location: url.to_string(),
        cookie: flow_cookie(app, state.expose_secret(), &binding, "/oauth"),
    })
}

/// The cookie binding a flow (keyed by `key`) to this browser, sent only to
/// the callback under `path`.
fn flow_cookie(app: &App, key: &str, binding: &str, path: &str) -> String {
    let secure = if app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={binding}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(key),
        FLOW_TTL.num_seconds()
    )
}

/// The query of the OAuth callback.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub iss: Option<String>,
}

/// How the callback ends: back to the app, or a page when there is no safe
/// place to send the browser.
pub enum Finished {
    Redirect(String),
    Page(Page),
}

fn redirect(flow: &OAuthFlow, params: &[(&str, &str)]) -> Finished {
    match url::Url::parse(&flow.redirect_url) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            Finished::Redirect(url.to_string())
        }
        Err(_) => Finished::Page(Page::new(
            500,
            "Redirect failed",
            "The app's redirect URL is invalid.",
        )),
    }
}

fn error_redirect(flow: &OAuthFlow, code: &str, description: &str) -> Finished {
    redirect(
        flow,
        &[
            ("keyrelay_status", "error"),
            ("error", code),
            ("error_description", description),
            ("integration", &flow.integration_key),
            ("user_id", &flow.user_id),
        ],
    )
}

/// Keeps a provider's error code only when it looks like one (RFC 6749
/// §4.1.2.1 codes are short ASCII tokens).
fn clean_code(code: &str) -> Option<&str> {
    (code.len() <= 64
        && !code.is_empty()
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
    .then_some(code)
}

fn cookie_value<'a>(cookie_header: Option<&'a str>, name: &str) -> Option<&'a str> {
    cookie_header?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The pending flow keyed by `key` (a state, or an OAuth1 temporary token),
/// checked to come back to `callback_url` in the browser that started it,
/// and used up, even against concurrent callbacks.
async fn take_bound_flow(
    app: &App,
    key: &str,
    cookie_header: Option<&str>,
    callback_url: &str,
) -> Result<OAuthFlow, Finished> {
    let hash = TokenHash::of(key);
    let unknown = || {
        Finished::Page(Page::new(
            400,
            "Unknown or used authorization",
            "This authorization is unknown or was completed already. Go back to the app and start again.",
        ))
    };
    let flow = match app.store.get_oauth_flow(hash.as_bytes()).await {
        Ok(Some(flow)) if flow.redirect_uri == callback_url => flow,
        Ok(_) => return Err(unknown()),
        Err(e) => return Err(Finished::Page(Page::from_service(&e.into()))),
    };
    let bound = cookie_value(cookie_header, &cookie_name(key))
        .and_then(|b| TokenHash::from_slice(&flow.binding_hash).map(|h| h.ct_eq(&TokenHash::of(b))))
        .unwrap_or(false);
    if !bound {
        return Err(Finished::Page(Page::new(
            400,
            "Authorization started elsewhere",
            "This authorization was started in another browser session. Start again from the app in this browser.",
        )));
    }
    match app.store.take_oauth_flow(hash.as_bytes()).await {
        Ok(Some(flow)) => Ok(flow),
        Ok(None) => Err(unknown()),
        Err(e) => Err(Finished::Page(Page::from_service(&e.into()))),
    }
}

/// `GET /oauth/callback`.
pub async fn finish(app: &App, params: CallbackParams, cookie_header: Option<&str>) -> Finished {
    let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
        return Finished::Page(Page::new(
            400,
            "Missing state",
            "This callback has no state parameter, so it cannot be matched to a connection attempt.",
        ));
    };
    let flow =
        match take_bound_flow(app, state, cookie_header, &app.config.oauth_callback_url()).await {
            Ok(flow) => flow,
            Err(finished) => return finished,
        };
    if let Some(expired) = expired(&flow) {
        return expired;
    }
    let outcome = complete(app, &flow, &params).await;
    conclude(&flow, outcome)
}

/// The redirect for a flow that took too long, if it did.
fn expired(flow: &OAuthFlow) -> Option<Finished> {
    (flow.expires_at <= Utc::now()).then(|| {
        error_redirect(
            flow,
            "state_expired",
            "the authorization took too long; start again",
        )
    })
}

/// Back to the app with the outcome: success, or an error code and
/// description.
fn conclude(flow: &OAuthFlow, outcome: Result<(), (String, String)>) -> Finished {
    match outcome {
        Ok(()) => redirect(
            flow,
            &[
                ("keyrelay_status", "success"),
                ("integration", &flow.integration_key),
                ("user_id", &flow.user_id),
            ],
        ),
        Err((code, description)) => error_redirect(flow, &code, &description),
    }
}

/// Checks the callback against the flow, exchanges the code and stores the
/// credentials; on failure, the error code and description for the app.
async fn complete(
    app: &App,
    flow: &OAuthFlow,
    params: &CallbackParams,
) -> Result<(), (String, String)> {
    let failed = |e: ServiceError| ("exchange_failed".to_string(), e.to_string());
    let view: IntegrationView = integrations::get(app, &flow.project_id, &flow.integration_key)
        .await
        .map_err(failed)?;
    let endpoints = providers::resolve(app, &view.definition, &flow.connection_config)
        .await
        .map_err(failed)?;
    // RFC 9207: an `iss` must name the issuer we sent the user to.
    match (&params.iss, &flow.expected_issuer) {
        (Some(iss), Some(expected))
            if iss.trim_end_matches('/') != expected.trim_end_matches('/') =>
        {
            return Err((
                "issuer_mismatch".into(),
                "the authorization response came from another issuer".into(),
            ));
        }
        (Some(_), None) => {
            return Err((
                "issuer_mismatch".into(),
                "the authorization response names an issuer, but this provider has none configured"
                    .into(),
            ));
        }
        (None, Some(_)) if endpoints.iss_parameter_supported => {
            return Err((
                "issuer_mismatch".into(),
                "the provider promises an iss parameter, and the response has none".into(),
            ));
        }
        _ => {}
    }
    if let Some(error) = &params.error {
        let code = clean_code(error).unwrap_or("access_denied");
        let description = params
            .error_description
            .as_deref()
            .map(|d| d.chars().take(300).collect::<String>())
            .unwrap_or_else(|| format!("the provider answered {code}"));
        return Err((code.to_string(), description));
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(("exchange_failed".into(), "the provider sent no code".into()));
    };
    let verifier = match &flow.pkce_verifier {
        Some(sealed) => {
            let text = app
                .vault
                .open_string(
                    Field::new(
                        "oauth_states",
                        &hex::encode(&flow.state_hash),
                        "pkce_verifier",
                    ),
                    sealed,
                )
                .await
                .map_err(failed)?;
            Some(PkceVerifier::new(text.as_str()))
        }
        None => None,
    };
    let tokens = refresh::exchange_code(
        app,
        &view,
        &endpoints,
        &AuthorizationCode::new(code),
        &flow.redirect_uri,
        verifier.as_ref(),
    )
    .await
    .map_err(failed)?
    .map_err(|e| ("exchange_failed".to_string(), e.describe()))?;
    let now = Utc::now();
    let scopes = tokens.scopes.clone().unwrap_or_else(|| flow.scopes.clone());
    let creds = Credentials::OAuth2 {
        expires_at: refresh::expiry_of(&view, &tokens, now),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_type: tokens.token_type,
        extra: tokens.extra,
    };
    connections::upsert(
        app,
        &view,
        &flow.user_id,
        flow.connection_config.clone(),
        creds,
        scopes,
    )
    .await
    .map_err(failed)?;
    Ok(())
}
