//! The proxy's safety rails: credentials never leave the provider's origin
//! and base path, whatever the caller puts in the path (sent raw over TCP,
//! since an HTTP client would normalise it first), and keyrelay's own
//! errors always carry JSON and `Keyrelay-Error`.

use std::time::Duration;

use keyrelay_testkit::{
    Backend, FakeProvider, FakeProviderOptions, TestServer, TokenMode, Upstream, UpstreamResponse,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proxy::{
    api_key_env, client, client_fields, connection, integration, integration_with, oauth_provider,
    proxied,
};

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `request` as is on a fresh connection and reads the whole answer.
async fn raw(addr: &str, request: &[u8]) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf))
        .await
        .expect("keyrelay answered within 20 s")
        .unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = body.as_slice();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn proxy_request(host: &str, key: &str, path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET /v1/proxy/{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\
         Keyrelay-Integration: api\r\nKeyrelay-User: u1\r\n{extra}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_that_leave_the_origin_or_base_path_are_refused() {
    let upstream = Upstream::ok().await;
    let evil = Upstream::ok().await;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let key = api_key_env(&server, &upstream.url("/api/v2")).await;
    let host = server.base_url.trim_start_matches("http://").to_string();
    let e = evil.authority();

    // A harmless request first: the set-up works and the raw client is sound.
    let fine = raw(&host, &proxy_request(&host, &key, "ok/x?y=1", "")).await;
    assert_eq!(fine.status, 200, "{}", String::from_utf8_lossy(&fine.body));
    assert_eq!(upstream.last().path_and_query, "/api/v2/ok/x?y=1");
    let baseline = upstream.count();

    let tricks: Vec<String> = vec![
        "//evil.example/x".into(),
        format!("//{e}/x"),
        "/\\evil.example".into(),
        "\\\\evil.example/x".into(),
        "\\x".into(),
        "a\\..\\b".into(),
        "@evil.example".into(),
        format!("@{e}/x"),
        "user:pw@evil.example/".into(),
        format!("user:pw@{e}/"),
        ";@evil.example".into(),
        "http://evil.example/x".into(),
        format!("http://{e}/x"),
        "https:/evil.example".into(),
        "HTTP://evil.example".into(),
        "//127.0.0.1:1/".into(),
        "%2F%2Fevil.example".into(),
        "%2f%2fevil.example/x".into(),
        "..".into(),
        "../x".into(),
        "a/../../x".into(),
        "a/..".into(),
        "a/b/../../../x".into(),
        "%2e%2e/x".into(),
        "%2E%2E%2Fx".into(),
        ".%2e/x".into(),
        "%2e./x".into(),
        "a/%2E%2e/../x".into(),
        "x/..%2f..%2fy".into(),
        "%252e%252e/x".into(),
        "%252F%252Fevil.example".into(),
        "a/%2F/b".into(),
        "a%2fb".into(),
        "%5cevil.example".into(),
        "a%5C..%5Cb".into(),
        "%2e%2e%5cx".into(),
        ".".into(),
        "./x".into(),
        "a/./b".into(),
        "%2e/x".into(),
        "a/%2E".into(),
        "%00".into(),
        "x%00y".into(),
        "x%0d%0aHost:%20evil.example".into(),
        "x%0aevil".into(),
        "x%09y".into(),
        "x%7f".into(),
    ];
    assert!(tricks.len() >= 30);
    let mut failures = Vec::new();
    for trick in &tricks {
        let r = raw(&host, &proxy_request(&host, &key, trick, "")).await;
        let header = r.header("keyrelay-error").map(str::to_string);
        let code = r.json()["error"]["code"].as_str().map(str::to_string);
        let ok = r.status == 400
            && header.as_deref() == Some("target_not_allowed")
            && code.as_deref() == Some("target_not_allowed")
            && !r.json()["error"]["message"]
                .as_str()
                .unwrap_or("")
                .is_empty();
        if !ok {
            failures.push(format!(
                "{trick:?}: {} {header:?} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
    }
    assert_eq!(
        upstream.count(),
        baseline,
        "the upstream saw a trick: {:?}",
        upstream.requests().last()
    );
    assert_eq!(evil.connections(), 0, "the evil upstream was contacted");
    assert!(
        failures.is_empty(),
        "not refused as target_not_allowed:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_url_override_only_to_allowed_hosts() {
    let upstream = Upstream::ok().await;
    let evil = Upstream::ok().await;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let key = api_key_env(&server, &upstream.url("/api")).await;
    let http = client();
    let mut failures = Vec::new();
    for base in [
        "https://evil.example".to_string(),
        "http://evil.example/api".to_string(),
        evil.base_url.clone(),
        evil.url("/api"),
        format!("http://user@{}", evil.authority()),
        "not a url".to_string(),
    ] {
        let r = proxied(&http, &server, &key, "api", "u1", Method::GET, "x")
            .header("Keyrelay-Base-Url", &base)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let header = r
            .headers()
            .get("keyrelay-error")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if (status, header.as_deref(), body["error"]["code"].as_str())
            != (400, Some("target_not_allowed"), Some("target_not_allowed"))
        {
            failures.push(format!(
                "Keyrelay-Base-Url: {base}: {status} {header:?} {body}"
            ));
        }
    }
    let leaked: Vec<String> = evil
        .requests()
        .iter()
        .map(|r| format!("{} {} {:?}", r.method, r.path_and_query, r.headers))
        .collect();
    assert!(
        failures.is_empty(),
        "not refused:\n{}\nthe evil upstream saw: {leaked:?}",
        failures.join("\n")
    );
    assert_eq!(upstream.count(), 0);
    assert_eq!(evil.connections(), 0, "the evil upstream was contacted");
}

/// A port nothing listens on (bound a moment ago, then closed).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyrelay_errors_are_json_and_marked() {
    let upstream = Upstream::ok().await;
    let dead_provider = FakeProvider::start(FakeProviderOptions {
        token_mode: TokenMode::Error400,
        ..FakeProviderOptions::default()
    })
    .await;
    let garbage_provider = FakeProvider::start(FakeProviderOptions {
        token_mode: TokenMode::Garbage,
        ..FakeProviderOptions::default()
    })
    .await;
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let key = api_key_env(&server, &upstream.url("/api")).await;
    let (_, other_key) = server.create_project("other").await;
    integration(
        &server,
        &other_key,
        "theirs",
        crate::proxy::api_key_provider(&upstream.url("/t")),
    )
    .await;
    connection(
        &server,
        &other_key,
        "theirs",
        "u1",
        json!({"api_key": "k-theirs"}),
    )
    .await;
    for (name, provider) in [("dead", &dead_provider), ("garbage", &garbage_provider)] {
        integration_with(
            &server,
            &key,
            name,
            oauth_provider(provider, &upstream.url("/api"), Value::Null),
            client_fields(provider),
        )
        .await;
        connection(
            &server,
            &key,
            name,
            "u1",
            json!({"access_token": "at-old-SECRET", "refresh_token": "rt-old-SECRET", "expires_in": 1}),
        )
        .await;
    }
    integration(
        &server,
        &key,
        "closed",
        json!({"auth_mode": "api_key", "api_base_url": format!("http://127.0.0.1:{}/api", closed_port())}),
    )
    .await;
    connection(
        &server,
        &key,
        "closed",
        "u1",
        json!({"api_key": "k-closed"}),
    )
    .await;
    // Let the imported tokens expire (expires_in 1).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let http = client();
    let url = server.url("/v1/proxy/x");
    // (what, request, status, code)
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "no key",
            http.get(&url)
                .header("Keyrelay-Integration", "api")
                .header("Keyrelay-User", "u1"),
            401,
            "invalid_api_key",
        ),
        (
            "wrong key",
            http.get(&url)
                .bearer_auth("kr_sk_not-a-real-key")
                .header("Keyrelay-Integration", "api")
                .header("Keyrelay-User", "u1"),
            401,
            "invalid_api_key",
        ),
        (
            "admin token",
            http.get(&url)
                .bearer_auth(&server.admin_token)
                .header("Keyrelay-Integration", "api")
                .header("Keyrelay-User", "u1"),
            401,
            "invalid_api_key",
        ),
        (
            "no integration header",
            http.get(&url)
                .bearer_auth(&key)
                .header("Keyrelay-User", "u1"),
            400,
            "invalid_request",
        ),
        (
            "no user header",
            http.get(&url)
                .bearer_auth(&key)
                .header("Keyrelay-Integration", "api"),
            400,
            "invalid_request",
        ),
        (
            "unknown integration",
            proxied(&http, &server, &key, "nope", "u1", Method::GET, "x"),
            404,
            "unknown_integration",
        ),
        (
            "another project's integration",
            proxied(&http, &server, &key, "theirs", "u1", Method::GET, "x"),
            404,
            "unknown_integration",
        ),
        (
            "unknown user",
            proxied(&http, &server, &key, "api", "nobody", Method::GET, "x"),
            404,
            "unknown_connection",
        ),
        (
            "dead grant",
            proxied(&http, &server, &key, "dead", "u1", Method::GET, "x"),
            409,
            "reauthorization_required",
        ),
        (
            "dead grant, again",
            proxied(&http, &server, &key, "dead", "u1", Method::GET, "x"),
            409,
            "reauthorization_required",
        ),
        (
            "refresh answered with garbage",
            proxied(&http, &server, &key, "garbage", "u1", Method::POST, "x").body("{}"),
            502,
            "refresh_failed",
        ),
        (
            "closed port",
            proxied(&http, &server, &key, "closed", "u1", Method::GET, "x"),
            502,
            "upstream_unreachable",
        ),
    ];
    let mut failures = Vec::new();
    for (what, req, status, code) in cases {
        let r = req.send().await.unwrap();
        let got_status = r.status().as_u16();
        let header = r
            .headers()
            .get("keyrelay-error")
            .map(|v| v.to_str().unwrap().to_string());
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let good = got_status == status
            && header.as_deref() == Some(code)
            && body["error"]["code"] == code
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
            && content_type.is_some_and(|c| c.starts_with("application/json"));
        if !good {
            failures.push(format!(
                "{what}: expected {status} {code}, got {got_status} header {header:?}: {text}"
            ));
        }
        for secret in ["SECRET", "k-closed", "k-secret-1", "k-theirs", key.as_str()] {
            assert!(!text.contains(secret), "{what}: {text}");
        }
    }
    assert_eq!(upstream.count(), 0, "no error case reached the upstream");
    let dead = server.get("/v1/connections/dead/u1", &key).await;
    assert_eq!(
        dead.body["status"], "reauthorization_required",
        "{}",
        dead.text
    );
    assert_eq!(
        dead_provider.token_calls(),
        1,
        "a dead grant is not retried at the provider"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_times_out() {
    let upstream = Upstream::start(|_| UpstreamResponse::Hang).await;
    let server = TestServer::builder(Backend::Sqlite)
        .proxy_timeout(Duration::from_millis(700))
        .start()
        .await
        .unwrap();
    let key = api_key_env(&server, &upstream.url("/api")).await;
    let started = std::time::Instant::now();
    let r = proxied(&client(), &server, &key, "api", "u1", Method::GET, "slow")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(r.headers()["keyrelay-error"], "upstream_timeout");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(upstream.count(), 1, "the request did reach the upstream");
}
