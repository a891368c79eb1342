//! The connect flow against a real, independently written OpenID provider:
//! panva's `oidc-provider` from the npm registry, run on loopback by the test
//! kit (skipped with a message when Node.js is not installed). keyrelay finds
//! its endpoints by discovery, sends PKCE because the metadata lists S256,
//! checks the RFC 9207 `iss` it sends, and stores tokens that then work at
//! the provider's userinfo and introspection endpoints.

use std::collections::HashMap;

use keyrelay_testkit::{
    Backend, Browser, OidcClient, OidcOptions, OidcServer, TestServer, both_backends,
};
use serde_json::json;

/// The client keyrelay's integrations use at the provider.
pub(crate) const CLIENT_ID: &str = "keyrelay-test";
pub(crate) const CLIENT_SECRET: &str = "oidc-client-secret-value";

both_backends! {
    connect_with_basic_auth => connect_with_basic_auth;
    connect_with_post_auth => connect_with_post_auth;
}

async fn connect_with_basic_auth(backend: Backend) {
    connect(backend, "client_secret_basic").await;
}

async fn connect_with_post_auth(backend: Backend) {
    connect(backend, "client_secret_post").await;
}

async fn connect(backend: Backend, method: &'static str) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let callback = server.url("/oauth/callback");
    let client = OidcClient::web(CLIENT_ID, CLIENT_SECRET, &callback).with_auth_method(method);
    let Some(oidc) = OidcServer::start(OidcOptions {
        clients: vec![client],
        ..OidcOptions::default()
    })
    .await
    else {
        return;
    };
    let (_, key) = server.create_project("real").await;
    let created = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "oidc",
                   "provider": {"auth_mode": "oauth2", "issuer": oidc.issuer,
                                "token_endpoint_auth_method": method,
                                "api_base_url": oidc.issuer,
                                "verification": {"method": "GET", "path": "/me"}},
                   "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                   "scopes": ["openid", "email"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let params = connect_user(&server, &key, &oidc, "oidc", "end-user-1").await;
    assert_eq!(
        params.get("iss"),
        Some(&oidc.issuer),
        "the provider sends iss (RFC 9207)"
    );

    let token = server
        .get("/v1/connections/oidc/end-user-1/token", &key)
        .await;
    assert_eq!(token.status, 200, "{}", token.text);
    let access_token = token.body["access_token"].as_str().unwrap();
    let me = reqwest::Client::new()
        .get(oidc.url("/me"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the stored token works at the provider");
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["sub"], "test-user");

    // Verify uses the provider's introspection endpoint (discovered).
    let verified = server
        .post("/v1/connections/oidc/end-user-1/verify", &key, json!({}))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.body["valid"], true, "{}", verified.text);
    assert!(
        verified.body["detail"]
            .as_str()
            .unwrap()
            .contains("introspection")
    );

    // A refresh at the real server rotates the tokens; the new one works.
    let refreshed = server
        .get(
            "/v1/connections/oidc/end-user-1/token?force_refresh=true",
            &key,
        )
        .await;
    assert_eq!(
        refreshed.status,
        200,
        "{}\n{}",
        refreshed.text,
        oidc.stderr()
    );
    assert_ne!(refreshed.body["access_token"], token.body["access_token"]);
    let me = reqwest::Client::new()
        .get(oidc.url("/me"))
        .bearer_auth(refreshed.body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // The same user's data through keyrelay's proxy: the provider's own
    // userinfo path, with keyrelay stamping the stored token.
    let proxied = server
        .client
        .get(server.url("/v1/proxy/me"))
        .bearer_auth(&key)
        .header("Keyrelay-Integration", "oidc")
        .header("Keyrelay-User", "end-user-1")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert!(proxied.headers().get("keyrelay-error").is_none());
    let me: serde_json::Value = proxied.json().await.unwrap();
    assert_eq!(me["sub"], "test-user");
    assert_eq!(me["email"], "test-user@example.test");
}

/// Sends `user` through a connect session of `integration`, following the
/// provider's redirects (its login and consent complete on their own) up to
/// keyrelay's callback; panics unless keyrelay reports success. Returns the
/// query parameters the provider sent to the callback.
pub(crate) async fn connect_user(
    server: &TestServer,
    key: &str,
    oidc: &OidcServer,
    integration: &str,
    user: &str,
) -> HashMap<String, String> {
    let session = server
        .post(
            "/v1/connect/sessions",
            key,
            json!({"integration": integration, "user_id": user,
                   "redirect_url": "https://app.example.com/done"}),
        )
        .await;
    assert_eq!(session.status, 201, "{}", session.text);

    let callback = server.url("/oauth/callback");
    let mut browser = Browser::new();
    let at_callback = browser
        .follow_until(session.body["url"].as_str().unwrap(), &callback)
        .await;
    let parsed = url::Url::parse(&at_callback).unwrap();
    let params: HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    let result = browser.callback(&at_callback).await;
    assert_eq!(
        result.param("keyrelay_status"),
        Some("success"),
        "{:?} {}\n{}",
        result.location,
        result.body,
        oidc.stderr()
    );
    params
}
