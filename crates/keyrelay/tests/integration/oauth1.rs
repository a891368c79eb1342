//! OAuth 1.0a end to end against the test kit's fake provider, which checks
//! every signature with its own base-string code: the three-legged flow for
//! each signature method, signed proxy calls (a GET with a tricky query, a
//! form POST, a JSON POST), imports, `…/token`, verification, and every way
//! the flow or a signed body can go wrong.

use keyrelay_testkit::{
    Backend, Browser, CallbackResult, FakeOauth1Options, FakeOauth1Provider, Oauth1AuthorizeMode,
    Oauth1SignatureMethod, TEST_RSA_PRIVATE_KEY_PEM, TestServer, both_backends,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::connect_flow::{APP_REDIRECT, session_url};
use crate::proxy::{client, proxied};
use crate::secrets_at_rest::{contains, raw_database};

both_backends! {
    hmac_sha1_flow_and_signed_calls => hmac_sha1_flow_and_signed_calls;
    imported_connections_sign_too => imported_connections_sign_too;
}

/// The consumer secret keyrelay signs with: the RSA private key for
/// RSA-SHA1, else the provider's consumer secret.
fn client_secret(provider: &FakeOauth1Provider) -> String {
    let o = provider.options();
    match o.signature_method {
        Oauth1SignatureMethod::RsaSha1 => TEST_RSA_PRIVATE_KEY_PEM.to_string(),
        _ => o.consumer_secret,
    }
}

async fn setup(backend: Backend, provider: &FakeOauth1Provider) -> Option<(TestServer, String)> {
    let server = TestServer::start(backend).await?;
    let (_, key) = server.create_project("oauth1").await;
    let created = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "fake1", "provider": provider.definition(),
                   "client_id": provider.options().consumer_key,
                   "client_secret": client_secret(provider)}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["auth_mode"], "oauth1");
    assert_eq!(
        created.body["callback_url"],
        server.url("/oauth1/callback"),
        "{}",
        created.text
    );
    Some((server, key))
}

async fn new_session(server: &TestServer, key: &str, user: &str) -> String {
    session_url(server, key, "fake1", user).await
}

/// Walks a browser from the connect link to keyrelay's OAuth1 callback; the
/// callback's URL and what it answered.
async fn run_flow(
    server: &TestServer,
    browser: &mut Browser,
    url: &str,
) -> (String, CallbackResult) {
    let callback = browser
        .follow_until(url, &server.url("/oauth1/callback"))
        .await;
    let result = browser.callback(&callback).await;
    (callback, result)
}

fn assert_success(result: &CallbackResult, user: &str) {
    assert_eq!(result.status, 302, "{}", result.body);
    assert_eq!(result.headers["referrer-policy"], "no-referrer");
    assert_eq!(result.headers["cache-control"], "no-store");
    let location = result.location.as_ref().unwrap();
    assert!(location.as_str().starts_with(APP_REDIRECT), "{location}");
    assert_eq!(
        result.param("keyrelay_status"),
        Some("success"),
        "{location}"
    );
    assert_eq!(result.param("integration"), Some("fake1"));
    assert_eq!(result.param("user_id"), Some(user));
}

fn assert_error(result: &CallbackResult, code: &str) -> String {
    assert_eq!(result.status, 302, "{}", result.body);
    assert_eq!(
        result.param("keyrelay_status"),
        Some("error"),
        "{:?}",
        result.location
    );
    assert_eq!(result.param("error"), Some(code), "{:?}", result.location);
    result.param("error_description").unwrap().to_string()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The signed calls every connection must pass: a GET with a query that
/// takes careful encoding, a form POST (whose parameters are signed), and a
/// JSON POST (not signed, streamed). Each is checked by the provider.
async fn signed_calls(server: &TestServer, key: &str, user: &str, provider: &FakeOauth1Provider) {
    let c = client();
    let before = provider.verified_api_requests();

    let r = proxied(
        &c,
        server,
        key,
        "fake1",
        user,
        Method::GET,
        "items/a%20b?q=hello%20world&q=second&plus=a+b&slash=%2F&uni=%C3%A9t%C3%A9&empty=&star=*",
    )
    .send()
    .await
    .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body} / {:?}", provider.last_problem());
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/api/items/a%20b");
    assert_eq!(
        pairs(&body["query"]),
        owned(&[
            ("q", "hello world"),
            ("q", "second"),
            ("plus", "a b"),
            ("slash", "/"),
            ("uni", "été"),
            ("empty", ""),
            ("star", "*"),
        ])
    );

    let form = "name=Alpha+Beta&tag=y&tag=x&sym=%26%3D%2B&note=caf%C3%A9";
    let r = proxied(
        &c,
        server,
        key,
        "fake1",
        user,
        Method::POST,
        "notes?via=proxy",
    )
    .header("content-type", "application/x-www-form-urlencoded")
    .body(form)
    .send()
    .await
    .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body} / {:?}", provider.last_problem());
    assert_eq!(
        pairs(&body["form"]),
        owned(&[
            ("name", "Alpha Beta"),
            ("tag", "y"),
            ("tag", "x"),
            ("sym", "&=+"),
            ("note", "café"),
        ])
    );
    assert_eq!(pairs(&body["query"]), owned(&[("via", "proxy")]));

    let r = proxied(&c, server, key, "fake1", user, Method::POST, "notes")
        .header("content-type", "application/json")
        .body(r#"{"name":"not signed, streamed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", provider.last_problem());

    let r = proxied(&c, server, key, "fake1", user, Method::GET, "me")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user_id"], provider.options().user_id);

    assert_eq!(provider.verified_api_requests(), before + 4);
    for request in provider.api_requests().iter().skip(before) {
        assert_eq!(request.problem, None, "{request:?}");
        let params: Vec<&str> = request
            .oauth_params
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert!(params.contains(&"oauth_token"), "{params:?}");
        assert!(params.contains(&"oauth_nonce"), "{params:?}");
    }
}

async fn full_flow(backend: Backend, method: Oauth1SignatureMethod) {
    let provider = FakeOauth1Provider::start(FakeOauth1Options {
        signature_method: method,
        ..FakeOauth1Options::default()
    })
    .await;
    let Some((server, key)) = setup(backend, &provider).await else {
        return;
    };
    let user = "user 7@example.com";
    let encoded = "user%207%40example.com";
    let url = new_session(&server, &key, user).await;
    let mut browser = Browser::new();
    let (callback, result) = run_flow(&server, &mut browser, &url).await;
    assert_success(&result, user);
    assert_eq!(provider.request_token_calls(), 1);
    assert_eq!(provider.access_token_calls(), 1);

    // The callback works once.
    let again = browser.callback(&callback).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.location.is_none());

    let token = server
        .get(&format!("/v1/connections/fake1/{encoded}/token"), &key)
        .await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert_eq!(
        token.body["oauth_token"].as_str().unwrap(),
        provider.issued_access_tokens().last().unwrap()
    );
    assert!(
        !token.body["oauth_token_secret"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(token.body.as_object().unwrap().len(), 2, "{}", token.text);

    let connection = server
        .get(&format!("/v1/connections/fake1/{encoded}"), &key)
        .await;
    assert_eq!(connection.status, 200, "{}", connection.text);
    assert_eq!(connection.body["auth_mode"], "oauth1");
    assert_eq!(connection.body["status"], "active");
    assert_eq!(connection.body["scopes"], json!([]));
    assert_eq!(connection.body["expires_at"], Value::Null);
    assert!(
        !connection
            .text
            .contains(token.body["oauth_token"].as_str().unwrap())
    );

    // On disk: the user's token, its secret and the consumer's secret are
    // all sealed.
    let raw = raw_database(&server).await;
    assert!(contains(&raw, "fake1"), "the scan must see stored rows");
    for secret in [
        token.body["oauth_token"].as_str().unwrap(),
        token.body["oauth_token_secret"].as_str().unwrap(),
        &client_secret(&provider),
    ] {
        assert!(!contains(&raw, secret), "a secret is stored in plaintext");
    }

    signed_calls(&server, &key, user, &provider).await;

    let verified = server
        .post(
            &format!("/v1/connections/fake1/{encoded}/verify"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.body["valid"], true, "{}", verified.text);

    // OAuth 1.0a tokens cannot be refreshed: a provider's 401 comes back as
    // it came, and a forced refresh says why.
    let refreshed = server
        .post(
            &format!("/v1/connections/fake1/{encoded}/refresh"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(refreshed.status, 400, "{}", refreshed.text);
    assert_eq!(refreshed.body["error"]["code"], "not_refreshable");
    provider.revoke_access_token(token.body["oauth_token"].as_str().unwrap());
    let r = proxied(&client(), &server, &key, "fake1", user, Method::GET, "me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("keyrelay-error").is_none());
    assert!(r.text().await.unwrap().contains("token_revoked"));

    let deleted = server
        .delete(&format!("/v1/connections/fake1/{encoded}"), &key)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["revoked_at_provider"], "not_supported");
}

async fn hmac_sha1_flow_and_signed_calls(backend: Backend) {
    full_flow(backend, Oauth1SignatureMethod::HmacSha1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_sha256_flow_and_signed_calls() {
    full_flow(Backend::Sqlite, Oauth1SignatureMethod::HmacSha256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_flow_and_signed_calls() {
    full_flow(Backend::Sqlite, Oauth1SignatureMethod::Plaintext).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_sha1_flow_and_signed_calls() {
    full_flow(Backend::Sqlite, Oauth1SignatureMethod::RsaSha1).await;
}

async fn imported_connections_sign_too(backend: Backend) {
    let provider = FakeOauth1Provider::start(FakeOauth1Options::default()).await;
    let Some((server, key)) = setup(backend, &provider).await else {
        return;
    };
    let (token, secret) = provider.mint_access_token();
    let missing = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "fake1", "user_id": "u1", "credentials": {"oauth_token": token}}),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert!(
        missing.text.contains("oauth_token_secret"),
        "{}",
        missing.text
    );
    let created = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "fake1", "user_id": "u1",
                   "credentials": {"oauth_token": token, "oauth_token_secret": secret}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["auth_mode"], "oauth1");
    let got = server.get("/v1/connections/fake1/u1/token", &key).await;
    assert_eq!(
        got.body,
        json!({"oauth_token": token, "oauth_token_secret": secret})
    );
    signed_calls(&server, &key, "u1", &provider).await;

    // A wrong token secret is the provider's 401, passed through.
    let wrong = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "fake1", "user_id": "u2",
                   "credentials": {"oauth_token": token, "oauth_token_secret": "not-it"}}),
        )
        .await;
    assert_eq!(wrong.status, 201, "{}", wrong.text);
    let r = proxied(&client(), &server, &key, "fake1", "u2", Method::GET, "me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("keyrelay-error").is_none());
    assert_eq!(
        provider.last_problem().as_deref(),
        Some("signature_invalid")
    );
}

/// Denials, an OAuth 1.0 provider, a refused exchange, another browser and
/// scopes: each ends as API.md says, with nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_flows_store_nothing() {
    let provider = FakeOauth1Provider::start(FakeOauth1Options::default()).await;
    let Some((server, key)) = setup(Backend::Sqlite, &provider).await else {
        return;
    };

    for mode in [
        Oauth1AuthorizeMode::DenyDenied,
        Oauth1AuthorizeMode::DenyProblem,
    ] {
        provider.set_options(|o| o.authorize = mode);
        let url = new_session(&server, &key, "denied").await;
        let (_, result) = run_flow(&server, &mut Browser::new(), &url).await;
        assert_error(&result, "access_denied");
    }
    provider.set_options(|o| o.authorize = Oauth1AuthorizeMode::Approve);

    provider.set_options(|o| o.reject_token_exchange = true);
    let url = new_session(&server, &key, "refused").await;
    let (_, result) = run_flow(&server, &mut Browser::new(), &url).await;
    let description = assert_error(&result, "exchange_failed");
    assert!(description.contains("token_rejected"), "{description}");
    provider.set_options(|o| o.reject_token_exchange = false);

    // The callback in another browser (without the flow's cookie).
    let url = new_session(&server, &key, "elsewhere").await;
    let mut browser = Browser::new();
    let callback = browser
        .follow_until(&url, &server.url("/oauth1/callback"))
        .await;
    let result = Browser::new().callback(&callback).await;
    assert_eq!(result.status, 400, "{}", result.body);
    assert!(result.body.contains("another browser"), "{}", result.body);
    // A forged token, and none at all.
    for query in [
        "?oauth_token=forged&oauth_verifier=v",
        "?oauth_verifier=v",
        "",
    ] {
        let result = browser
            .callback(&server.url(&format!("/oauth1/callback{query}")))
            .await;
        assert_eq!(result.status, 400, "{query}: {}", result.body);
        assert!(result.location.is_none());
    }

    // A provider that does not confirm the callback speaks OAuth 1.0.
    provider.set_options(|o| o.callback_confirmed = false);
    let url = new_session(&server, &key, "old").await;
    let resp = Browser::new().get(&url).await;
    assert_eq!(resp.status(), 502);
    let page = resp.text().await.unwrap();
    assert!(page.contains("oauth_callback_confirmed"), "{page}");
    provider.set_options(|o| o.callback_confirmed = true);

    // OAuth 1.0a has no scopes.
    let resp = server
        .post(
            "/v1/connect/sessions",
            &key,
            json!({"integration": "fake1", "user_id": "u", "redirect_url": APP_REDIRECT,
                   "scopes": ["read"]}),
        )
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    assert!(resp.text.contains("authorization_params"), "{}", resp.text);

    let listed = server.get("/v1/connections?integration=fake1", &key).await;
    assert_eq!(listed.body["connections"], json!([]), "{}", listed.text);
    assert_eq!(
        provider.access_token_calls(),
        1,
        "only the refused exchange"
    );
}

/// A signed form body is held to sign it, up to 1 MiB: beyond that it is
/// 413 `body_too_large` and nothing reaches the provider, whether the size
/// is declared or the body is chunked. Other bodies of that size stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_signed_form_bodies_are_refused() {
    let provider = FakeOauth1Provider::start(FakeOauth1Options::default()).await;
    let Some((server, key)) = setup(Backend::Sqlite, &provider).await else {
        return;
    };
    let (token, secret) = provider.mint_access_token();
    let created = server
        .post(
            "/v1/connections",
            &key,
            json!({"integration": "fake1", "user_id": "u1",
                   "credentials": {"oauth_token": token, "oauth_token_secret": secret}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let c = client();
    let big = format!("data={}", "a".repeat(1024 * 1024));
    let before = provider.api_requests().len();

    let r = proxied(&c, &server, &key, "fake1", "u1", Method::POST, "notes")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["keyrelay-error"], "body_too_large");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large");

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = proxied(&c, &server, &key, "fake1", "u1", Method::POST, "notes")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(reqwest::Body::wrap_stream(
            keyrelay_testkit::reexport::futures_util::stream::iter(chunks),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["keyrelay-error"], "body_too_large");
    assert_eq!(provider.api_requests().len(), before, "nothing was sent");

    // The same size as another content type streams, unsigned.
    let r = proxied(&c, &server, &key, "fake1", "u1", Method::POST, "notes")
        .header("content-type", "application/octet-stream")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", provider.last_problem());
}

/// An RSA-SHA1 integration takes the consumer's PEM private key as its
/// client secret; anything else is refused when it is set, not at the
/// first connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_sha1_needs_a_private_key() {
    let provider = FakeOauth1Provider::start(FakeOauth1Options {
        signature_method: Oauth1SignatureMethod::RsaSha1,
        ..FakeOauth1Options::default()
    })
    .await;
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, key) = server.create_project("rsa").await;
    let body = |secret: &str| {
        json!({"key": "rsa", "provider": provider.definition(),
               "client_id": "consumer", "client_secret": secret})
    };
    let refused = server
        .post("/v1/integrations", &key, body("a shared secret"))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.text.contains("PEM private key"), "{}", refused.text);
    assert!(
        !refused.text.contains("a shared secret"),
        "{}",
        refused.text
    );
    let created = server
        .post("/v1/integrations", &key, body(TEST_RSA_PRIVATE_KEY_PEM))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let patched = server
        .patch(
            "/v1/integrations/rsa",
            &key,
            json!({"client_secret": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"}),
        )
        .await;
    assert_eq!(patched.status, 400, "{}", patched.text);
}
