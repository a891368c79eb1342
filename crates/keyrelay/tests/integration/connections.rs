//! The connections API beyond the connect flow: imports for every mode,
//! client credentials, refresh and its failure classes, listing with
//! filters and cursors, and the public routes' rate limit.

use keyrelay_testkit::{
    Backend, Browser, FakeProvider, FakeProviderOptions, TestServer, both_backends,
};
use serde_json::json;

both_backends! {
    imports_for_each_mode => imports_for_each_mode;
    client_credentials_renew_when_expired => client_credentials_renew_when_expired;
    refresh_keeps_working_and_marks_dead_grants => refresh_keeps_working_and_marks_dead_grants;
    listing_filters_and_pages => listing_filters_and_pages;
}

async fn imports_for_each_mode(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key) = server.create_project("imports").await;
    for (name, provider) in [("stripe", "stripe_api_key"), ("twilio", "twilio")] {
        let r = server
            .post(
                "/v1/integrations",
                &key,
                json!({"key": name, "provider": provider}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    server.create_integration("github", &key, "gh-secret").await;

    let api_key = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "stripe", "user_id": "shop-1",
                   "credentials": {"api_key": "sk_test_IMPORTED"}}),
        )
        .await;
    assert_eq!(api_key.status, 201, "{}", api_key.text);
    assert_eq!(api_key.body["auth_mode"], "api_key");
    assert_eq!(api_key.body["provider"], "stripe_api_key");
    assert!(!api_key.text.contains("sk_test_IMPORTED"));
    let token = server
        .get("/v1/connections/stripe/shop-1/token", &key)
        .await;
    assert_eq!(token.body, json!({"api_key": "sk_test_IMPORTED"}));

    let basic = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "twilio", "user_id": "acct",
                   "credentials": {"username": "AC123", "password": "pw-IMPORTED"}}),
        )
        .await;
    assert_eq!(basic.status, 201, "{}", basic.text);
    let token = server.get("/v1/connections/twilio/acct/token", &key).await;
    assert_eq!(
        token.body,
        json!({"username": "AC123", "password": "pw-IMPORTED"})
    );

    let oauth = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "github", "user_id": "octo",
                   "credentials": {"access_token": "gho_IMPORTED", "refresh_token": "ghr_IMPORTED",
                                   "expires_in": 7200, "scopes": ["repo"]}}),
        )
        .await;
    assert_eq!(oauth.status, 201, "{}", oauth.text);
    assert_eq!(oauth.body["scopes"], json!(["repo"]));
    let token = server.get("/v1/connections/github/octo/token", &key).await;
    assert_eq!(token.body["access_token"], "gho_IMPORTED");
    assert_eq!(token.body["token_type"], "Bearer");
    // Importing again replaces the credentials (200, same connection).
    let again = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "github", "user_id": "octo",
                   "credentials": {"access_token": "gho_SECOND"}}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let token = server.get("/v1/connections/github/octo/token", &key).await;
    assert_eq!(token.body["access_token"], "gho_SECOND");

    // Bad imports.
    for (body, code, hint) in [
        (
            json!({"integration": "stripe", "user_id": "x", "credentials": {}}),
            "invalid_request",
            "api_key",
        ),
        (
            json!({"integration": "twilio", "user_id": "x", "credentials": {"username": "u"}}),
            "invalid_request",
            "password",
        ),
        (
            json!({"integration": "github", "user_id": "x", "credentials": {"refresh_token": "r"}}),
            "invalid_request",
            "access_token",
        ),
        (
            json!({"integration": "github", "user_id": "", "credentials": {"access_token": "a"}}),
            "invalid_request",
            "user_id",
        ),
        (
            json!({"integration": "github", "user_id": "x", "credentials": {"access_token": "a", "expires_in": -5}}),
            "invalid_request",
            "expires_in",
        ),
        (
            json!({"integration": "github", "user_id": "x", "credentials": {"acess_token": "a"}}),
            "invalid_request",
            "acess_token",
        ),
        (
            json!({"integration": "nope", "user_id": "x", "credentials": {}}),
            "unknown_integration",
            "nope",
        ),
        (
            json!({"integration": "stripe", "user_id": "x", "credentials": {"api_key": "k"}, "connection_config": {"subdomain": "a"}}),
            "invalid_connection_config",
            "subdomain",
        ),
    ] {
        let r = server.post("/v1/connections", &key, body.clone()).await;
        assert!(r.status == 400 || r.status == 404, "{body}: {}", r.text);
        assert_eq!(r.code(), code, "{body}: {}", r.text);
        assert!(r.message().contains(hint), "{body}: {}", r.message());
        assert!(!r.text.contains("\"a\""), "no echo of credentials");
    }
    let missing = server.get("/v1/connections/stripe/nobody", &key).await;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "unknown_connection")
    );
    let bad_cursor = server.get("/v1/connections?cursor=%%%", &key).await;
    assert_eq!(bad_cursor.status, 400);
    let bad_limit = server.get("/v1/connections?limit=0", &key).await;
    assert_eq!(
        (bad_limit.status, bad_limit.code()),
        (400, "invalid_request")
    );
    let bad_status = server.get("/v1/connections?status=sleeping", &key).await;
    assert_eq!(
        (bad_status.status, bad_status.code()),
        (400, "invalid_request")
    );
}

async fn client_credentials_renew_when_expired(backend: Backend) {
    // A 60-second token: fresh for half its life (the margin is never more
    // than half the lifetime), renewed once inside the margin.
    let provider = FakeProvider::start(FakeProviderOptions {
        expires_in: 60,
        ..FakeProviderOptions::default()
    })
    .await;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key) = server.create_project("cc").await;
    let o = provider.options();
    let def = json!({"auth_mode": "oauth2_client_credentials", "token_endpoint": provider.url("/token"),
                     "api_base_url": provider.issuer, "token_endpoint_auth_method": "client_secret_basic"});
    let r = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "machine", "provider": def, "client_id": o.client_id,
                   "client_secret": o.client_secret, "scopes": ["reports"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "machine", "user_id": "service"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(provider.client_credentials_calls(), 1);
    let first = server
        .get("/v1/connections/machine/service/token", &key)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = server
        .get("/v1/connections/machine/service/token", &key)
        .await;
    assert_eq!(first.body["access_token"], again.body["access_token"]);
    assert_eq!(provider.client_credentials_calls(), 1);
    // Issued long ago as far as keyrelay knows: inside the 5-minute margin.
    server
        .raw_sql(
            "UPDATE connections SET updated_at = $1",
            Some(chrono::Utc::now() - chrono::Duration::hours(1)),
        )
        .await;
    let second = server
        .get("/v1/connections/machine/service/token", &key)
        .await;
    assert_ne!(first.body["access_token"], second.body["access_token"]);
    assert_eq!(provider.client_credentials_calls(), 2);
    assert_eq!(
        second.body["access_token"].as_str().unwrap(),
        provider.issued_tokens().last().unwrap()
    );
    let connection = server.get("/v1/connections/machine/service", &key).await;
    assert_eq!(connection.body["refresh_count"], 1);
}

async fn refresh_keeps_working_and_marks_dead_grants(backend: Backend) {
    let provider = FakeProvider::start(FakeProviderOptions::default()).await;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key) = server.create_project("refresh").await;
    let o = provider.options();
    server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "fake", "provider": provider.definition(true),
                   "client_id": o.client_id, "client_secret": o.client_secret}),
        )
        .await;
    let session = server
        .post(
            "/v1/connect/sessions",
            &key,
            json!({"integration": "fake", "user_id": "u", "redirect_url": "https://app.example.com/done"}),
        )
        .await;
    let mut browser = Browser::new();
    let callback = browser
        .follow_until(
            session.body["url"].as_str().unwrap(),
            &server.url("/oauth/callback"),
        )
        .await;
    assert_eq!(
        browser.callback(&callback).await.param("keyrelay_status"),
        Some("success")
    );

    let before = server.get("/v1/connections/fake/u/token", &key).await;
    let forced = server
        .get("/v1/connections/fake/u/token?force_refresh=true", &key)
        .await;
    assert_eq!(forced.status, 200, "{}", forced.text);
    assert_ne!(forced.body["access_token"], before.body["access_token"]);
    let refreshed = server
        .post("/v1/connections/fake/u/refresh", &key, json!({}))
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(refreshed.body["refresh_count"], 2);
    assert!(refreshed.body["last_refresh_at"].is_string());

    // The provider stops accepting the grant: the connection needs the user.
    provider.set_options(|o| o.token_mode = keyrelay_testkit::TokenMode::Error400);
    let dead = server
        .post("/v1/connections/fake/u/refresh", &key, json!({}))
        .await;
    assert_eq!(
        (dead.status, dead.code()),
        (409, "reauthorization_required"),
        "{}",
        dead.text
    );
    let connection = server.get("/v1/connections/fake/u", &key).await;
    assert_eq!(connection.body["status"], "reauthorization_required");
    assert_eq!(connection.body["last_error"]["code"], "invalid_grant");
    let token = server.get("/v1/connections/fake/u/token", &key).await;
    assert_eq!(
        (token.status, token.code()),
        (409, "reauthorization_required")
    );
    let filtered = server
        .get("/v1/connections?status=reauthorization_required", &key)
        .await;
    assert_eq!(filtered.body["connections"].as_array().unwrap().len(), 1);
}

async fn listing_filters_and_pages(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key) = server.create_project("list").await;
    let (_, other) = server.create_project("other").await;
    server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "k", "provider": "stripe_api_key"}),
        )
        .await;
    server
        .post(
            "/v1/integrations",
            &other,
            json!({"key": "k", "provider": "stripe_api_key"}),
        )
        .await;
    for i in 0..5 {
        let r = server
            .post(
                "/v1/connections",
                &key,
                json!({"integration": "k", "user_id": format!("user/{i}"), "credentials": {"api_key": "x"}}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    server
        .post(
            "/v1/connections",
            &other,
            json!({"integration": "k", "user_id": "theirs", "credentials": {"api_key": "y"}}),
        )
        .await;
    let mut users = Vec::new();
    let mut path = "/v1/connections?limit=2".to_string();
    loop {
        let page = server.get(&path, &key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for c in page.body["connections"].as_array().unwrap() {
            users.push(c["user_id"].as_str().unwrap().to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/connections?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    users.sort();
    assert_eq!(
        users,
        ["user/0", "user/1", "user/2", "user/3", "user/4"],
        "all, once, none of another project's"
    );
    let one = server.get("/v1/connections?user_id=user%2F3", &key).await;
    assert_eq!(one.body["connections"].as_array().unwrap().len(), 1);
    assert_eq!(one.body["connections"][0]["provider"], "stripe_api_key");
    let by_path = server.get("/v1/connections/k/user%2F3", &key).await;
    assert_eq!(by_path.status, 200, "{}", by_path.text);
    assert_eq!(by_path.body["user_id"], "user/3");
    let theirs = server.get("/v1/connections/k/theirs", &key).await;
    assert_eq!((theirs.status, theirs.code()), (404, "unknown_connection"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_routes_are_rate_limited() {
    let server = TestServer::builder(Backend::Sqlite)
        .public_rate_per_minute(5)
        .start()
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let r = server
            .client
            .get(server.url("/connect/kr_cs_unknown"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "60");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(statuses, [404, 404, 404, 404, 404, 429, 429]);
    let callback = server
        .client
        .get(server.url("/oauth/callback?state=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        callback.status(),
        429,
        "the callback shares the per-IP budget"
    );
    // The authenticated API is not limited by it.
    let (_, key) = server.create_project("p").await;
    assert_eq!(server.get("/v1/project", &key).await.status, 200);
}
