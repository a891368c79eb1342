//! OAuth 1.0a against a real, independently written provider: Python's
//! oauthlib (from PyPI), run on loopback by the test kit (skipped with a
//! message when Python with `venv` is missing). keyrelay runs the
//! three-legged flow through a browser, stores the tokens, and its proxy's
//! signed requests (a GET with an awkward query, a form POST, a JSON PUT)
//! are verified by oauthlib, for every signature method.

use keyrelay_testkit::{
    Backend, Browser, OauthlibOptions, OauthlibServer, TEST_RSA_PRIVATE_KEY_PEM,
    TEST_RSA_PUBLIC_KEY_PEM, TestServer, both_backends,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::connect_flow::session_url;
use crate::proxy::{client, proxied};

both_backends! {
    hmac_sha1 => hmac_sha1;
}

const CONSUMER_KEY: &str = "keyrelay-oauthlib-consumer";
const CONSUMER_SECRET: &str = "consumer secret & symbols=+/~%";

async fn hmac_sha1(backend: Backend) {
    run(backend, "HMAC-SHA1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_sha256() {
    run(Backend::Sqlite, "HMAC-SHA256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext() {
    run(Backend::Sqlite, "PLAINTEXT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_sha1() {
    run(Backend::Sqlite, "RSA-SHA1").await;
}

async fn run(backend: Backend, method: &str) {
    let (options, client_secret) = if method == "RSA-SHA1" {
        (
            OauthlibOptions::rsa_sha1(CONSUMER_KEY, TEST_RSA_PUBLIC_KEY_PEM),
            TEST_RSA_PRIVATE_KEY_PEM,
        )
    } else {
        (
            OauthlibOptions::new(CONSUMER_KEY, CONSUMER_SECRET, method),
            CONSUMER_SECRET,
        )
    };
    let Some(provider) = OauthlibServer::start(options.with_user("u-31337", "ada")).await else {
        return;
    };
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key) = server.create_project("oauthlib").await;
    let created = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "lib", "client_id": CONSUMER_KEY, "client_secret": client_secret,
                   "provider": {
                       "auth_mode": "oauth1",
                       "request_token_endpoint": provider.request_token_url(),
                       "authorization_endpoint": provider.authorize_url(),
                       "access_token_endpoint": provider.access_token_url(),
                       "signature_method": method,
                       "api_base_url": provider.api_base_url(),
                       "verification": {"method": "GET", "path": "/me"}}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    // The three-legged flow, in a browser.
    let link = session_url(&server, &key, "lib", "ada").await;
    let mut browser = Browser::new();
    let callback = browser
        .follow_until(&link, &server.url("/oauth1/callback"))
        .await;
    let result = browser.callback(&callback).await;
    assert_eq!(result.status, 302, "{}\n{}", result.body, provider.stderr());
    assert_eq!(
        result.param("keyrelay_status"),
        Some("success"),
        "{:?}\n{}",
        result.location,
        provider.stderr()
    );
    let token = server.get("/v1/connections/lib/ada/token", &key).await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert!(token.body["oauth_token"].is_string());
    assert!(token.body["oauth_token_secret"].is_string());

    // Signed calls through the proxy, each verified by oauthlib.
    let c = client();
    let send = |method: Method, path: &str| proxied(&c, &server, &key, "lib", "ada", method, path);
    let me: Value = send(Method::GET, "me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user_id"], "u-31337", "{me}\n{}", provider.stderr());

    let r = send(
        Method::GET,
        "echo/a%20path?q=hello%20world&q=again&plus=a+b&enc=1%2B1&slash=a%2Fb&uni=%C3%A9t%C3%A9&empty=&star=*",
    )
    .send()
    .await
    .unwrap();
    let status = r.status();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{echo}\n{}", provider.stderr());
    assert_eq!(echo["method"], "GET");
    assert_eq!(
        echo["query"]["q"],
        json!(["hello world", "again"]),
        "{echo}"
    );
    assert_eq!(echo["query"]["plus"], json!(["a b"]), "{echo}");
    assert_eq!(echo["query"]["enc"], json!(["1+1"]), "{echo}");
    assert_eq!(echo["query"]["slash"], json!(["a/b"]), "{echo}");
    assert_eq!(echo["query"]["uni"], json!(["été"]), "{echo}");

    let r = send(Method::POST, "echo?via=proxy")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("text=Hello%20World%21&plus=1%2B1&space=a+b&dup=2&dup=1&uni=%E2%9C%93&empty=")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{echo}\n{}", provider.stderr());
    assert_eq!(echo["form"]["text"], json!(["Hello World!"]), "{echo}");
    assert_eq!(echo["form"]["dup"], json!(["2", "1"]), "{echo}");
    assert_eq!(echo["form"]["space"], json!(["a b"]), "{echo}");
    assert_eq!(echo["query"]["via"], json!(["proxy"]), "{echo}");

    let r = send(Method::PUT, "echo/doc")
        .header("content-type", "application/json")
        .body(r#"{"json": "is not signed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", provider.stderr());

    let verified = server
        .post("/v1/connections/lib/ada/verify", &key, json!({}))
        .await;
    assert_eq!(verified.body["valid"], true, "{}", verified.text);

    let stats = provider.stats().await;
    assert_eq!(stats.access_tokens_issued, 1, "{stats:?}");
    assert_eq!(stats.resource_requests_verified, 5, "{stats:?}");
    assert_eq!(stats.requests_rejected, 0, "{stats:?}");
}
