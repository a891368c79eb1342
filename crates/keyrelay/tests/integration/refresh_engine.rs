//! The refresh engine against a fake provider that rotates refresh tokens
//! and, like real providers, revokes the whole grant when a rotated refresh
//! token is used twice: one refresh for a thousand concurrent requests, one
//! across instances sharing PostgreSQL, each failure class with its status,
//! `last_error` and event, the scheduler, and revocation at the provider on
//! delete (with its retry queue).

use std::time::Duration;

use chrono::Utc;
use keyrelay_server::config::RefreshConfig;
use keyrelay_testkit::{
    Backend, FakeProvider, FakeProviderOptions, RevocationMode, TestServer, TokenMode,
    both_backends,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::proxy::{client, client_fields, connection, integration_with, mint_tokens, proxied};

both_backends! {
    a_thousand_requests_on_an_expired_token_refresh_once => a_thousand_requests_on_an_expired_token_refresh_once;
    each_failure_class_is_recorded => each_failure_class_is_recorded;
    delete_revokes_at_the_provider => delete_revokes_at_the_provider;
    the_scheduler_refreshes_connections_before_expiry => the_scheduler_refreshes_connections_before_expiry;
}

fn provider_options() -> FakeProviderOptions {
    FakeProviderOptions {
        require_pkce: false,
        ..FakeProviderOptions::default()
    }
}

/// A project whose integration "fake" is the provider itself (its API is
/// `/userinfo`, which honours only live access tokens).
async fn project(server: &TestServer, provider: &FakeProvider) -> String {
    let (_, key) = server.create_project("engine").await;
    let mut def = provider.definition(true);
    def["revocation_endpoint"] = json!(provider.url("/revoke"));
    integration_with(server, &key, "fake", def, client_fields(provider)).await;
    key
}

/// Imports a real grant for `user` whose access token keyrelay believes
/// expired; returns the tokens.
async fn expired_connection(
    server: &TestServer,
    key: &str,
    provider: &FakeProvider,
    user: &str,
) -> (String, String) {
    let (at, rt) = mint_tokens(provider).await;
    connection(
        server,
        key,
        "fake",
        user,
        json!({"access_token": at, "refresh_token": rt, "expires_at": "2020-01-01T00:00:00Z"}),
    )
    .await;
    (at, rt)
}

async fn events(server: &TestServer, key: &str, user: &str) -> Vec<Value> {
    let r = server
        .get(&format!("/v1/events?integration=fake&user_id={user}"), key)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["events"].as_array().unwrap().clone()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

async fn a_thousand_requests_on_an_expired_token_refresh_once(backend: Backend) {
    let provider = FakeProvider::start(FakeProviderOptions {
        token_delay: Duration::from_millis(200),
        ..provider_options()
    })
    .await;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let key = project(&server, &provider).await;
    expired_connection(&server, &key, &provider, "u1").await;

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1000)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let requests = (0..1000).map(|_| {
        let req = proxied(&http, &server, &key, "fake", "u1", Method::GET, "userinfo");
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    let results = keyrelay_testkit::reexport::futures_util::future::join_all(requests).await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(provider.refresh_calls(), 1, "exactly one refresh");
    assert_eq!(provider.revoked_grants(), 0);
    let c = server.get("/v1/connections/fake/u1", &key).await;
    assert_eq!(c.body["refresh_count"], 1);
    assert_eq!(c.body["status"], "active");
    let trail = events(&server, &key, "u1").await;
    assert_eq!(
        kinds(&trail).iter().filter(|k| *k == "refreshed").count(),
        1
    );
}

/// Ages a connection's credentials so that they are due for refresh while
/// the access token is still valid.
async fn age(server: &TestServer, user: &str) {
    server
        .raw_sql(
            &format!("UPDATE connections SET updated_at = $1 WHERE user_id = '{user}'"),
            Some(Utc::now() - chrono::Duration::hours(2)),
        )
        .await;
}

async fn each_failure_class_is_recorded(backend: Backend) {
    let provider = FakeProvider::start(provider_options()).await;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let key = project(&server, &provider).await;

    // Transient (503 with Retry-After): the old, still valid token is used,
    // the status stays active, last_error is recorded, and the next use
    // waits out the backoff instead of calling the provider again.
    let (at, rt) = mint_tokens(&provider).await;
    connection(
        &server,
        &key,
        "fake",
        "transient",
        json!({"access_token": at, "refresh_token": rt, "expires_in": 120}),
    )
    .await;
    age(&server, "transient").await;
    provider.set_options(|o| o.token_mode = TokenMode::Unavailable);
    let r = server
        .get("/v1/connections/fake/transient/token", &key)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["access_token"], at.as_str(), "the old token is kept");
    let calls = provider.refresh_calls();
    assert_eq!(calls, 1);
    let again = server
        .get("/v1/connections/fake/transient/token", &key)
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(provider.refresh_calls(), calls, "backing off");
    let c = server.get("/v1/connections/fake/transient", &key).await;
    assert_eq!(c.body["status"], "active");
    assert_eq!(c.body["last_error"]["code"], "http_503", "{}", c.text);
    let forced = server
        .post("/v1/connections/fake/transient/refresh", &key, json!({}))
        .await;
    assert_eq!(forced.status, 502, "{}", forced.text);
    assert_eq!(forced.code(), "refresh_failed");
    assert!(kinds(&events(&server, &key, "transient").await).contains(&"refresh_failed".into()));

    // Rate limited (429): also transient.
    provider.set_options(|o| o.token_mode = TokenMode::Json);
    expired_connection(&server, &key, &provider, "limited").await;
    provider.set_options(|o| o.token_mode = TokenMode::RateLimited);
    let r = server.get("/v1/connections/fake/limited/token", &key).await;
    assert_eq!(r.status, 502, "an expired token cannot be handed out");
    let c = server.get("/v1/connections/fake/limited", &key).await;
    assert_eq!(c.body["status"], "active");
    assert_eq!(c.body["last_error"]["code"], "slow_down");

    // invalid_client: the integration is flagged, the connection stays
    // active (the user's grant is not the problem).
    provider.set_options(|o| o.token_mode = TokenMode::Json);
    expired_connection(&server, &key, &provider, "client").await;
    provider.set_options(|o| o.token_mode = TokenMode::InvalidClient);
    let r = server.get("/v1/connections/fake/client/token", &key).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.message().contains("client"), "{}", r.message());
    let integration = server.get("/v1/integrations/fake", &key).await;
    assert_eq!(
        integration.body["status"], "misconfigured",
        "{}",
        integration.text
    );
    assert_eq!(integration.body["problem"]["code"], "invalid_client");
    let c = server.get("/v1/connections/fake/client", &key).await;
    assert_eq!(c.body["status"], "active");
    assert_eq!(c.body["last_error"]["code"], "invalid_client");
    // Updating the integration clears the flag.
    let patched = server
        .patch(
            "/v1/integrations/fake",
            &key,
            json!({"client_secret": provider.options().client_secret}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["status"], "ok");

    // invalid_grant: dead; 409 from then on without asking the provider.
    provider.set_options(|o| o.token_mode = TokenMode::Json);
    expired_connection(&server, &key, &provider, "dead").await;
    provider.set_options(|o| o.token_mode = TokenMode::Error400);
    let r = server.get("/v1/connections/fake/dead/token", &key).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "reauthorization_required");
    let calls = provider.refresh_calls();
    let r = proxied(
        &client(),
        &server,
        &key,
        "fake",
        "dead",
        Method::GET,
        "userinfo",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["keyrelay-error"], "reauthorization_required");
    assert_eq!(
        provider.refresh_calls(),
        calls,
        "no refresh of a dead grant"
    );
    let c = server.get("/v1/connections/fake/dead", &key).await;
    assert_eq!(c.body["status"], "reauthorization_required");
    assert_eq!(c.body["last_error"]["code"], "invalid_grant");
    let trail = events(&server, &key, "dead").await;
    assert_eq!(kinds(&trail)[0], "reauthorization_required");
    assert!(!trail[0].to_string().contains("rt-"), "no token in events");
}

async fn delete_revokes_at_the_provider(backend: Backend) {
    let provider = FakeProvider::start(provider_options()).await;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let key = project(&server, &provider).await;

    let (at, rt) = mint_tokens(&provider).await;
    connection(
        &server,
        &key,
        "fake",
        "u1",
        json!({"access_token": at, "refresh_token": rt, "expires_in": 3600}),
    )
    .await;
    let r = server
        .delete("/v1/connections/fake/u1?reason=user%20left", &key)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["revoked_at_provider"], true);
    assert_eq!(
        provider.revoked(),
        vec![
            (rt.clone(), "refresh_token".to_string()),
            (at.clone(), "access_token".to_string())
        ]
    );
    assert!(!provider.access_token_active(&at));
    assert!(!provider.refresh_token_active(&rt));
    let trail = events(&server, &key, "u1").await;
    assert_eq!(kinds(&trail)[..2], ["deleted", "revoked"]);
    assert_eq!(trail[0]["detail"]["reason"], "user left");
    assert_eq!(
        server.get("/v1/connections/fake/u1", &key).await.status,
        404
    );

    // The provider is down: not revoked yet, queued, retried later. The
    // revocation endpoint takes a per-connection value, which the retry
    // still has after the connection is gone.
    provider.set_options(|o| o.revocation = RevocationMode::Unavailable);
    let (_, tenant_key) = server.create_project("tenanted").await;
    let mut def = provider.definition(true);
    def["connection_config"] = json!(["tenant"]);
    def["revocation_endpoint"] = json!(provider.url("/tenants/{connection_config.tenant}/revoke"));
    integration_with(&server, &tenant_key, "fake", def, client_fields(&provider)).await;
    let (at, rt) = mint_tokens(&provider).await;
    let r = server
        .post(
            "/v1/connections",
            &tenant_key,
            json!({"integration": "fake", "user_id": "u2",
                   "connection_config": {"tenant": "acme"},
                   "credentials": {"access_token": at, "refresh_token": rt, "expires_in": 3600}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = tenant_key;
    let r = server.delete("/v1/connections/fake/u2", &key).await;
    assert_eq!(r.body["revoked_at_provider"], false, "{}", r.text);
    provider.set_options(|o| o.revocation = RevocationMode::Ok);
    server
        .raw_sql("UPDATE revocations SET next_attempt_at = 0", None)
        .await;
    let settled = keyrelay_server::services::revoke::retry_due(server.app())
        .await
        .unwrap();
    assert_eq!(settled, 1);
    assert!(!provider.refresh_token_active(&rt));
    assert!(!provider.access_token_active(&at));
    assert!(kinds(&events(&server, &key, "u2").await).contains(&"revoked".into()));
    let settled = keyrelay_server::services::revoke::retry_due(server.app())
        .await
        .unwrap();
    assert_eq!(settled, 0, "the queue is empty once revoked");

    // No revocation endpoint at all.
    provider.set_options(|o| {
        o.revocation = RevocationMode::Absent;
        o.discovery = false;
    });
    let (_, key2) = server.create_project("norevoke").await;
    let mut def = provider.definition(true);
    def.as_object_mut().unwrap().remove("issuer");
    integration_with(&server, &key2, "fake", def, client_fields(&provider)).await;
    let (at, rt) = mint_tokens(&provider).await;
    connection(
        &server,
        &key2,
        "fake",
        "u3",
        json!({"access_token": at, "refresh_token": rt, "expires_in": 3600}),
    )
    .await;
    let r = server.delete("/v1/connections/fake/u3", &key2).await;
    assert_eq!(r.body["revoked_at_provider"], "not_supported", "{}", r.text);
}

async fn the_scheduler_refreshes_connections_before_expiry(backend: Backend) {
    let provider = FakeProvider::start(provider_options()).await;
    let Some(server) = TestServer::builder(backend)
        .refresh(RefreshConfig {
            scheduler_interval: Duration::from_millis(100),
            ..RefreshConfig::default()
        })
        .start()
        .await
    else {
        return;
    };
    let key = project(&server, &provider).await;
    for i in 0..20 {
        let (at, rt) = mint_tokens(&provider).await;
        connection(
            &server,
            &key,
            "fake",
            &format!("s{i}"),
            json!({"access_token": at, "refresh_token": rt, "expires_in": 120}),
        )
        .await;
    }
    // Make them due now (as if their refresh time had come).
    server
        .raw_sql("UPDATE connections SET next_refresh_at = 0", None)
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while provider.refresh_calls() < 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(provider.refresh_calls(), 20, "each connection once");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(provider.refresh_calls(), 20, "and not again");
    assert_eq!(provider.revoked_grants(), 0);
    for i in 0..20 {
        let c = server
            .get(&format!("/v1/connections/fake/s{i}"), &key)
            .await;
        assert_eq!(c.body["refresh_count"], 1, "{}", c.text);
        let r = proxied(
            &client(),
            &server,
            &key,
            "fake",
            &format!("s{i}"),
            Method::GET,
            "userinfo",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// Three instances on one PostgreSQL database, 300 concurrent requests
/// spread over them on one expired connection: one refresh in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_sharing_postgres_refresh_once() {
    let provider = FakeProvider::start(FakeProviderOptions {
        token_delay: Duration::from_millis(300),
        ..provider_options()
    })
    .await;
    let Some(first) = TestServer::start(Backend::Postgres).await else {
        return;
    };
    let mut servers = vec![];
    for _ in 0..2 {
        let other = TestServer::builder(Backend::Postgres)
            .database_url(first.db.url.clone())
            .master_keys(first.settings.master_keys.clone())
            .start()
            .await
            .unwrap();
        servers.push(other);
    }
    let key = project(&first, &provider).await;
    expired_connection(&first, &key, &provider, "u1").await;
    servers.insert(0, first);

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(300)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let requests = (0..300).map(|i| {
        let server = &servers[i % 3];
        let req = proxied(&http, server, &key, "fake", "u1", Method::GET, "userinfo");
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = keyrelay_testkit::reexport::futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(provider.refresh_calls(), 1, "one refresh across instances");
    assert_eq!(provider.revoked_grants(), 0);
}
