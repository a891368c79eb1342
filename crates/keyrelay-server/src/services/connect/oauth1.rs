//! The OAuth 1.0a authorization (RFC 5849 §2): temporary credentials, the
//! redirect to the provider, and the callback that exchanges the verifier
//! for token credentials.
//!
//! A flow is keyed by the hash of its temporary token (which plays the part
//! of OAuth2's `state`): single use, bound to the browser that started it by
//! a cookie sent only to `/oauth1`, and holding the temporary token secret
//! sealed, bound to the flow's row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use keyrelay_oauth::oauth1::{
    Oauth1Error, SigningParams, authorization_redirect_url, parse_callback,
    parse_temporary_credentials, parse_token_credentials, temporary_credentials_request,
    token_credentials_request,
};
use keyrelay_store::{ConnectSession, OAuthFlow};
use keyrelay_vault::{TokenHash, TokenSecret, token};
use serde_json::{Map, Value};

use super::{
    FLOW_TTL, Finished, Page, Started, conclude, error_redirect, expired, flow_cookie,
    take_bound_flow,
};
use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::connections;
use crate::services::credentials::Credentials;
use crate::services::integrations::{self, IntegrationView};
use crate::services::oauth1::{Endpoints, consumer_signer, misconfigured};
use crate::services::outbound;
use crate::vault::Field;

/// Where the temporary token secret is sealed: the flow's row.
fn secret_field(flow_key_hash: &[u8]) -> (String, &'static str) {
    (hex::encode(flow_key_hash), "token_secret")
}

fn fresh_params(key: &str) -> ServiceResult<SigningParams> {
    SigningParams::generate().map_err(|e| misconfigured(key, &e))
}

/// Gets temporary credentials and sends the browser to the provider.
pub(super) async fn start(
    app: &App,
    session: &ConnectSession,
    view: &IntegrationView,
    now: DateTime<Utc>,
) -> ServiceResult<Started> {
    let key = &view.record.key;
    let endpoints = Endpoints::resolve(&view.definition, &session.connection_config)?;
    let signer = consumer_signer(app, view).await?;
    let callback = app.config.oauth1_callback_url();
    let request = temporary_credentials_request(
        &signer,
        &endpoints.request_token,
        &callback,
        &BTreeMap::new(),
        &fresh_params(key)?,
    )
    .map_err(|e| misconfigured(key, &e))?;
    let reply = outbound::send_form(app, &request).await.map_err(|reason| {
        ServiceError::Upstream {
            code: "request_token_failed",
            message: format!(
                "the request-token call of integration {key:?} failed: {reason}; try again later"
            ),
        }
    })?;
    let temporary = parse_temporary_credentials(reply.status, &reply.body).map_err(|e| {
        ServiceError::Upstream {
            code: "request_token_failed",
            message: format!("the request-token call of integration {key:?} failed: {e}"),
        }
    })?;
    let url = authorization_redirect_url(
        &endpoints.authorization,
        &temporary.token,
        &view.definition.authorization_params,
    )
    .map_err(|e| misconfigured(key, &e))?;
    crate::net::check_url(&url, app.config.allow_local_providers)
        .map_err(|e| ServiceError::invalid("integration_misconfigured", e))?;

    let flow_hash = TokenHash::of(&temporary.token).as_bytes().to_vec();
    let (row, column) = secret_field(&flow_hash);
    let sealed_secret = app.vault.seal(
        Field::new("oauth_states", &row, column),
        temporary.token_secret.expose_secret().as_bytes(),
    );
    let binding = token::generate_token("");
    let flow = OAuthFlow {
        state_hash: flow_hash,
        session_id: session.id.clone(),
        binding_hash: TokenHash::of(&binding).as_bytes().to_vec(),
        project_id: session.project_id.clone(),
        integration_id: session.integration_id.clone(),
        integration_key: session.integration_key.clone(),
        user_id: session.user_id.clone(),
        redirect_url: session.redirect_url.clone(),
        redirect_uri: callback,
        scopes: Vec::new(),
        connection_config: session.connection_config.clone(),
        // The column that holds an OAuth2 flow's PKCE verifier holds the
        // temporary token secret here (sealed under its own field name).
        pkce_verifier: Some(sealed_secret),
        expected_issuer: None,
        expires_at: now + FLOW_TTL,
        created_at: now,
    };
    app.store.insert_oauth_flow(&flow).await?;
    Ok(Started {
        location: url.to_string(),
        cookie: flow_cookie(app, &temporary.token, &binding, "/oauth1"),
    })
}

/// `GET /oauth1/callback` with its raw query.
pub async fn finish(app: &App, query: &str, cookie_header: Option<&str>) -> Finished {
    // The temporary token names the flow: `oauth_token`, or, when the user
    // declined at X, `denied`.
    let token = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| (k == "oauth_token" || k == "denied") && !v.is_empty())
        .map(|(_, v)| v.into_owned());
    let Some(token) = token else {
        return Finished::Page(Page::new(
            400,
            "Missing oauth_token",
            "This callback has no oauth_token parameter, so it cannot be matched to a connection attempt.",
        ));
    };
    let flow = match take_bound_flow(
        app,
        &token,
        cookie_header,
        &app.config.oauth1_callback_url(),
    )
    .await
    {
        Ok(flow) => flow,
        Err(finished) => return finished,
    };
    if let Some(expired) = expired(&flow) {
        return expired;
    }
    let callback = match parse_callback(query) {
        Ok(callback) if callback.token == token => callback,
        Ok(_) => {
            return error_redirect(
                &flow,
                "exchange_failed",
                "the callback names two different oauth_token values",
            );
        }
        Err(Oauth1Error::AccessDenied) => {
            return error_redirect(
                &flow,
                "access_denied",
                "the user denied access at the provider",
            );
        }
        Err(e) => return error_redirect(&flow, "exchange_failed", &e.to_string()),
    };
    let outcome = complete(app, &flow, &callback).await;
    conclude(&flow, outcome)
}

/// Exchanges the verifier for token credentials and stores them.
async fn complete(
    app: &App,
    flow: &OAuthFlow,
    callback: &keyrelay_oauth::oauth1::Oauth1Callback,
) -> Result<(), (String, String)> {
    let failed = |e: ServiceError| ("exchange_failed".to_string(), e.to_string());
    let view = integrations::get(app, &flow.project_id, &flow.integration_key)
        .await
        .map_err(failed)?;
    let key = &view.record.key;
    let endpoints =
        Endpoints::resolve(&view.definition, &flow.connection_config).map_err(failed)?;
    let sealed = flow.pkce_verifier.as_deref().ok_or_else(|| {
        (
            "exchange_failed".to_string(),
            "the pending authorization lost its temporary credentials; start again".to_string(),
        )
    })?;
    let (row, column) = secret_field(&flow.state_hash);
    let secret = app
        .vault
        .open_string(Field::new("oauth_states", &row, column), sealed)
        .await
        .map_err(failed)?;
    let signer = consumer_signer(app, &view).await.map_err(failed)?;
    let request = token_credentials_request(
        &signer,
        &endpoints.access_token,
        &callback.token,
        &TokenSecret::new(secret.as_str()),
        &callback.verifier,
        &fresh_params(key).map_err(failed)?,
    )
    .map_err(|e| failed(misconfigured(key, &e)))?;
    let reply = outbound::send_form(app, &request).await.map_err(|reason| {
        (
            "exchange_failed".to_string(),
            format!("the access-token call of integration {key:?} failed: {reason}"),
        )
    })?;
    let tokens = parse_token_credentials(reply.status, &reply.body)
        .map_err(|e| ("exchange_failed".to_string(), e.to_string()))?;
    let extra: Map<String, Value> = tokens
        .extra
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let creds = Credentials::OAuth1 {
        token: tokens.token,
        token_secret: tokens.token_secret,
        extra,
    };
    connections::upsert(
        app,
        &view,
        &flow.user_id,
        flow.connection_config.clone(),
        creds,
        Vec::new(),
    )
    .await
    .map_err(failed)?;
    Ok(())
}
