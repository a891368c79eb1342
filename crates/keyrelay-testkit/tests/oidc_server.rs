//! The test OpenID provider (panva/oidc-provider via `OidcServer`) speaks
//! real OAuth 2.0: authorization code + PKCE with RFC 9207 `iss`, both client
//! secret auth methods, userinfo, refresh token rotation with reuse
//! detection, introspection, revocation and client credentials. Driven with
//! plain reqwest (no redirects followed, cookies by hand), as a stand-in for
//! keyrelay's connect flow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use keyrelay_testkit::{OidcClient, OidcOptions, OidcServer};
use reqwest::{StatusCode, Url};
use serde_json::Value;

const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
// RFC 7636, appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A redirect-less HTTP client with a hand-made cookie jar.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut req = self.http.get(url);
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header(reqwest::header::COOKIE, cookie);
        }
        let resp = req.send().await.unwrap();
        for value in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().into(), value.into());
            }
        }
        resp
    }

    /// Follows redirects from `url` while they stay on the provider; returns
    /// the first URL outside it (the client's redirect_uri) and the hops.
    async fn authorize(&mut self, server: &OidcServer, url: &str) -> (Url, Vec<String>) {
        let mut url = Url::parse(url).unwrap();
        let mut hops = Vec::new();
        for _ in 0..10 {
            let resp = self.get(url.as_str()).await;
            let status = resp.status();
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| l.to_str().unwrap().to_owned());
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                panic!(
                    "{url} answered {status} without a redirect: {}\nprovider stderr:\n{}",
                    resp.text().await.unwrap(),
                    server.stderr()
                );
            };
            hops.push(format!("{} {}", status.as_u16(), url.path()));
            url = url.join(&location).unwrap();
            if !url.as_str().starts_with(&server.issuer) {
                return (url, hops);
            }
        }
        panic!("too many redirects: {hops:?}");
    }
}

fn query(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs().into_owned().collect()
}

async fn discovery(server: &OidcServer) -> Value {
    let resp = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let d: Value = resp.json().await.unwrap();
    assert_eq!(d["issuer"], server.issuer.as_str());
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(d["userinfo_endpoint"], server.url("/me"));
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        assert!(
            d[endpoint].as_str().unwrap().starts_with(&server.issuer),
            "{endpoint}: {d}"
        );
    }
    d
}

fn authorization_url(d: &Value, client_id: &str, state: &str, challenge: Option<&str>) -> String {
    let mut url = Url::parse(d["authorization_endpoint"].as_str().unwrap()).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", "openid email")
            .append_pair("state", state);
        if let Some(challenge) = challenge {
            q.append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    url.into()
}

/// Runs the authorization request to the redirect_uri and returns the code.
async fn authorize(server: &OidcServer, d: &Value, client_id: &str, state: &str) -> String {
    let mut browser = Browser::new();
    let (callback, hops) = browser
        .authorize(
            server,
            &authorization_url(d, client_id, state, Some(CHALLENGE)),
        )
        .await;
    assert!(
        callback.as_str().starts_with(REDIRECT_URI),
        "{callback} after {hops:?}"
    );
    assert_eq!(hops.len(), 3, "{hops:?}");
    assert!(hops[0].starts_with("303 /auth"), "{hops:?}");
    assert!(hops[1].starts_with("303 /interaction/"), "{hops:?}");
    assert!(hops[2].starts_with("303 /auth/"), "{hops:?}");
    let q = query(&callback);
    assert_eq!(
        q.get("state").map(String::as_str),
        Some(state),
        "{callback}"
    );
    assert_eq!(
        q.get("iss"),
        Some(&server.issuer),
        "RFC 9207 iss: {callback}"
    );
    assert!(!q.contains_key("error"), "{callback}");
    q["code"].clone()
}

/// A client authenticating to the provider's token-ish endpoints.
struct Creds<'a> {
    id: &'a str,
    secret: &'a str,
    post: bool,
}

async fn post_form(creds: &Creds<'_>, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = reqwest::Client::new().post(url);
    if creds.post {
        form.push(("client_id", creds.id));
        form.push(("client_secret", creds.secret));
    } else {
        req = req.basic_auth(creds.id, Some(creds.secret));
    }
    let resp = req.form(&form).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

async fn exchange(d: &Value, creds: &Creds<'_>, code: &str, verifier: &str) -> (StatusCode, Value) {
    post_form(
        creds,
        d["token_endpoint"].as_str().unwrap(),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh(d: &Value, creds: &Creds<'_>, refresh_token: &str) -> (StatusCode, Value) {
    post_form(
        creds,
        d["token_endpoint"].as_str().unwrap(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn introspect(d: &Value, creds: &Creds<'_>, token: &str) -> Value {
    let (status, body) = post_form(
        creds,
        d["introspection_endpoint"].as_str().unwrap(),
        &[("token", token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn userinfo(d: &Value, access_token: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(d["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

fn assert_token_response(t: &Value, ttl: u64) {
    assert_eq!(t["token_type"], "Bearer", "{t}");
    assert!(!str_of(t, "access_token").is_empty());
    assert!(!str_of(t, "refresh_token").is_empty());
    assert_eq!(str_of(t, "id_token").split('.').count(), 3, "{t}");
    let expires_in = t["expires_in"].as_u64().unwrap();
    assert!(expires_in <= ttl && expires_in + 5 >= ttl, "{t}");
}

macro_rules! start {
    ($options:expr) => {
        match OidcServer::start($options).await {
            Some(server) => server,
            None => return,
        }
    };
}

#[tokio::test]
async fn code_flow_with_client_secret_basic() {
    let server = start!(OidcOptions {
        clients: vec![OidcClient::web("web-app", "web-secret", REDIRECT_URI)],
        ..OidcOptions::default()
    });
    let d = discovery(&server).await;
    let creds = Creds {
        id: "web-app",
        secret: "web-secret",
        post: false,
    };

    let code = authorize(&server, &d, "web-app", "state-basic").await;
    let (status, tokens) = exchange(&d, &creds, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}\n{}", server.stderr());
    assert_token_response(&tokens, 3600);
    assert_eq!(tokens["scope"], "openid email");

    let (status, me) = userinfo(&d, str_of(&tokens, "access_token")).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["sub"], "test-user");
    assert_eq!(me["email"], "test-user@example.test");

    // Rotation: a new refresh token (and access token) each time.
    let (status, refreshed) = refresh(&d, &creds, str_of(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_token_response(&refreshed, 3600);
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    assert_ne!(refreshed["access_token"], tokens["access_token"]);

    let at = str_of(&refreshed, "access_token");
    let rt = str_of(&refreshed, "refresh_token");
    let info = introspect(&d, &creds, at).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "web-app");
    assert_eq!(info["sub"], "test-user");
    assert_eq!(info["iss"], server.issuer.as_str());
    let (status, me) = userinfo(&d, at).await;
    assert_eq!(status, StatusCode::OK, "{me}");

    // RFC 7009 revocation of the refresh token; it revokes the whole grant,
    // so the access token dies too.
    let (status, body) = post_form(
        &creds,
        d["revocation_endpoint"].as_str().unwrap(),
        &[("token", rt), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(introspect(&d, &creds, rt).await["active"], false);
    assert_eq!(introspect(&d, &creds, at).await["active"], false);
    let (status, body) = refresh(&d, &creds, rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, _) = userinfo(&d, at).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn code_flow_with_client_secret_post_and_refresh_reuse_detection() {
    let server = start!(OidcOptions {
        clients: vec![
            OidcClient::web("post-app", "post-secret", REDIRECT_URI)
                .with_auth_method("client_secret_post")
        ],
        ..OidcOptions::default()
    });
    let d = discovery(&server).await;
    let creds = Creds {
        id: "post-app",
        secret: "post-secret",
        post: true,
    };

    let code = authorize(&server, &d, "post-app", "state-post").await;

    // The registered auth method is the only one accepted.
    let basic = Creds {
        post: false,
        ..creds
    };
    let (status, body) = exchange(&d, &basic, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let wrong = Creds {
        secret: "nope",
        ..creds
    };
    let (status, body) = exchange(&d, &wrong, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");

    let (status, tokens) = exchange(&d, &creds, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}\n{}", server.stderr());
    assert_token_response(&tokens, 3600);
    let (_, me) = userinfo(&d, str_of(&tokens, "access_token")).await;
    assert_eq!(me["sub"], "test-user");

    let old_rt = str_of(&tokens, "refresh_token");
    let (status, refreshed) = refresh(&d, &creds, old_rt).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let new_rt = str_of(&refreshed, "refresh_token");
    let new_at = str_of(&refreshed, "access_token");
    assert_ne!(new_rt, old_rt);
    assert_eq!(introspect(&d, &creds, new_at).await["active"], true);
    assert_eq!(
        introspect(&d, &creds, old_rt).await["active"],
        false,
        "consumed"
    );

    // Reusing the consumed refresh token fails and revokes the grant: the
    // newest refresh and access tokens die with it.
    let (status, body) = refresh(&d, &creds, old_rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = refresh(&d, &creds, new_rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(introspect(&d, &creds, new_at).await["active"], false);
    assert!(
        server.stderr().contains("refresh token already used"),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let server = start!(OidcOptions {
        clients: vec![OidcClient::web("web-app", "web-secret", REDIRECT_URI)],
        ..OidcOptions::default()
    });
    let d = discovery(&server).await;
    let creds = Creds {
        id: "web-app",
        secret: "web-secret",
        post: false,
    };

    // No code_challenge: the error comes back to the redirect_uri.
    let (callback, _) = Browser::new()
        .authorize(&server, &authorization_url(&d, "web-app", "s1", None))
        .await;
    let q = query(&callback);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("invalid_request"),
        "{callback}"
    );
    assert_eq!(q.get("state").map(String::as_str), Some("s1"));
    assert_eq!(q.get("iss"), Some(&server.issuer));

    // A wrong verifier is refused.
    let code = authorize(&server, &d, "web-app", "s2").await;
    let wrong = "x".repeat(43);
    let (status, body) = exchange(&d, &creds, &code, &wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn code_replay_is_refused_and_revokes_its_tokens() {
    let server = start!(OidcOptions {
        clients: vec![OidcClient::web("web-app", "web-secret", REDIRECT_URI)],
        ..OidcOptions::default()
    });
    let d = discovery(&server).await;
    let creds = Creds {
        id: "web-app",
        secret: "web-secret",
        post: false,
    };

    let code = authorize(&server, &d, "web-app", "state").await;
    let (status, tokens) = exchange(&d, &creds, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (status, _) = userinfo(&d, str_of(&tokens, "access_token")).await;
    assert_eq!(status, StatusCode::OK);

    // RFC 6749 4.1.2: a second use of the code fails, and the tokens issued
    // for it are revoked.
    let (status, again) = exchange(&d, &creds, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
    assert_eq!(again["error"], "invalid_grant");
    let (status, _) = userinfo(&d, str_of(&tokens, "access_token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&d, &creds, str_of(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn options_ttl_no_rotation_no_pkce_and_account() {
    let server = start!(OidcOptions {
        clients: vec![OidcClient::web("web-app", "web-secret", REDIRECT_URI)],
        access_token_ttl: 120,
        rotate_refresh_tokens: false,
        pkce_required: false,
        account: "alice".into(),
    });
    let d = discovery(&server).await;
    let creds = Creds {
        id: "web-app",
        secret: "web-secret",
        post: false,
    };

    let (callback, _) = Browser::new()
        .authorize(&server, &authorization_url(&d, "web-app", "s", None))
        .await;
    let q = query(&callback);
    assert!(!q.contains_key("error"), "{callback}");
    let (status, tokens) = post_form(
        &creds,
        d["token_endpoint"].as_str().unwrap(),
        &[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_token_response(&tokens, 120);
    let (_, me) = userinfo(&d, str_of(&tokens, "access_token")).await;
    assert_eq!(me["sub"], "alice");
    assert_eq!(me["email"], "alice@example.test");

    // Without rotation the same refresh token comes back and stays usable.
    let rt = str_of(&tokens, "refresh_token");
    for _ in 0..2 {
        let (status, refreshed) = refresh(&d, &creds, rt).await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");
        assert_eq!(refreshed["refresh_token"], rt);
        assert_ne!(refreshed["access_token"], tokens["access_token"]);
    }
}

#[tokio::test]
async fn client_credentials() {
    let server = start!(OidcOptions {
        clients: vec![
            OidcClient::service("svc", "svc-secret", "api:read api:write"),
            OidcClient::service("svc-post", "svc-post-secret", "api:read")
                .with_auth_method("client_secret_post"),
        ],
        access_token_ttl: 600,
        ..OidcOptions::default()
    });
    let d = discovery(&server).await;

    for creds in [
        Creds {
            id: "svc",
            secret: "svc-secret",
            post: false,
        },
        Creds {
            id: "svc-post",
            secret: "svc-post-secret",
            post: true,
        },
    ] {
        let (status, t) = post_form(
            &creds,
            d["token_endpoint"].as_str().unwrap(),
            &[("grant_type", "client_credentials"), ("scope", "api:read")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{t}\n{}", server.stderr());
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["scope"], "api:read");
        assert_eq!(t["expires_in"], 600);
        assert!(t.get("refresh_token").is_none(), "{t}");
        let info = introspect(&d, &creds, str_of(&t, "access_token")).await;
        assert_eq!(info["active"], true, "{info}");
        assert_eq!(info["client_id"], creds.id);
        assert_eq!(info["scope"], "api:read");
    }

    // A scope outside the client's allow-list is refused.
    let creds = Creds {
        id: "svc-post",
        secret: "svc-post-secret",
        post: true,
    };
    let (status, body) = post_form(
        &creds,
        d["token_endpoint"].as_str().unwrap(),
        &[("grant_type", "client_credentials"), ("scope", "api:write")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope");

    // Only the registered auth method is accepted.
    let creds = Creds {
        id: "svc",
        secret: "svc-secret",
        post: true,
    };
    let (status, body) = post_form(
        &creds,
        d["token_endpoint"].as_str().unwrap(),
        &[("grant_type", "client_credentials"), ("scope", "api:read")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
}
