//! The hosted authorization-code + PKCE flow against the test kit's fake
//! provider: both client authentication methods, discovery, and every way a
//! callback can go wrong, each ending in the documented error with nothing
//! stored.

use keyrelay_testkit::{
    Backend, Browser, CallbackResult, FakeProvider, FakeProviderOptions, TestServer, TokenMode,
    both_backends,
};
use serde_json::{Value, json};

both_backends! {
    flow_with_basic_auth => flow_with_basic_auth;
    flow_with_post_auth_and_form_reply => flow_with_post_auth_and_form_reply;
    flow_with_discovery_and_iss => flow_with_discovery_and_iss;
    negative_callbacks_store_nothing => negative_callbacks_store_nothing;
    discovery_without_s256_sends_no_pkce => discovery_without_s256_sends_no_pkce;
    sessions_refuse_bad_input => sessions_refuse_bad_input;
}

pub(crate) const APP_REDIRECT: &str = "https://app.example.com/done";

/// A server, a project key, and an integration named `fake` for `provider`.
async fn setup(
    backend: Backend,
    provider: &FakeProvider,
    with_endpoints: bool,
) -> Option<(TestServer, String)> {
    let server = TestServer::start(backend).await?;
    let (_, key) = server.create_project("flows").await;
    let o = provider.options();
    let created = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "fake", "provider": provider.definition(with_endpoints),
                   "client_id": o.client_id, "client_secret": o.client_secret,
                   "scopes": ["read", "write"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    Some((server, key))
}

async fn new_session(server: &TestServer, key: &str, user: &str) -> String {
    session_url(server, key, "fake", user).await
}

/// Creates a connect session for `user` on `integration` (returning to
/// [`APP_REDIRECT`]) and returns its connect link.
pub(crate) async fn session_url(
    server: &TestServer,
    key: &str,
    integration: &str,
    user: &str,
) -> String {
    let resp = server
        .post(
            "/v1/connect/sessions",
            key,
            json!({"integration": integration, "user_id": user, "redirect_url": APP_REDIRECT}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert!(resp.body["expires_at"].is_string());
    resp.body["url"].as_str().unwrap().to_string()
}

/// Walks a browser from the connect link to keyrelay's callback, and calls it.
async fn run_flow(server: &TestServer, browser: &mut Browser, url: &str) -> CallbackResult {
    let callback = browser
        .follow_until(url, &server.url("/oauth/callback"))
        .await;
    browser.callback(&callback).await
}

fn assert_private(result: &CallbackResult) {
    assert_eq!(result.headers["referrer-policy"], "no-referrer");
    assert_eq!(result.headers["cache-control"], "no-store");
}

fn assert_success(result: &CallbackResult, user: &str) {
    assert_eq!(result.status, 302, "{}", result.body);
    assert_private(result);
    let location = result.location.as_ref().unwrap();
    assert!(location.as_str().starts_with(APP_REDIRECT), "{location}");
    assert_eq!(
        result.param("keyrelay_status"),
        Some("success"),
        "{location}"
    );
    assert_eq!(result.param("integration"), Some("fake"));
    assert_eq!(result.param("user_id"), Some(user));
}

async fn token_of(server: &TestServer, key: &str, user: &str) -> Value {
    let resp = server
        .get(&format!("/v1/connections/fake/{user}/token"), key)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.body
}

async fn full_flow(backend: Backend, options: FakeProviderOptions, with_endpoints: bool) {
    let provider = FakeProvider::start(options).await;
    let Some((server, key)) = setup(backend, &provider, with_endpoints).await else {
        return;
    };
    let user = "user 42@example.com";
    let url = new_session(&server, &key, user).await;
    let mut browser = Browser::new();
    let result = run_flow(&server, &mut browser, &url).await;
    assert_success(&result, user);

    // The authorization request was the one API.md describes.
    let sent = provider.last_authorize();
    assert_eq!(sent["response_type"], "code");
    assert_eq!(sent["redirect_uri"], server.url("/oauth/callback"));
    assert_eq!(sent["scope"], "read write");
    assert_eq!(sent["code_challenge_method"], "S256");
    assert!(sent["state"].len() >= 43, "at least 256 bits of state");

    let encoded = "user%2042%40example.com";
    let token = token_of(&server, &key, encoded).await;
    assert_eq!(
        token["access_token"].as_str().unwrap(),
        provider.issued_tokens().last().unwrap()
    );
    assert!(token["expires_at"].is_string());
    let connection = server
        .get(&format!("/v1/connections/fake/{encoded}"), &key)
        .await;
    assert_eq!(connection.status, 200);
    assert_eq!(connection.body["status"], "active");
    assert_eq!(connection.body["user_id"], user);
    assert_eq!(
        connection.body["provider"], "Fake",
        "an inline definition's display name"
    );
    assert!(
        !connection.text.contains("at-"),
        "no credential in a connection"
    );

    // The session link works once.
    let again = browser.get(&url).await;
    assert_eq!(again.status(), 404);

    // Reconnecting replaces the credentials of the same connection.
    let url = new_session(&server, &key, user).await;
    let result = run_flow(&server, &mut browser, &url).await;
    assert_success(&result, user);
    let token2 = token_of(&server, &key, encoded).await;
    assert_ne!(token2["access_token"], token["access_token"]);
    let list = server.get("/v1/connections?integration=fake", &key).await;
    assert_eq!(list.body["connections"].as_array().unwrap().len(), 1);

    // Verification with the stored token (introspection when discovered,
    // else the provider's verification request).
    let verified = server
        .post(
            &format!("/v1/connections/fake/{encoded}/verify"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.body["valid"], true, "{}", verified.text);

    // A connected integration cannot be deleted.
    let busy = server.delete("/v1/integrations/fake", &key).await;
    assert_eq!(
        (busy.status, busy.code()),
        (409, "integration_has_connections")
    );
    let deleted = server
        .delete(&format!("/v1/connections/fake/{encoded}"), &key)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["deleted"], true);
    let gone = server
        .get(&format!("/v1/connections/fake/{encoded}"), &key)
        .await;
    assert_eq!((gone.status, gone.code()), (404, "unknown_connection"));
}

async fn flow_with_basic_auth(backend: Backend) {
    full_flow(backend, FakeProviderOptions::default(), true).await;
}

async fn flow_with_post_auth_and_form_reply(backend: Backend) {
    let options = FakeProviderOptions {
        auth_method: "client_secret_post",
        token_mode: TokenMode::Form,
        ..FakeProviderOptions::default()
    };
    full_flow(backend, options, true).await;
}

async fn flow_with_discovery_and_iss(backend: Backend) {
    let options = FakeProviderOptions {
        iss: Some(None),
        discovery: true,
        ..FakeProviderOptions::default()
    };
    full_flow(backend, options, false).await;
}

async fn connection_count(server: &TestServer, key: &str) -> usize {
    let list = server.get("/v1/connections", key).await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.body["connections"].as_array().unwrap().len()
}

async fn negative_callbacks_store_nothing(backend: Backend) {
    let provider = FakeProvider::start(FakeProviderOptions::default()).await;
    let Some((server, key)) = setup(backend, &provider, true).await else {
        return;
    };
    let callback_prefix = server.url("/oauth/callback");

    // A redirect_url that is not allowed: refused before anything starts.
    let refused = server
        .post(
            "/v1/connect/sessions",
            &key,
            json!({"integration": "fake", "user_id": "u", "redirect_url": "https://evil.example/steal"}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (400, "redirect_url_not_allowed")
    );

    // Replayed state: the second use of a callback is a 400 page, no redirect.
    let mut browser = Browser::new();
    let url = new_session(&server, &key, "replay").await;
    let callback = browser.follow_until(&url, &callback_prefix).await;
    assert_success(&browser.callback(&callback).await, "replay");
    let replay = browser.callback(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.location.is_none());
    assert_private(&replay);
    let delete = server.delete("/v1/connections/fake/replay", &key).await;
    assert_eq!(delete.status, 200);

    // Forged state: unknown, 400 page.
    let forged = browser
        .callback(&format!(
            "{callback_prefix}?code=abc&state=forged-state-value"
        ))
        .await;
    assert_eq!(forged.status, 400);
    assert!(forged.location.is_none());

    // A state from another session: the callback of session A in the
    // browser of session B is refused, and A's flow still works after.
    let mut browser_a = Browser::new();
    let mut browser_b = Browser::new();
    let url_a = new_session(&server, &key, "alice").await;
    let url_b = new_session(&server, &key, "bob").await;
    let callback_a = browser_a.follow_until(&url_a, &callback_prefix).await;
    let _callback_b = browser_b.follow_until(&url_b, &callback_prefix).await;
    let crossed = browser_b.callback(&callback_a).await;
    assert_eq!(crossed.status, 400, "{}", crossed.body);
    assert!(crossed.body.contains("another browser"), "{}", crossed.body);
    let no_cookie = Browser::new().callback(&callback_a).await;
    assert_eq!(no_cookie.status, 400);
    assert_eq!(connection_count(&server, &key).await, 0);
    assert_success(&browser_a.callback(&callback_a).await, "alice");
    server.delete("/v1/connections/fake/alice", &key).await;

    // Expired state: the flow is aged in the database.
    let mut browser = Browser::new();
    let url = new_session(&server, &key, "late").await;
    let callback = browser.follow_until(&url, &callback_prefix).await;
    age_flows(&server).await;
    let late = browser.callback(&callback).await;
    assert_eq!(late.status, 302);
    assert_eq!(late.param("keyrelay_status"), Some("error"));
    assert_eq!(late.param("error"), Some("state_expired"));
    assert_private(&late);

    // The provider's own error.
    provider.set_options(|o| o.deny = true);
    let denied = run_flow(
        &server,
        &mut Browser::new(),
        &new_session(&server, &key, "d").await,
    )
    .await;
    assert_eq!(
        denied.param("error"),
        Some("access_denied"),
        "{:?}",
        denied.location
    );
    assert_eq!(denied.param("user_id"), Some("d"));
    provider.set_options(|o| o.deny = false);

    // An issuer mismatch (RFC 9207).
    provider.set_options(|o| o.iss = Some(Some("https://evil.example".into())));
    let mismatch = run_flow(
        &server,
        &mut Browser::new(),
        &new_session(&server, &key, "i").await,
    )
    .await;
    assert_eq!(
        mismatch.param("error"),
        Some("issuer_mismatch"),
        "{:?}",
        mismatch.location
    );
    provider.set_options(|o| o.iss = None);

    // Failed exchanges: an error status, garbage, an error inside a 200, and
    // a client the provider does not accept.
    for mode in [
        TokenMode::Error400,
        TokenMode::Garbage,
        TokenMode::ErrorIn200,
    ] {
        provider.set_options(|o| o.token_mode = mode);
        let failed = run_flow(
            &server,
            &mut Browser::new(),
            &new_session(&server, &key, "x").await,
        )
        .await;
        assert_eq!(
            failed.param("error"),
            Some("exchange_failed"),
            "{mode:?}: {:?}",
            failed.location
        );
        assert!(failed.param("error_description").is_some());
    }
    provider.set_options(|o| o.token_mode = TokenMode::Json);
    let patched = server
        .patch(
            "/v1/integrations/fake",
            &key,
            json!({"client_secret": "wrong-secret"}),
        )
        .await;
    assert_eq!(patched.status, 200);
    let failed = run_flow(
        &server,
        &mut Browser::new(),
        &new_session(&server, &key, "y").await,
    )
    .await;
    assert_eq!(failed.param("error"), Some("exchange_failed"));
    assert!(
        !failed
            .location
            .as_ref()
            .unwrap()
            .as_str()
            .contains("wrong-secret"),
        "the secret never reaches a URL"
    );

    assert_eq!(
        connection_count(&server, &key).await,
        0,
        "nothing was stored"
    );
}

/// Moves every pending flow's expiry into the past.
async fn age_flows(server: &TestServer) {
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    server
        .raw_sql("UPDATE oauth_states SET expires_at = $1", Some(past))
        .await;
}

async fn discovery_without_s256_sends_no_pkce(backend: Backend) {
    let provider = FakeProvider::start(FakeProviderOptions {
        require_pkce: false,
        ..FakeProviderOptions::default()
    })
    .await;
    let Some((server, key)) = setup(backend, &provider, false).await else {
        return;
    };
    let url = new_session(&server, &key, "plain").await;
    let result = run_flow(&server, &mut Browser::new(), &url).await;
    assert_success(&result, "plain");
    let sent = provider.last_authorize();
    assert!(
        !sent.contains_key("code_challenge"),
        "the metadata lists no S256, so no PKCE: {sent:?}"
    );
}

async fn sessions_refuse_bad_input(backend: Backend) {
    let provider = FakeProvider::start(FakeProviderOptions::default()).await;
    let Some((server, key)) = setup(backend, &provider, true).await else {
        return;
    };
    server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "stripe", "provider": "stripe_api_key"}),
        )
        .await;
    server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "zd", "provider": "zendesk", "client_id": "c", "client_secret": "s"}),
        )
        .await;
    let ok = |extra: Value| {
        let mut body = json!({"integration": "fake", "user_id": "u", "redirect_url": APP_REDIRECT});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (body, status, code) in [
        (
            ok(json!({"integration": "nope"})),
            404,
            "unknown_integration",
        ),
        (ok(json!({"integration": "stripe"})), 400, "not_connectable"),
        (ok(json!({"user_id": ""})), 400, "invalid_request"),
        (
            ok(json!({"user_id": "x".repeat(257)})),
            400,
            "invalid_request",
        ),
        (
            ok(json!({"redirect_url": "https://app.example.com/done/../evil"})),
            400,
            "redirect_url_not_allowed",
        ),
        (
            ok(json!({"redirect_url": "https://app.example.com/done?next=//evil"})),
            400,
            "redirect_url_not_allowed",
        ),
        (ok(json!({"scopes": ["has space"]})), 400, "invalid_request"),
        (
            ok(json!({"connection_config": {"subdomain": "x"}})),
            400,
            "invalid_connection_config",
        ),
        (
            ok(json!({"integration": "zd"})),
            400,
            "missing_connection_config",
        ),
        (
            ok(json!({"integration": "zd", "connection_config": {"subdomain": "evil.com/x"}})),
            400,
            "invalid_connection_config",
        ),
        (
            ok(json!({"integration": "zd", "connection_config": {"subdomain": 5}})),
            400,
            "invalid_connection_config",
        ),
        (ok(json!({"unexpected": true})), 400, "invalid_request"),
        (
            json!({"integration": "fake", "redirect_url": APP_REDIRECT}),
            400,
            "invalid_request",
        ),
    ] {
        let r = server
            .post("/v1/connect/sessions", &key, body.clone())
            .await;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.text);
    }
    // A zendesk session with a valid subdomain starts, and its endpoints use it.
    let r = server
        .post(
            "/v1/connect/sessions",
            &key,
            json!({"integration": "zd", "user_id": "u", "redirect_url": APP_REDIRECT,
                   "connection_config": {"subdomain": "acme"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let start = Browser::new().get(r.body["url"].as_str().unwrap()).await;
    assert_eq!(start.status(), 302);
    let location = start.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://acme.zendesk.com/oauth/authorizations/new?"),
        "{location}"
    );

    // An expired session link is a page, not a redirect.
    let url = new_session(&server, &key, "late").await;
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    server
        .raw_sql("UPDATE connect_sessions SET expires_at = $1", Some(past))
        .await;
    let expired = Browser::new().get(&url).await;
    assert_eq!(expired.status(), 410);
    assert_eq!(expired.headers()["cache-control"], "no-store");
    assert!(expired.headers().get("location").is_none());
}
