//! The pass-through proxy, seen from both ends: what the caller sends, what
//! the provider's API (a hyper upstream that records the wire) receives, and
//! what comes back. Credential stamping for every injection kind, fidelity
//! of method, path, query, headers and bodies (a property test), hop-by-hop
//! headers, redirects, compressed bodies, chunked and sized bodies, 200 MiB
//! each way, and the 401 → refresh → retry-once rule.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyrelay_testkit::reexport::proptest::prelude::*;
use keyrelay_testkit::reexport::proptest::test_runner::{Config, TestRunner};
use keyrelay_testkit::{
    Backend, BodyDigest, FakeProvider, FakeProviderOptions, RecordedRequest, TestServer, Upstream,
    UpstreamResponse, both_backends, pattern_chunks, pattern_sha256,
};
use reqwest::Method;
use serde_json::{Value, json};

both_backends! {
    stamps_each_kind_of_credential => stamps_each_kind_of_credential;
    refresh_on_401_then_retry_once => refresh_on_401_then_retry_once;
}

// ---------------------------------------------------------------------------
// Shared set-up (also used by proxy_safety.rs).

/// A client that never follows redirects and never decompresses.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Creates an integration with an inline provider definition.
pub(crate) async fn integration(server: &TestServer, key: &str, name: &str, provider: Value) {
    integration_with(server, key, name, provider, json!({})).await;
}

/// As [`integration`], with more fields (client id and secret).
pub(crate) async fn integration_with(
    server: &TestServer,
    key: &str,
    name: &str,
    provider: Value,
    extra: Value,
) {
    let mut body = json!({"key": name, "provider": provider});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = server.post("/v1/integrations", key, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Imports a connection.
pub(crate) async fn connection(
    server: &TestServer,
    key: &str,
    integration: &str,
    user: &str,
    credentials: Value,
) {
    let r = server
        .post(
            "/v1/connections",
            key,
            json!({"integration": integration, "user_id": user, "credentials": credentials}),
        )
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text);
}

/// A proxy request with the three keyrelay headers. `path` is everything
/// after `/v1/proxy/` (query included).
pub(crate) fn proxied(
    client: &reqwest::Client,
    server: &TestServer,
    key: &str,
    integration: &str,
    user: &str,
    method: Method,
    path: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, server.url(&format!("/v1/proxy/{path}")))
        .bearer_auth(key)
        .header("Keyrelay-Integration", integration)
        .header("Keyrelay-User", user)
}

/// An api_key provider at `base` sending `X-Api-Key: Token <key>`.
pub(crate) fn api_key_provider(base: &str) -> Value {
    json!({"auth_mode": "api_key", "api_base_url": base,
           "auth_injection": {"type": "header", "name": "X-Api-Key", "format": "Token {api_key}"}})
}

/// A project with integration "api" (see [`api_key_provider`]) and
/// connection "u1" whose key is `k-secret-1`.
pub(crate) async fn api_key_env(server: &TestServer, base: &str) -> String {
    let (_, key) = server.create_project("proxy").await;
    integration(server, &key, "api", api_key_provider(base)).await;
    connection(server, &key, "api", "u1", json!({"api_key": "k-secret-1"})).await;
    key
}

/// Gets an access and a refresh token the fake provider will honour
/// (authorization-code grant, done by hand; the provider must not require PKCE).
pub(crate) async fn mint_tokens(provider: &FakeProvider) -> (String, String) {
    let o = provider.options();
    let redirect = "https://app.example.com/cb";
    let http = client();
    let authorize = http
        .get(provider.url("/authorize"))
        .query(&[
            ("client_id", o.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    let location = authorize.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let url = url_query(&location, "code").unwrap();
    let token: Value = http
        .post(provider.url("/token"))
        .basic_auth(&o.client_id, Some(&o.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", url.as_str()),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        token["access_token"].as_str().unwrap().to_string(),
        token["refresh_token"].as_str().unwrap().to_string(),
    )
}

fn url_query(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The fake provider's definition with its API at `api_base_url`.
pub(crate) fn oauth_provider(
    provider: &FakeProvider,
    api_base_url: &str,
    injection: Value,
) -> Value {
    let mut def = provider.definition(true);
    def["api_base_url"] = json!(api_base_url);
    if !injection.is_null() {
        def["auth_injection"] = injection;
    }
    def
}

pub(crate) fn client_fields(provider: &FakeProvider) -> Value {
    let o = provider.options();
    json!({"client_id": o.client_id, "client_secret": o.client_secret})
}

/// Headers grouped by lowercase name, values in order.
fn grouped<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, v) in headers {
        map.entry(n.to_ascii_lowercase())
            .or_default()
            .push(v.to_string());
    }
    map
}

fn response_headers(resp: &reqwest::Response) -> Vec<(String, String)> {
    resp.headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

// ---------------------------------------------------------------------------
// Credential stamping.

/// (integration, provider, extra integration fields, user, credentials,
/// path sent, expected path and query upstream, expected stamped header).
type StampCase<'a> = (
    &'a str,
    Value,
    Value,
    &'a str,
    Value,
    &'a str,
    String,
    Option<(&'a str, String)>,
);

async fn stamps_each_kind_of_credential(backend: Backend) {
    let upstream = Upstream::ok().await;
    let provider = FakeProvider::start(FakeProviderOptions::default()).await;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key) = server.create_project("stamps").await;
    let base = upstream.url("/api/v2");
    let http = client();
    // base64("AC123:pw-basic-9")
    let basic = "QUMxMjM6cHctYmFzaWMtOQ==";
    let odd_user = "team/7 ?#%2F&x=y";
    let oauth_def = |injection: Value| oauth_provider(&provider, &base, injection);
    let cases: Vec<StampCase> = vec![
        (
            "oauth-bearer",
            oauth_def(Value::Null),
            client_fields(&provider),
            "u",
            json!({"access_token": "at-imported-1", "expires_in": 3600}),
            "repos/1?page=2",
            "/api/v2/repos/1?page=2".into(),
            Some(("authorization", "Bearer at-imported-1".into())),
        ),
        (
            "oauth-query",
            oauth_def(json!({"type": "query", "name": "access_token"})),
            client_fields(&provider),
            "u",
            json!({"access_token": "at-imported-2", "expires_in": 3600}),
            "items?a=1&b=",
            "/api/v2/items?a=1&b=&access_token=at-imported-2".into(),
            None,
        ),
        (
            "oauth-query-noq",
            oauth_def(json!({"type": "query", "name": "access_token"})),
            client_fields(&provider),
            "u",
            json!({"access_token": "at-imported-3", "expires_in": 3600}),
            "items",
            "/api/v2/items?access_token=at-imported-3".into(),
            None,
        ),
        (
            "key-header",
            api_key_provider(&base),
            json!({}),
            odd_user,
            json!({"api_key": "k-secret-1"}),
            "v1/things",
            "/api/v2/v1/things".into(),
            Some(("x-api-key", "Token k-secret-1".into())),
        ),
        (
            "key-header-verbatim",
            json!({"auth_mode": "api_key", "api_base_url": base,
                   "auth_injection": {"type": "header", "name": "X-Api-Key"}}),
            json!({}),
            "u",
            json!({"api_key": "k-secret-2"}),
            "x",
            "/api/v2/x".into(),
            Some(("x-api-key", "k-secret-2".into())),
        ),
        (
            "key-bearer",
            json!({"auth_mode": "api_key", "api_base_url": base, "auth_injection": {"type": "bearer"}}),
            json!({}),
            "u",
            json!({"api_key": "k-secret-3"}),
            "x",
            "/api/v2/x".into(),
            Some(("authorization", "Bearer k-secret-3".into())),
        ),
        (
            "key-default",
            json!({"auth_mode": "api_key", "api_base_url": base}),
            json!({}),
            "u",
            json!({"api_key": "k-secret-4"}),
            "x",
            "/api/v2/x".into(),
            Some(("authorization", "Bearer k-secret-4".into())),
        ),
        (
            "key-query",
            json!({"auth_mode": "api_key", "api_base_url": base,
                   "auth_injection": {"type": "query", "name": "key"}}),
            json!({}),
            "u",
            json!({"api_key": "k-secret-5"}),
            "search?q=a+b%20c",
            "/api/v2/search?q=a+b%20c&key=k-secret-5".into(),
            None,
        ),
        (
            "basic",
            json!({"auth_mode": "basic", "api_base_url": base}),
            json!({}),
            "u",
            json!({"username": "AC123", "password": "pw-basic-9"}),
            "Accounts/AC123.json",
            "/api/v2/Accounts/AC123.json".into(),
            Some(("authorization", format!("Basic {basic}"))),
        ),
        (
            "no-base-path",
            json!({"auth_mode": "api_key", "api_base_url": upstream.base_url}),
            json!({}),
            "u",
            json!({"api_key": "k-secret-6"}),
            "root/x",
            "/root/x".into(),
            Some(("authorization", "Bearer k-secret-6".into())),
        ),
    ];
    for (name, def, extra, user, creds, path, expected_target, stamped) in cases {
        integration_with(&server, &key, name, def, extra).await;
        connection(&server, &key, name, user, creds).await;
        let before = upstream.count();
        let resp = proxied(&http, &server, &key, name, user, Method::GET, path)
            .header("Keyrelay-Trace", "must-not-leak")
            .header("X-Api-Key", "forged-by-caller")
            .header("X-Keep", "kept")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{name}: {text}");
        assert_eq!(upstream.count(), before + 1, "{name}");
        let got = upstream.last();
        assert_eq!(got.method, "GET", "{name}");
        assert_eq!(got.path_and_query, expected_target, "{name}");
        assert_eq!(
            got.header("host"),
            Some(upstream.authority().as_str()),
            "{name}"
        );
        assert_eq!(got.header_all("x-keep"), ["kept"], "{name}");
        assert!(
            got.headers.iter().all(|(n, _)| !n.starts_with("keyrelay-")),
            "{name}: no Keyrelay-* header upstream: {:?}",
            got.headers
        );
        assert!(
            !got.headers.iter().any(|(_, v)| v.contains(&key)),
            "{name}: the project key never goes upstream"
        );
        match &stamped {
            Some((header, value)) => {
                assert_eq!(got.header_all(header), [value.as_str()], "{name}");
                if *header != "authorization" {
                    assert_eq!(got.header("authorization"), None, "{name}");
                }
                if *header != "x-api-key" {
                    assert_eq!(got.header_all("x-api-key"), ["forged-by-caller"], "{name}");
                }
            }
            None => {
                assert_eq!(got.header("authorization"), None, "{name}");
                assert_eq!(got.header_all("x-api-key"), ["forged-by-caller"], "{name}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 401 → one refresh → one retry.

async fn refresh_on_401_then_retry_once(backend: Backend) {
    let provider = FakeProvider::start(FakeProviderOptions {
        require_pkce: false,
        ..FakeProviderOptions::default()
    })
    .await;
    let stale: Arc<Mutex<Vec<String>>> = Arc::default();
    let (p, s) = (provider.clone(), stale.clone());
    // 401 for a token we marked stale, 200 for any other token the provider issued.
    let upstream = Upstream::start(move |req: &RecordedRequest| {
        let token = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_string();
        if s.lock().unwrap().contains(&token) || req.path().starts_with("/api/always") {
            UpstreamResponse::full(
                401,
                &[
                    ("content-type", "application/json"),
                    ("www-authenticate", "Bearer error=\"invalid_token\""),
                ],
                r#"{"message":"Bad credentials"}"#,
            )
        } else if p.issued_tokens().contains(&token) {
            UpstreamResponse::full(200, &[], [b"ok:".as_slice(), &req.body].concat())
        } else {
            UpstreamResponse::full(403, &[], "unknown token")
        }
    })
    .await;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key) = server.create_project("retry").await;
    integration_with(
        &server,
        &key,
        "fake",
        oauth_provider(&provider, &upstream.url("/api"), Value::Null),
        client_fields(&provider),
    )
    .await;
    let http = client();

    // One stale request: refreshed once, retried once, same request again.
    let (at, rt) = mint_tokens(&provider).await;
    stale.lock().unwrap().push(at.clone());
    connection(
        &server,
        &key,
        "fake",
        "solo",
        json!({"access_token": at, "refresh_token": rt, "expires_in": 3600}),
    )
    .await;
    let calls = provider.token_calls();
    let resp = proxied(
        &http,
        &server,
        &key,
        "fake",
        "solo",
        Method::POST,
        "items?x=1",
    )
    .header("content-type", "application/json")
    .body(r#"{"name":"n"}"#)
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"ok:{"name":"n"}"#);
    assert_eq!(provider.token_calls(), calls + 1, "exactly one refresh");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2, "the request and one retry");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {at}").as_str())
    );
    let fresh = provider.issued_tokens().last().unwrap().clone();
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("Bearer {fresh}").as_str())
    );
    for r in &seen {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path_and_query, "/api/items?x=1");
        assert_eq!(r.body, br#"{"name":"n"}"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let conn = server.get("/v1/connections/fake/solo", &key).await;
    assert_eq!(conn.body["refresh_count"], 1, "{}", conn.text);
    // The next request uses the new token directly.
    let again = proxied(&http, &server, &key, "fake", "solo", Method::GET, "items")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(provider.token_calls(), calls + 1);
    assert_eq!(upstream.count(), 3);

    // Concurrent stale requests share one refresh.
    let (at, rt) = mint_tokens(&provider).await;
    stale.lock().unwrap().push(at.clone());
    connection(
        &server,
        &key,
        "fake",
        "crowd",
        json!({"access_token": at, "refresh_token": rt, "expires_in": 3600}),
    )
    .await;
    let calls = provider.token_calls();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let req = proxied(
            &http,
            &server,
            &key,
            "fake",
            "crowd",
            Method::PUT,
            &format!("n/{i}"),
        )
        .body(format!("body-{i}"));
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), (200, format!("ok:body-{i}")));
    }
    assert_eq!(
        provider.token_calls(),
        calls + 1,
        "one refresh shared by concurrent requests"
    );

    // A provider that still says 401 after the refresh: its answer goes
    // back as is, after exactly one refresh and one retry.
    let (at, rt) = mint_tokens(&provider).await;
    connection(
        &server,
        &key,
        "fake",
        "always401",
        json!({"access_token": at, "refresh_token": rt, "expires_in": 3600}),
    )
    .await;
    let before = upstream.count();
    let calls = provider.token_calls();
    let resp = proxied(
        &http,
        &server,
        &key,
        "fake",
        "always401",
        Method::GET,
        "always/me",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("keyrelay-error").is_none());
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"message":"Bad credentials"}"#
    );
    assert_eq!(upstream.count(), before + 2, "one retry, no more");
    assert_eq!(provider.token_calls(), calls + 1, "one refresh, no more");

    // Bodies too big (or of unknown length) to keep: the 401 goes back as
    // it came, with the provider's headers and body, and nothing is retried.
    for (user, streamed) in [("big-sized", false), ("big-streamed", true)] {
        let (at, rt) = mint_tokens(&provider).await;
        stale.lock().unwrap().push(at.clone());
        connection(
            &server,
            &key,
            "fake",
            user,
            json!({"access_token": at, "refresh_token": rt, "expires_in": 3600}),
        )
        .await;
        let before = upstream.count();
        let size = 8 * 1024 * 1024;
        let req = proxied(&http, &server, &key, "fake", user, Method::POST, "upload");
        let req = if streamed {
            req.body(reqwest::Body::wrap_stream(pattern_chunks(size)))
        } else {
            req.body(vec![7u8; size as usize])
        };
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{user}");
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\"",
            "{user}"
        );
        assert!(resp.headers().get("keyrelay-error").is_none(), "{user}");
        assert_eq!(
            resp.text().await.unwrap(),
            r#"{"message":"Bad credentials"}"#,
            "{user}"
        );
        assert_eq!(upstream.count(), before + 1, "{user}: not retried");
        assert_eq!(upstream.last().body_len, size, "{user}");
    }
}

// ---------------------------------------------------------------------------
// Fidelity: a property test over methods, paths, queries, headers and bodies.

#[derive(Debug, Clone)]
struct Case {
    method: Method,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
    response_headers: Vec<(String, String)>,
    response_body: Vec<u8>,
}

/// A path segment that is not `.` or `..` in any spelling and holds no
/// encoded slash, backslash or control character. The first segment also
/// has no `:` or `@` (it would read as a scheme or user name; such paths
/// are refused, see proxy_safety.rs).
fn segment(first: bool) -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_~-][A-Za-z0-9_.~-]{0,11}",
        Just("%20".to_string()),
        Just("caf%C3%A9".to_string()),
        Just("a%3Db".to_string()),
        Just("file.tar.gz".to_string()),
        Just("x!$&()*+,=~".to_string()),
        Just(if first { "v1" } else { "p:q@r" }.to_string()),
    ]
}

fn query_part() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,5}=[A-Za-z0-9._~-]{0,8}",
        "[a-z]{1,3}",
        Just("a=1".to_string()),
        Just("a=2".to_string()),
        Just("empty=".to_string()),
        Just("sp=a%20b+c".to_string()),
        Just("plus=+++".to_string()),
        Just("enc=%2F%3F%26%3D%2e%2e".to_string()),
        Just("odd=:@/?!$()*,;".to_string()),
        Just("=novalue".to_string()),
        Just("utf=%C3%A9%E2%82%AC".to_string()),
        Just("".to_string()),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,30}[!-~])?"
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(Method::GET),
            Just(Method::POST),
            Just(Method::PUT),
            Just(Method::PATCH),
            Just(Method::DELETE),
        ],
        (segment(true), prop::collection::vec(segment(false), 0..4)),
        any::<bool>(),
        prop::option::of(prop::collection::vec(query_part(), 1..7)),
        prop::collection::vec((0u8..5, header_value()), 0..7),
        prop::collection::vec(any::<u8>(), 0..70_000),
        (200u16..600).prop_filter("no bodiless statuses", |s| ![204, 205, 304].contains(s)),
        prop::collection::vec((0u8..5, header_value()), 0..7),
        prop::collection::vec(any::<u8>(), 0..16_384),
    )
        .prop_map(
            |(method, (first, rest), slash, query, headers, body, status, rh, response_body)| {
                Case {
                    method,
                    path: [first]
                        .into_iter()
                        .chain(rest)
                        .collect::<Vec<_>>()
                        .join("/")
                        + if slash { "/" } else { "" },
                    query: query.map(|q| q.join("&")),
                    headers: headers
                        .into_iter()
                        .map(|(n, v)| (format!("x-test-{n}"), v))
                        .collect(),
                    body,
                    status,
                    response_headers: rh
                        .into_iter()
                        .map(|(n, v)| (format!("x-resp-{n}"), v))
                        .chain([
                            ("set-cookie".to_string(), "a=1; Path=/".to_string()),
                            ("set-cookie".to_string(), "b=2; HttpOnly".to_string()),
                            (
                                "content-type".to_string(),
                                "application/octet-stream".to_string(),
                            ),
                        ])
                        .collect(),
                    response_body,
                }
            },
        )
}

/// Sends `case` straight to the upstream (the baseline of what the client
/// puts on the wire) and through keyrelay, and compares both ends.
async fn check_case(
    server: &TestServer,
    key: &str,
    upstream: &Upstream,
    plan: &Mutex<Option<UpstreamResponse>>,
    case: Case,
) -> Result<(), TestCaseError> {
    let http = client();
    let target = match &case.query {
        Some(q) => format!("{}?{q}", case.path),
        None => case.path.clone(),
    };
    *plan.lock().unwrap() = Some(UpstreamResponse::Full {
        status: case.status,
        headers: case.response_headers.clone(),
        body: case.response_body.clone(),
    });
    let build = |req: reqwest::RequestBuilder| {
        let mut req = req;
        for (n, v) in &case.headers {
            req = req.header(n, v);
        }
        req.body(case.body.clone())
    };
    // Baseline: straight to the upstream.
    let direct = build(
        http.request(
            case.method.clone(),
            upstream.url(&format!("/base/{target}")),
        )
        .bearer_auth(key)
        .header("Keyrelay-Integration", "api")
        .header("Keyrelay-User", "u1"),
    )
    .send()
    .await
    .unwrap();
    prop_assert_eq!(direct.status().as_u16(), case.status);
    let baseline = upstream.last();
    prop_assert_eq!(
        &baseline.path_and_query,
        &format!("/base/{target}"),
        "the generator makes only targets the client sends unchanged"
    );
    // Through keyrelay.
    let resp = build(proxied(
        &http,
        server,
        key,
        "api",
        "u1",
        case.method.clone(),
        &target,
    ))
    .send()
    .await
    .unwrap();
    let status = resp.status().as_u16();
    let got_headers = response_headers(&resp);
    let got_body = resp.bytes().await.unwrap().to_vec();
    prop_assert!(
        got_headers.iter().all(|(n, _)| n != "keyrelay-error"),
        "keyrelay refused: {} {}",
        status,
        String::from_utf8_lossy(&got_body)
    );
    let seen = upstream.last();
    prop_assert_eq!(&seen.method, case.method.as_str());
    prop_assert_eq!(&seen.path_and_query, &baseline.path_and_query);
    prop_assert_eq!(seen.body_len, case.body.len() as u64);
    prop_assert!(seen.body == case.body, "request body differs");
    let mut expected = grouped(
        baseline
            .headers
            .iter()
            .filter(|(n, _)| {
                !(n == "host"
                    || n == "authorization"
                    || n.starts_with("keyrelay-")
                    || HOP_BY_HOP.contains(&n.as_str()))
            })
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    expected.insert("host".into(), vec![upstream.authority()]);
    expected.insert("x-api-key".into(), vec!["Token k-secret-1".into()]);
    let received = grouped(
        seen.headers
            .iter()
            .filter(|(n, _)| !HOP_BY_HOP.contains(&n.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    prop_assert_eq!(received, expected, "headers upstream");
    // And back.
    prop_assert_eq!(status, case.status);
    prop_assert!(got_body == case.response_body, "response body differs");
    let sent = grouped(
        seen.response_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    let came = grouped(
        got_headers
            .iter()
            .filter(|(n, _)| !n.starts_with("keyrelay-") && !HOP_BY_HOP.contains(&n.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    prop_assert_eq!(came, sent, "headers back");
    Ok(())
}

#[test]
fn requests_and_responses_pass_unchanged() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let plan: Arc<Mutex<Option<UpstreamResponse>>> = Arc::default();
    let (server, key, upstream) = rt.block_on(async {
        let p = plan.clone();
        let upstream = Upstream::start(move |_| p.lock().unwrap().clone().unwrap()).await;
        let server = TestServer::start(Backend::Sqlite).await.unwrap();
        let key = api_key_env(&server, &upstream.url("/base")).await;
        (server, key, upstream)
    });
    let mut runner = TestRunner::new(Config {
        cases: 30,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        rt.block_on(check_case(&server, &key, &upstream, &plan, case))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(
        upstream.count(),
        60,
        "30 cases, each sent directly and through keyrelay"
    );
    rt.block_on(async move {
        drop(upstream);
        server.stop().await;
    });
}

// ---------------------------------------------------------------------------
// Hop-by-hop headers, redirects, compressed and chunked bodies.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_stop_at_keyrelay() {
    let upstream = Upstream::start(|_| {
        UpstreamResponse::full(
            200,
            &[
                ("connection", "x-resp-drop"),
                ("x-resp-drop", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-authenticate", "Basic realm=x"),
                ("trailer", "x-sum"),
                ("upgrade", "foo/1"),
                ("x-resp-keep", "1"),
            ],
            "fine",
        )
    })
    .await;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let key = api_key_env(&server, &upstream.url("/base")).await;
    let resp = proxied(&client(), &server, &key, "api", "u1", Method::POST, "hop")
        .header("connection", "x-drop-me")
        .header("x-drop-me", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic eDp5")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers")
        .header("trailer", "x-sum")
        .header("x-keep", "1")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let back = response_headers(&resp);
    assert_eq!(resp.text().await.unwrap(), "fine");
    let got = upstream.last();
    let mut problems = Vec::new();
    for name in [
        "x-drop-me",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
    ] {
        if got.header(name).is_some() {
            problems.push(format!("{name} went upstream: {:?}", got.headers));
        }
    }
    if let Some(c) = got.header("connection") {
        assert!(!c.contains("x-drop-me"), "connection: {c}");
    }
    assert_eq!(got.header("x-keep"), Some("1"));
    assert_eq!(got.body, b"payload");
    let names: Vec<&str> = back.iter().map(|(n, _)| n.as_str()).collect();
    for name in [
        "x-resp-drop",
        "keep-alive",
        "proxy-authenticate",
        "trailer",
        "upgrade",
    ] {
        if names.contains(&name) {
            problems.push(format!("{name} came back: {back:?}"));
        }
    }
    assert!(names.contains(&"x-resp-keep"), "{back:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_come_back_unfollowed_and_unchanged() {
    let upstream = Upstream::start(|req: &RecordedRequest| match req.path() {
        "/base/away" => {
            UpstreamResponse::full(302, &[("location", "http://elsewhere.example/")], "")
        }
        "/base/relative" => UpstreamResponse::full(307, &[("location", "/base/next?x=1")], "moved"),
        _ => UpstreamResponse::full(301, &[("location", "https://127.0.0.1:1/p")], ""),
    })
    .await;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let key = api_key_env(&server, &upstream.url("/base")).await;
    let http = client();
    for (path, status, location, body) in [
        ("away", 302, "http://elsewhere.example/", ""),
        ("relative", 307, "/base/next?x=1", "moved"),
        ("other", 301, "https://127.0.0.1:1/p", ""),
    ] {
        let resp = proxied(&http, &server, &key, "api", "u1", Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        assert_eq!(resp.headers()["location"], location, "{path}");
        assert_eq!(resp.text().await.unwrap(), body, "{path}");
    }
    assert_eq!(upstream.count(), 3, "no redirect followed");
}

/// `{"hello": "keyrelay", "padding": "aaaa…"}\n`, gzip-compressed (mtime 0).
const GZIPPED: [u8; 57] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0xca, 0x48, 0xcd, 0xc9,
    0xc9, 0x57, 0xb2, 0x52, 0x50, 0xca, 0x4e, 0xad, 0x2c, 0x4a, 0xcd, 0x49, 0xac, 0x54, 0xd2, 0x51,
    0x50, 0x2a, 0x48, 0x4c, 0x49, 0xc9, 0xcc, 0x4b, 0x07, 0x09, 0x27, 0x12, 0x00, 0x4a, 0xb5, 0x5c,
    0x00, 0x57, 0xce, 0x7b, 0x35, 0x45, 0x00, 0x00, 0x00,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bodies_pass_byte_for_byte() {
    let upstream = Upstream::start(|_| UpstreamResponse::Full {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("content-encoding".into(), "gzip".into()),
            ("vary".into(), "Accept-Encoding".into()),
        ],
        body: GZIPPED.to_vec(),
    })
    .await;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let key = api_key_env(&server, &upstream.url("/base")).await;
    let resp = proxied(&client(), &server, &key, "api", "u1", Method::POST, "z")
        .header("accept-encoding", "gzip, br;q=0.5")
        .header("content-encoding", "gzip")
        .body(GZIPPED.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(resp.headers()["content-length"], "57");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), GZIPPED.as_slice());
    let got = upstream.last();
    assert_eq!(got.header("accept-encoding"), Some("gzip, br;q=0.5"));
    assert_eq!(got.header("content-encoding"), Some("gzip"));
    assert_eq!(got.body, GZIPPED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_and_sized_bodies_both_pass() {
    let upstream = Upstream::start(|req: &RecordedRequest| {
        let body = req.body.clone();
        if req.path().ends_with("/chunked") {
            UpstreamResponse::Chunked {
                status: 201,
                headers: vec![("x-kind".into(), "chunked".into())],
                chunks: body.chunks(1000).map(<[u8]>::to_vec).collect(),
            }
        } else {
            UpstreamResponse::Full {
                status: 201,
                headers: vec![("x-kind".into(), "sized".into())],
                body,
            }
        }
    })
    .await;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let key = api_key_env(&server, &upstream.url("/base")).await;
    let http = client();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (down, up_streamed) in [
        ("sized", false),
        ("sized", true),
        ("chunked", false),
        ("chunked", true),
    ] {
        let req = proxied(
            &http,
            &server,
            &key,
            "api",
            "u1",
            Method::PUT,
            &format!("echo/{down}"),
        );
        let req = if up_streamed {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                payload.chunks(4096).map(|c| Ok(c.to_vec())).collect();
            req.body(reqwest::Body::wrap_stream(
                keyrelay_testkit::reexport::futures_util::stream::iter(chunks),
            ))
        } else {
            req.body(payload.clone())
        };
        let resp = req.send().await.unwrap();
        let what = format!(
            "{down} down, {} up",
            if up_streamed { "chunked" } else { "sized" }
        );
        assert_eq!(resp.status(), 201, "{what}");
        assert_eq!(resp.headers()["x-kind"], down, "{what}");
        match down {
            "sized" => assert_eq!(resp.headers()["content-length"], "300000", "{what}"),
            _ => assert!(resp.headers().get("content-length").is_none(), "{what}"),
        }
        let got = upstream.last();
        if up_streamed {
            assert_eq!(got.header("transfer-encoding"), Some("chunked"), "{what}");
            assert_eq!(got.header("content-length"), None, "{what}");
        } else {
            assert_eq!(got.header("content-length"), Some("300000"), "{what}");
        }
        assert!(got.body == payload, "{what}: request body");
        assert!(
            resp.bytes().await.unwrap() == payload,
            "{what}: response body"
        );
    }
}

// ---------------------------------------------------------------------------
// 200 MiB each way, streamed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_200_mib_each_way() {
    const SIZE: u64 = 200 * 1024 * 1024;
    let upstream = Upstream::start(|req: &RecordedRequest| {
        if req.method == "GET" {
            UpstreamResponse::Stream {
                status: 200,
                headers: vec![("content-type".into(), "application/octet-stream".into())],
                bytes: SIZE,
            }
        } else {
            UpstreamResponse::ok(format!("{} {}", req.body_len, req.body_sha256))
        }
    })
    .await;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let key = api_key_env(&server, &upstream.url("/base")).await;
    let http = client();
    let expected = pattern_sha256(SIZE);

    let up = proxied(&http, &server, &key, "api", "u1", Method::POST, "upload")
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(pattern_chunks(SIZE)))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
    assert_eq!(up.text().await.unwrap(), format!("{SIZE} {expected}"));

    let mut down = proxied(&http, &server, &key, "api", "u1", Method::GET, "download")
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 200);
    let mut digest = BodyDigest::default();
    while let Some(chunk) = down.chunk().await.unwrap() {
        digest.update(&chunk);
    }
    assert_eq!(digest.finish(), (SIZE, expected));
    assert_eq!(upstream.count(), 2);
}

/// Over TLS the proxy offers HTTP/2 by ALPN and uses it where the provider
/// takes it; the provider's certificate comes from a private CA trusted
/// through `extra_ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_upstream_over_tls() {
    let upstream = keyrelay_testkit::TlsUpstream::start().await;
    let server = TestServer::builder(Backend::Sqlite)
        .extra_ca_file(upstream.ca_file.clone())
        .start()
        .await
        .unwrap();
    let (_, key) = server.create_project("h2").await;
    let created = server
        .post(
            "/v1/integrations",
            &key,
            serde_json::json!({"key": "tls", "provider": {"auth_mode": "api_key", "api_base_url": upstream.base_url}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let connection = server
        .post(
            "/v1/connections",
            &key,
            serde_json::json!({"integration": "tls", "user_id": "u", "credentials": {"api_key": "k"}}),
        )
        .await;
    assert_eq!(connection.status, 201, "{}", connection.text);
    let resp = server
        .client
        .get(server.url("/v1/proxy/version-check"))
        .bearer_auth(&key)
        .header("Keyrelay-Integration", "tls")
        .header("Keyrelay-User", "u")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "HTTP/2.0 /version-check");
}

/// An operator limit on proxied bodies: a larger Content-Length is refused
/// with 413 before anything reaches the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_too_large_is_refused_before_sending() {
    let upstream = keyrelay_testkit::TlsUpstream::start().await;
    let server = TestServer::builder(Backend::Sqlite)
        .extra_ca_file(upstream.ca_file.clone())
        .proxy_max_body_bytes(1024)
        .start()
        .await
        .unwrap();
    let (_, key) = server.create_project("limit").await;
    server
        .post(
            "/v1/integrations",
            &key,
            serde_json::json!({"key": "tls", "provider": {"auth_mode": "api_key", "api_base_url": upstream.base_url}}),
        )
        .await;
    server
        .post(
            "/v1/connections",
            &key,
            serde_json::json!({"integration": "tls", "user_id": "u", "credentials": {"api_key": "k"}}),
        )
        .await;
    let send = |size: usize| {
        server
            .client
            .post(server.url("/v1/proxy/upload"))
            .bearer_auth(&key)
            .header("Keyrelay-Integration", "tls")
            .header("Keyrelay-User", "u")
            .body(vec![7u8; size])
            .send()
    };
    let small = send(1024).await.unwrap();
    assert_eq!(small.status(), 200);
    let big = send(1025).await.unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(big.headers()["keyrelay-error"], "body_too_large");
    let body: serde_json::Value = big.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large");
}
