//! Calls to token endpoints: the code exchange, refreshes and
//! client-credentials grants, and what their failures mean.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use keyrelay_oauth::{ClientCredentials, Grant, TokenError, TokenSet, parse_token_response};
use keyrelay_vault::{AuthorizationCode, ClientSecret, PkceVerifier};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::integrations::{self, IntegrationView};
use crate::services::outbound;
use crate::services::providers::Endpoints;

/// Why a token call failed, in the terms the callers map to responses.
#[derive(Debug)]
pub enum TokenCallError {
    /// The provider answered with an OAuth error code.
    Refused {
        error: String,
        description: Option<String>,
        status: u16,
        retry_after: Option<StdDuration>,
    },
    /// The reply was not a token reply (`status` set), or the network
    /// failed (`status` unset).
    Failed {
        reason: String,
        status: Option<u16>,
        retry_after: Option<StdDuration>,
    },
}

/// What a failure means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The grant is dead (`invalid_grant`, `invalid_token`): the user must
    /// connect again.
    Dead,
    /// The provider refuses the app's own credentials (`invalid_client`,
    /// `unauthorized_client`): the integration is misconfigured, the
    /// user's grant may be fine.
    ClientRejected,
    /// Worth retrying later: the network, 5xx, 429 and anything unexpected.
    Transient,
}

impl TokenCallError {
    pub fn class(&self) -> FailureClass {
        match self {
            TokenCallError::Refused { status, .. } if *status == 429 || *status >= 500 => {
                FailureClass::Transient
            }
            TokenCallError::Refused { error, .. } => match error.as_str() {
                "invalid_grant" | "invalid_token" => FailureClass::Dead,
                "invalid_client" | "unauthorized_client" => FailureClass::ClientRejected,
                _ => FailureClass::Transient,
            },
            TokenCallError::Failed { .. } => FailureClass::Transient,
        }
    }

    pub fn retry_after(&self) -> Option<StdDuration> {
        match self {
            TokenCallError::Refused { retry_after, .. }
            | TokenCallError::Failed { retry_after, .. } => *retry_after,
        }
    }

    /// The short code recorded in `last_error`.
    pub fn code(&self) -> String {
        match self {
            TokenCallError::Refused { error, .. } => error.clone(),
            TokenCallError::Failed {
                status: Some(s), ..
            } => format!("http_{s}"),
            TokenCallError::Failed { status: None, .. } => "network_error".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            TokenCallError::Refused {
                error, description, ..
            } => match description {
                Some(d) => format!("the provider answered {error}: {d}"),
                None => format!("the provider answered {error}"),
            },
            TokenCallError::Failed { reason, .. } => reason.clone(),
        }
    }
}

/// The app's client id and decrypted secret for an integration.
pub async fn client_of(app: &App, view: &IntegrationView) -> ServiceResult<(String, ClientSecret)> {
    let id = view.record.client_id.clone().unwrap_or_default();
    let secret = integrations::client_secret(app, &view.record.project_id, &view.record.key)
        .await?
        .ok_or_else(|| {
            ServiceError::invalid(
                "integration_misconfigured",
                format!(
                    "integration {:?} has no client_secret; PATCH it with one",
                    view.record.key
                ),
            )
        })?;
    Ok((id, secret))
}

/// Sends one grant to the token endpoint and parses the reply leniently.
pub async fn call_token_endpoint(
    app: &App,
    view: &IntegrationView,
    endpoints: &Endpoints,
    grant: &Grant<'_>,
) -> ServiceResult<Result<TokenSet, TokenCallError>> {
    let def = &view.definition;
    let token_endpoint = endpoints.token.as_deref().ok_or_else(|| {
        ServiceError::invalid(
            "integration_misconfigured",
            "the provider has no token endpoint",
        )
    })?;
    let (client_id, secret) = client_of(app, view).await?;
    let client = ClientCredentials {
        client_id: &client_id,
        client_secret: &secret,
        method: def.token_endpoint_auth_method,
    };
    let request = keyrelay_oauth::token_request(
        token_endpoint,
        grant,
        &client,
        def.scope_separator(),
        &def.token_params,
    );
    let reply = match outbound::send_form(app, &request).await {
        Ok(reply) => reply,
        Err(reason) => {
            return Ok(Err(TokenCallError::Failed {
                reason,
                status: None,
                retry_after: None,
            }));
        }
    };
    let (status, retry_after) = (reply.status, reply.retry_after);
    let parsed = parse_token_response(
        reply.status,
        reply.content_type.as_deref(),
        &reply.body,
        def.token_response.as_ref(),
        def.scope_separator(),
    );
    Ok(parsed.map_err(|e| match e {
        TokenError::OAuth {
            error, description, ..
        } => TokenCallError::Refused {
            error,
            description,
            status,
            retry_after,
        },
        other => TokenCallError::Failed {
            reason: other.to_string(),
            status: Some(status),
            retry_after,
        },
    }))
}

/// Exchanges an authorization code.
pub async fn exchange_code(
    app: &App,
    view: &IntegrationView,
    endpoints: &Endpoints,
    code: &AuthorizationCode,
    redirect_uri: &str,
    verifier: Option<&PkceVerifier>,
) -> ServiceResult<Result<TokenSet, TokenCallError>> {
    let grant = Grant::AuthorizationCode {
        code,
        redirect_uri,
        code_verifier: verifier,
    };
    call_token_endpoint(app, view, endpoints, &grant).await
}

/// When the access token of `tokens` expires: its `expires_in`, else the
/// lifetime the catalog says the provider's tokens have.
pub fn expiry_of(
    view: &IntegrationView,
    tokens: &TokenSet,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    tokens
        .expires_in
        .or(view.definition.token_lifetime_seconds)
        .and_then(|s| i64::try_from(s).ok())
        .map(|s| now + Duration::seconds(s))
}
