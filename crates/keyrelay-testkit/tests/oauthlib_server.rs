//! keyrelay's OAuth 1.0a signer and flow (keyrelay-oauth) against an
//! independent implementation: Python's oauthlib, run by `OauthlibServer`.
//! The whole three-legged flow, then signed requests whose query strings and
//! form bodies are awkward to normalize, for every signature method keyrelay
//! supports; and the refusals (wrong consumer secret, reused nonce).
//!
//! When oauthlib refuses a signature, the failure message shows both
//! signature base strings: oauthlib's (from the 401 body) and keyrelay's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use keyrelay_oauth::oauth1::{
    Oauth1Error, TokenCredentials, authorization_redirect_url, form_body_for_signing,
    parse_callback, parse_temporary_credentials, parse_token_credentials,
    temporary_credentials_request, token_credentials_request,
};
use keyrelay_oauth::{FormRequest, Oauth1Signer, SignatureMethod, SigningParams};
use keyrelay_testkit::{OauthlibOptions, OauthlibServer, OauthlibStats};
use keyrelay_vault::ClientSecret;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

/// keyrelay's callback as the server would send it (nothing listens there:
/// the test reads the redirect instead of following it).
const CALLBACK: &str = "http://127.0.0.1:9/oauth1/callback";
const CONSUMER_KEY: &str = "keyrelay-oauthlib-consumer";
const CONSUMER_SECRET: &str = "s3cret with spaces & symbols=+/~%";
const USER_ID: &str = "783214";
const SCREEN_NAME: &str = "oauthlib_tester";
/// The RSA test key pair keyrelay-oauth's own tests use.
const RSA_PRIVATE_KEY: &str =
    include_str!("../../keyrelay-oauth/tests/fixtures/oauth1-rsa-test-key.pem");
const RSA_PUBLIC_KEY: &str =
    include_str!("../../keyrelay-oauth/tests/fixtures/oauth1-rsa-test-key.pub.pem");

/// A query that is hard to normalize: encoded and `+` spaces, an encoded `+`
/// and `/`, a name repeated (out of order, once empty), non-ASCII both
/// percent-encoded and raw (the URL parser encodes the raw one), `~`, `*`,
/// and an empty value.
const TRICKY_QUERY: &str = "q=hello%20world&space_plus=a+b&plus=1%2B1&slash=a%2Fb\
     &dup=z&dup=a&dup=&uni=%C3%A9t%C3%A9%20%E2%82%AC%F0%9F%A6%80&ñ=ü&tilde=~x&star=*&empty=";

/// A form body as awkward as the query, plus `!` encoded.
const TRICKY_FORM: &str =
    "text=Hello%20World%21&plus=1%2B1&space=a+b&dup=2&dup=1&uni=%E2%9C%93&empty=";

macro_rules! start {
    ($options:expr) => {
        match OauthlibServer::start($options).await {
            Some(server) => server,
            None => return,
        }
    };
}

fn options(method: &str) -> OauthlibOptions {
    OauthlibOptions::new(CONSUMER_KEY, CONSUMER_SECRET, method).with_user(USER_ID, SCREEN_NAME)
}

fn shared_signer(method: SignatureMethod, secret: &str) -> Oauth1Signer {
    Oauth1Signer::new(method, CONSUMER_KEY, ClientSecret::new(secret)).unwrap()
}

/// A client that does not follow redirects (the authorize step's 302 is read).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn send_form(http: &reqwest::Client, req: &FormRequest) -> (u16, Vec<u8>) {
    let mut rb = http.post(&req.url);
    for (name, value) in &req.headers {
        rb = rb.header(*name, value);
    }
    let resp = rb.body(req.body.clone()).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

/// Runs the three-legged flow with `consumer` (a signer without a token) and
/// returns the token credentials. Panics, with the provider's log, when a
/// step fails.
async fn three_legged(
    server: &OauthlibServer,
    http: &reqwest::Client,
    consumer: &Oauth1Signer,
) -> TokenCredentials {
    let no_extra = BTreeMap::new();

    // 1. Temporary credentials.
    let req = temporary_credentials_request(
        consumer,
        &server.request_token_url(),
        CALLBACK,
        &no_extra,
        &SigningParams::generate().unwrap(),
    )
    .unwrap();
    let (status, body) = send_form(http, &req).await;
    let temporary = parse_temporary_credentials(status, &body).unwrap_or_else(|e| {
        panic!(
            "request_token: {e} ({status} {}); provider log:\n{}",
            String::from_utf8_lossy(&body),
            server.stderr()
        )
    });

    // 2. Authorization: approved at once, 302 to the callback.
    let url =
        authorization_redirect_url(&server.authorize_url(), &temporary.token, &no_extra).unwrap();
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::FOUND,
        "authorize; provider log:\n{}",
        server.stderr()
    );
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let location = Url::parse(&location).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            location.scheme(),
            location.authority(),
            location.path()
        ),
        CALLBACK,
        "{location}"
    );
    let callback = parse_callback(location.query().unwrap_or_default()).unwrap();
    assert_eq!(callback.token, temporary.token);

    // 3. Token credentials.
    let req = token_credentials_request(
        consumer,
        &server.access_token_url(),
        &temporary.token,
        &temporary.token_secret,
        &callback.verifier,
        &SigningParams::generate().unwrap(),
    )
    .unwrap();
    let (status, body) = send_form(http, &req).await;
    let token = parse_token_credentials(status, &body).unwrap_or_else(|e| {
        panic!(
            "access_token: {e} ({status} {}); provider log:\n{}",
            String::from_utf8_lossy(&body),
            server.stderr()
        )
    });
    assert_ne!(token.token.expose_secret(), temporary.token);
    assert_eq!(token.extra["user_id"], USER_ID);
    assert_eq!(token.extra["screen_name"], SCREEN_NAME);

    // The temporary credentials are spent.
    let replay = token_credentials_request(
        consumer,
        &server.access_token_url(),
        &temporary.token,
        &temporary.token_secret,
        &callback.verifier,
        &SigningParams::generate().unwrap(),
    )
    .unwrap();
    let (status, _) = send_form(http, &replay).await;
    assert_eq!(status, 401, "a spent request token was exchanged again");
    token
}

/// `consumer` signing with the token credentials.
fn with_token(consumer: &Oauth1Signer, token: &TokenCredentials) -> Oauth1Signer {
    consumer
        .clone()
        .with_token(token.token.expose_secret(), token.token_secret.clone())
}

/// One signed request and what came back.
struct Reply {
    status: StatusCode,
    json: Value,
    /// What keyrelay signed, to set beside oauthlib's when they disagree.
    keyrelay_base_string: String,
}

impl Reply {
    /// The JSON body of a 200, or a panic showing both base strings.
    fn ok(self) -> Value {
        if self.status != StatusCode::OK {
            panic!(
                "oauthlib refused the request ({}): {}\n  oauthlib's base string: {}\n  keyrelay's base string: {}",
                self.status,
                self.json["reason"],
                self.json["base_string"].as_str().unwrap_or("(none)"),
                self.keyrelay_base_string
            );
        }
        self.json
    }
}

/// The parts of a signed request, kept so that it can be sent again.
struct SignedRequest {
    method: Method,
    url: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    authorization: String,
    keyrelay_base_string: String,
}

fn sign(
    signer: &Oauth1Signer,
    method: &str,
    url: &str,
    content_type: Option<&'static str>,
    body: &[u8],
) -> SignedRequest {
    let params = SigningParams::generate().unwrap();
    let form = form_body_for_signing(content_type, body);
    let header = signer
        .authorization_header(method, url, form, &[], &params)
        .unwrap();
    SignedRequest {
        method: Method::from_bytes(method.as_bytes()).unwrap(),
        url: url.to_owned(),
        content_type,
        body: body.to_vec(),
        authorization: header.expose_secret().to_owned(),
        keyrelay_base_string: signer.base_string(method, url, form, &[], &params).unwrap(),
    }
}

async fn send(http: &reqwest::Client, req: &SignedRequest) -> Reply {
    let mut rb = http
        .request(req.method.clone(), &req.url)
        .header("Authorization", &req.authorization);
    if let Some(content_type) = req.content_type {
        rb = rb.header("Content-Type", content_type);
    }
    if !req.body.is_empty() {
        rb = rb.body(req.body.clone());
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        json,
        keyrelay_base_string: req.keyrelay_base_string.clone(),
    }
}

async fn signed(
    http: &reqwest::Client,
    signer: &Oauth1Signer,
    method: &str,
    url: &str,
    content_type: Option<&'static str>,
    body: &[u8],
) -> Reply {
    send(http, &sign(signer, method, url, content_type, body)).await
}

/// Name -> values, as the echo endpoint reports a query or form.
fn multi(pairs: &[(&str, &[&str])]) -> Value {
    let mut map = serde_json::Map::new();
    for (name, values) in pairs {
        map.insert((*name).to_owned(), json!(values));
    }
    Value::Object(map)
}

/// The flow, then `/api/me`, a GET with a tricky query (on a path with an
/// encoded space), a POST with a tricky form body and a query, a PUT with a
/// JSON body (not signed: only form bodies are), and a replayed request.
async fn full_exchange(server: &OauthlibServer, consumer: &Oauth1Signer) {
    let http = http();
    let signer = with_token(consumer, &three_legged(server, &http, consumer).await);
    let api = server.api_base_url();

    let me = signed(&http, &signer, "GET", &format!("{api}/me"), None, b"")
        .await
        .ok();
    assert_eq!(me, json!({"user_id": USER_ID, "screen_name": SCREEN_NAME}));

    let url = format!("{api}/echo/a%20path/x?{TRICKY_QUERY}");
    let get = sign(&signer, "GET", &url, None, b"");
    let echo = send(&http, &get).await.ok();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/api/echo/a%20path/x");
    assert_eq!(echo["user_id"], USER_ID);
    assert_eq!(
        echo["query"],
        multi(&[
            ("q", &["hello world"]),
            ("space_plus", &["a b"]),
            ("plus", &["1+1"]),
            ("slash", &["a/b"]),
            ("dup", &["z", "a", ""]),
            ("uni", &["été €🦀"]),
            ("ñ", &["ü"]),
            ("tilde", &["~x"]),
            ("star", &["*"]),
            ("empty", &[""]),
        ])
    );
    assert_eq!(echo["form"], json!({}));

    let form = "application/x-www-form-urlencoded";
    let url = format!("{api}/echo?via=query&dup=0");
    let echo = signed(
        &http,
        &signer,
        "POST",
        &url,
        Some(form),
        TRICKY_FORM.as_bytes(),
    )
    .await
    .ok();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/echo");
    assert_eq!(
        echo["query"],
        multi(&[("via", &["query"]), ("dup", &["0"])])
    );
    assert_eq!(
        echo["form"],
        multi(&[
            ("text", &["Hello World!"]),
            ("plus", &["1+1"]),
            ("space", &["a b"]),
            ("dup", &["2", "1"]),
            ("uni", &["✓"]),
            ("empty", &[""]),
        ])
    );
    assert_eq!(echo["body"], TRICKY_FORM);

    let body = br#"{"not": "signed", "a+b": "c d"}"#;
    let url = format!("{api}/echo/items/7?x=%2B");
    let echo = signed(&http, &signer, "PUT", &url, Some("application/json"), body)
        .await
        .ok();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["query"], multi(&[("x", &["+"])]));
    assert_eq!(echo["form"], json!({}));
    assert_eq!(echo["body"], std::str::from_utf8(body).unwrap());

    // The same request again (same nonce and timestamp): refused.
    let replay = send(&http, &get).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.json);
    assert_eq!(replay.json["reason"], "nonce already used");

    assert_eq!(
        server.stats().await,
        OauthlibStats {
            request_tokens_issued: 1,
            authorizations: 1,
            access_tokens_issued: 1,
            resource_requests_verified: 4,
            // The spent request token, and the replay.
            requests_rejected: 2,
            nonces_rejected: 1,
        }
    );
}

#[tokio::test]
async fn hmac_sha1() {
    let server = start!(options("HMAC-SHA1"));
    full_exchange(
        &server,
        &shared_signer(SignatureMethod::HmacSha1, CONSUMER_SECRET),
    )
    .await;
}

#[tokio::test]
async fn hmac_sha256() {
    let server = start!(options("HMAC-SHA256"));
    full_exchange(
        &server,
        &shared_signer(SignatureMethod::HmacSha256, CONSUMER_SECRET),
    )
    .await;
}

#[tokio::test]
async fn plaintext() {
    let server = start!(options("PLAINTEXT"));
    full_exchange(
        &server,
        &shared_signer(SignatureMethod::Plaintext, CONSUMER_SECRET),
    )
    .await;
}

#[tokio::test]
async fn rsa_sha1() {
    let server = start!(
        OauthlibOptions::rsa_sha1(CONSUMER_KEY, RSA_PUBLIC_KEY).with_user(USER_ID, SCREEN_NAME)
    );
    let consumer = Oauth1Signer::rsa_sha1(CONSUMER_KEY, RSA_PRIVATE_KEY).unwrap();
    full_exchange(&server, &consumer).await;
}

#[tokio::test]
async fn hmac_sha1_with_oauth_version_and_realm() {
    let server = start!(options("HMAC-SHA1"));
    let consumer = shared_signer(SignatureMethod::HmacSha1, CONSUMER_SECRET)
        .with_oauth_version(true)
        .with_realm("http://127.0.0.1/api");
    full_exchange(&server, &consumer).await;
}

#[tokio::test]
async fn wrong_consumer_secret_is_refused() {
    let server = start!(options("HMAC-SHA1"));
    let http = http();

    // At the first step: oauthlib answers a bare 401.
    let wrong = shared_signer(SignatureMethod::HmacSha1, "not the secret");
    let req = temporary_credentials_request(
        &wrong,
        &server.request_token_url(),
        CALLBACK,
        &BTreeMap::new(),
        &SigningParams::generate().unwrap(),
    )
    .unwrap();
    let (status, body) = send_form(&http, &req).await;
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    let err = parse_temporary_credentials(status, &body).unwrap_err();
    assert!(
        matches!(err, Oauth1Error::Rejected { status: 401 }),
        "{err:?}"
    );

    // On a protected resource: a valid token, the wrong consumer secret.
    let consumer = shared_signer(SignatureMethod::HmacSha1, CONSUMER_SECRET);
    let token = three_legged(&server, &http, &consumer).await;
    let me = format!("{}/me", server.api_base_url());
    let good = with_token(&consumer, &token);
    let reply = signed(&http, &good, "GET", &me, None, b"").await.ok();
    assert_eq!(reply["user_id"], USER_ID);
    let bad = with_token(
        &shared_signer(SignatureMethod::HmacSha1, "not the secret"),
        &token,
    );
    let reply = signed(&http, &bad, "GET", &me, None, b"").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.json);
    assert_eq!(reply.json["reason"], "invalid signature", "{}", reply.json);
    assert_eq!(reply.json["validator_log"]["signature"], false);

    // A consumer key the provider does not know.
    let stranger = Oauth1Signer::new(
        SignatureMethod::HmacSha1,
        "someone-else",
        ClientSecret::new(CONSUMER_SECRET),
    )
    .unwrap();
    let req = temporary_credentials_request(
        &stranger,
        &server.request_token_url(),
        CALLBACK,
        &BTreeMap::new(),
        &SigningParams::generate().unwrap(),
    )
    .unwrap();
    assert_eq!(send_form(&http, &req).await.0, 401);

    let stats = server.stats().await;
    assert_eq!(
        stats,
        OauthlibStats {
            request_tokens_issued: 1,
            authorizations: 1,
            access_tokens_issued: 1,
            resource_requests_verified: 1,
            // The wrong secret twice (request token, resource), the spent
            // request token, the stranger.
            requests_rejected: 4,
            nonces_rejected: 0,
        }
    );
}
