//! A fake OAuth2 provider written here for tests: it checks what a real one
//! checks (client authentication by the configured method, the exact
//! redirect_uri, PKCE S256, single-use codes) and can be told to misbehave
//! (deny, send another `iss`, answer the token call with garbage or with an
//! error inside a 200).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How the token endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    /// A normal JSON token reply.
    Json,
    /// GitHub-style form-encoded reply.
    Form,
    /// An HTML page with status 200.
    Garbage,
    /// `{"error": "invalid_grant"}` with status 200.
    ErrorIn200,
    /// `{"error": "invalid_grant"}` with status 400.
    Error400,
    /// `{"error": "invalid_client"}` with status 401, as when the app's
    /// client secret was rotated at the provider.
    InvalidClient,
    /// 503 with `Retry-After: 1`.
    Unavailable,
    /// 429 with `Retry-After: 2`.
    RateLimited,
}

/// How the revocation endpoint (RFC 7009) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationMode {
    /// No revocation endpoint at all (404, and none in discovery).
    Absent,
    /// Revokes and answers 200.
    Ok,
    /// 503, to exercise keyrelay's retry queue.
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct FakeProviderOptions {
    pub client_id: String,
    pub client_secret: String,
    /// `client_secret_basic` or `client_secret_post`.
    pub auth_method: &'static str,
    pub require_pkce: bool,
    /// Answer `/authorize` with `error=access_denied`.
    pub deny: bool,
    /// Add `iss` to the authorization response: `Some(None)` the real issuer,
    /// `Some(Some(x))` a wrong one, `None` no `iss` at all.
    pub iss: Option<Option<String>>,
    pub token_mode: TokenMode,
    pub expires_in: u64,
    /// Serve discovery metadata at /.well-known/openid-configuration.
    pub discovery: bool,
    /// How long the token endpoint takes to answer (a slow provider widens
    /// races).
    pub token_delay: std::time::Duration,
    pub revocation: RevocationMode,
}

impl Default for FakeProviderOptions {
    fn default() -> Self {
        FakeProviderOptions {
            client_id: "fake-client".into(),
            client_secret: "fake-secret-value".into(),
            auth_method: "client_secret_basic",
            require_pkce: true,
            deny: false,
            iss: None,
            token_mode: TokenMode::Json,
            expires_in: 3600,
            discovery: true,
            token_delay: std::time::Duration::ZERO,
            revocation: RevocationMode::Ok,
        }
    }
}

struct Grant {
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
}

#[derive(Default)]
struct Shared {
    codes: HashMap<String, Grant>,
    /// Access tokens issued, newest last.
    issued: Vec<String>,
    token_calls: usize,
    refresh_calls: usize,
    client_credentials_calls: usize,
    /// Refresh token -> (its grant, still unused). Rotation: each refresh
    /// spends the token; spending one twice revokes the whole grant, as
    /// real providers do when they detect reuse.
    refresh_tokens: HashMap<String, (u64, bool)>,
    /// Access token -> (its grant, when it expires).
    access_tokens: HashMap<String, (u64, std::time::Instant)>,
    revoked_grants: std::collections::HashSet<u64>,
    next_grant: u64,
    /// Tokens revoked through the revocation endpoint, with their hint.
    revoked: Vec<(String, String)>,
    revocation_calls: usize,
    /// The last authorization request's query, for assertions.
    last_authorize: HashMap<String, String>,
}

struct Inner {
    options: Mutex<FakeProviderOptions>,
    shared: Mutex<Shared>,
    issuer: String,
}

/// A running fake provider.
#[derive(Clone)]
pub struct FakeProvider {
    pub issuer: String,
    inner: Arc<Inner>,
}

impl FakeProvider {
    pub async fn start(options: FakeProviderOptions) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let inner = Arc::new(Inner {
            options: Mutex::new(options),
            shared: Mutex::new(Shared::default()),
            issuer: issuer.clone(),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/introspect", post(introspect))
            .route("/revoke", post(revoke))
            // The same, under a per-tenant path (for endpoints with
            // `{connection_config.…}` placeholders); only tenant "acme".
            .route("/tenants/acme/revoke", post(revoke))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProvider { issuer, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// An inline provider definition for keyrelay that points here.
    pub fn definition(&self, with_endpoints: bool) -> Value {
        let o = self.options();
        let mut def = json!({
            "auth_mode": "oauth2",
            "display_name": "Fake",
            "issuer": self.issuer,
            "token_endpoint_auth_method": o.auth_method,
            "api_base_url": self.issuer,
            "verification": {"method": "GET", "path": "/userinfo"},
        });
        if with_endpoints {
            def["authorization_endpoint"] = json!(self.url("/authorize"));
            def["token_endpoint"] = json!(self.url("/token"));
        }
        def
    }

    pub fn options(&self) -> FakeProviderOptions {
        self.inner.options.lock().unwrap().clone()
    }

    pub fn set_options(&self, f: impl FnOnce(&mut FakeProviderOptions)) {
        f(&mut self.inner.options.lock().unwrap());
    }

    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner.shared.lock().unwrap().issued.clone()
    }

    pub fn token_calls(&self) -> usize {
        self.inner.shared.lock().unwrap().token_calls
    }

    /// Refresh-token grants received (successful or not).
    pub fn refresh_calls(&self) -> usize {
        self.inner.shared.lock().unwrap().refresh_calls
    }

    /// (token, token_type_hint) of every revocation received.
    pub fn revoked(&self) -> Vec<(String, String)> {
        self.inner.shared.lock().unwrap().revoked.clone()
    }

    pub fn revocation_calls(&self) -> usize {
        self.inner.shared.lock().unwrap().revocation_calls
    }

    /// Whether the provider still honours this access token.
    pub fn access_token_active(&self, token: &str) -> bool {
        token_active(&self.inner.shared.lock().unwrap(), token)
    }

    /// Whether the provider still honours this refresh token.
    pub fn refresh_token_active(&self, token: &str) -> bool {
        let shared = self.inner.shared.lock().unwrap();
        shared
            .refresh_tokens
            .get(token)
            .is_some_and(|(g, unused)| *unused && !shared.revoked_grants.contains(g))
    }

    /// How many grants the provider revoked because a refresh token was
    /// used twice (or revoked).
    pub fn revoked_grants(&self) -> usize {
        self.inner.shared.lock().unwrap().revoked_grants.len()
    }

    pub fn client_credentials_calls(&self) -> usize {
        self.inner.shared.lock().unwrap().client_credentials_calls
    }

    pub fn last_authorize(&self) -> HashMap<String, String> {
        self.inner.shared.lock().unwrap().last_authorize.clone()
    }
}

fn random() -> String {
    let bytes: [u8; 24] = rand::thread_rng().r#gen();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({"error": error}))).into_response()
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Response {
    let o = inner.options.lock().unwrap().clone();
    if !o.discovery {
        return StatusCode::NOT_FOUND.into_response();
    }
    let i = &inner.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "introspection_endpoint": format!("{i}/introspect"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "revocation_endpoint": (o.revocation != RevocationMode::Absent).then(|| format!("{i}/revoke")),
        "code_challenge_methods_supported": if o.require_pkce { json!(["S256"]) } else { json!([]) },
        "token_endpoint_auth_methods_supported": [o.auth_method],
        "authorization_response_iss_parameter_supported": o.iss.is_some(),
    }))
    .into_response()
}

async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let o = inner.options.lock().unwrap().clone();
    inner.shared.lock().unwrap().last_authorize = q.clone();
    let (Some(redirect_uri), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (
            StatusCode::BAD_REQUEST,
            "redirect_uri and state are required",
        )
            .into_response();
    };
    if q.get("client_id") != Some(&o.client_id)
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return (StatusCode::BAD_REQUEST, "bad client_id or response_type").into_response();
    }
    let challenge = q.get("code_challenge").cloned();
    if o.require_pkce
        && (challenge.is_none()
            || q.get("code_challenge_method").map(String::as_str) != Some("S256"))
    {
        return (StatusCode::BAD_REQUEST, "PKCE S256 is required").into_response();
    }
    let mut target = url::Url::parse(redirect_uri).unwrap();
    {
        let mut pairs = target.query_pairs_mut();
        if o.deny {
            pairs.append_pair("error", "access_denied");
            pairs.append_pair("error_description", "The user said no");
        } else {
            let code = random();
            inner.shared.lock().unwrap().codes.insert(
                code.clone(),
                Grant {
                    redirect_uri: redirect_uri.clone(),
                    challenge,
                    scope: q.get("scope").cloned().unwrap_or_default(),
                },
            );
            pairs.append_pair("code", &code);
        }
        pairs.append_pair("state", state);
        match &o.iss {
            Some(None) => {
                pairs.append_pair("iss", &inner.issuer);
            }
            Some(Some(other)) => {
                pairs.append_pair("iss", other);
            }
            None => {}
        }
    }
    Redirect::to(target.as_str()).into_response()
}

/// Client authentication as the configured method demands (RFC 6749 §2.3.1).
fn client_ok(o: &FakeProviderOptions, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    match o.auth_method {
        "client_secret_basic" => {
            let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
                return false;
            };
            let Some(encoded) = value.strip_prefix("Basic ") else {
                return false;
            };
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
                return false;
            };
            let decoded = String::from_utf8(decoded).unwrap_or_default();
            let Some((id, secret)) = decoded.split_once(':') else {
                return false;
            };
            let un = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            un(id) == o.client_id
                && un(secret) == o.client_secret
                && !form.contains_key("client_secret")
        }
        _ => {
            form.get("client_id") == Some(&o.client_id)
                && form.get("client_secret") == Some(&o.client_secret)
                && !headers.contains_key("authorization")
        }
    }
}

async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let o = inner.options.lock().unwrap().clone();
    inner.shared.lock().unwrap().token_calls += 1;
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        inner.shared.lock().unwrap().refresh_calls += 1;
    }
    if !o.token_delay.is_zero() {
        tokio::time::sleep(o.token_delay).await;
    }
    if !client_ok(&o, &headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    match o.token_mode {
        TokenMode::Garbage => return (StatusCode::OK, "<html>Oops</html>").into_response(),
        TokenMode::ErrorIn200 => return oauth_error(StatusCode::OK, "invalid_grant"),
        TokenMode::Error400 => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
        TokenMode::InvalidClient => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
        TokenMode::Unavailable => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "1")],
                "down for maintenance",
            )
                .into_response();
        }
        TokenMode::RateLimited => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "2")],
                Json(json!({"error": "slow_down"})),
            )
                .into_response();
        }
        _ => {}
    }
    let mut shared = inner.shared.lock().unwrap();
    let mut grant_id = None;
    let scope = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(grant) = form.get("code").and_then(|c| shared.codes.remove(c)) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if let Some(challenge) = &grant.challenge {
                let Some(verifier) = form.get("code_verifier") else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
                };
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if &computed != challenge {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
                }
            }
            shared.next_grant += 1;
            grant_id = Some(shared.next_grant);
            grant.scope
        }
        Some("refresh_token") => {
            let Some(rt) = form.get("refresh_token") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
            };
            let Some(&(g, unused)) = shared.refresh_tokens.get(rt) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if shared.revoked_grants.contains(&g) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if !unused {
                // Reuse of a rotated refresh token: someone has a copy.
                shared.revoked_grants.insert(g);
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            shared.refresh_tokens.insert(rt.clone(), (g, false));
            grant_id = Some(g);
            String::new()
        }
        Some("client_credentials") => {
            shared.client_credentials_calls += 1;
            form.get("scope").cloned().unwrap_or_default()
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let access = format!("at-{}", random());
    let refresh = format!("rt-{}", random());
    shared.issued.push(access.clone());
    let g = grant_id.unwrap_or_else(|| {
        shared.next_grant += 1;
        shared.next_grant
    });
    let lifetime = std::time::Duration::from_secs(o.expires_in.max(1));
    shared
        .access_tokens
        .insert(access.clone(), (g, std::time::Instant::now() + lifetime));
    shared.refresh_tokens.insert(refresh.clone(), (g, true));
    if o.token_mode == TokenMode::Form {
        let body = format!(
            "access_token={access}&refresh_token={refresh}&expires_in={}&scope={}&token_type=bearer",
            o.expires_in,
            url::form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>()
        );
        return (
            [("content-type", "application/x-www-form-urlencoded")],
            body,
        )
            .into_response();
    }
    let mut reply = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": o.expires_in.to_string(),
        "scope": scope,
        "instance_url": "https://instance.fake.example",
    });
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        reply["refresh_token"] = json!(refresh);
    }
    Json(reply).into_response()
}

fn bearer_ok(inner: &Inner, headers: &HeaderMap) -> bool {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    token.is_some_and(|t| token_active(&inner.shared.lock().unwrap(), t))
}

/// Issued here, not expired, its grant not revoked.
fn token_active(shared: &Shared, token: &str) -> bool {
    shared.access_tokens.get(token).is_some_and(|(g, until)| {
        *until > std::time::Instant::now() && !shared.revoked_grants.contains(g)
    })
}

async fn revoke(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let o = inner.options.lock().unwrap().clone();
    inner.shared.lock().unwrap().revocation_calls += 1;
    match o.revocation {
        RevocationMode::Absent => return StatusCode::NOT_FOUND.into_response(),
        RevocationMode::Unavailable => {
            return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response();
        }
        RevocationMode::Ok => {}
    }
    if !client_ok(&o, &headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let Some(token) = form.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let hint = form.get("token_type_hint").cloned().unwrap_or_default();
    let mut shared = inner.shared.lock().unwrap();
    shared.revoked.push((token.clone(), hint));
    // Revoking a refresh token ends the grant; an access token just itself.
    if let Some(&(g, _)) = shared.refresh_tokens.get(token) {
        shared.revoked_grants.insert(g);
    }
    shared.access_tokens.remove(token);
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    StatusCode::OK.into_response()
}

async fn userinfo(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if bearer_ok(&inner, &headers) {
        Json(json!({"sub": "fake-user"})).into_response()
    } else {
        oauth_error(StatusCode::UNAUTHORIZED, "invalid_token")
    }
}

async fn introspect(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let o = inner.options.lock().unwrap().clone();
    if !client_ok(&o, &headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let active = form
        .get("token")
        .is_some_and(|t| token_active(&inner.shared.lock().unwrap(), t));
    Json(json!({"active": active})).into_response()
}
