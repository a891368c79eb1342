//! The refresh engine against the real authorization server of the connect
//! flow tests (panva's `oidc-provider`, see `real_oidc.rs`), run with
//! refresh-token rotation and access tokens that live a few seconds.
//!
//! One connection serves steady concurrent proxy traffic, spread over two
//! keyrelay instances on one database (one also running the scheduler),
//! across several access-token expiries: every request must succeed. With rotation, the
//! provider consumes each refresh token on use and revokes the whole grant
//! when a consumed one comes back, so a single duplicate refresh (two
//! callers refreshing the same version) would kill the connection; it must
//! stay `active`. Then DELETE revokes at the provider, whose introspection
//! endpoint must call both the last access token and the last refresh
//! token inactive.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyrelay_server::services::credentials::Credentials;
use keyrelay_testkit::{Backend, OidcClient, OidcOptions, OidcServer, TestServer, both_backends};
use serde_json::{Value, json};

use crate::real_oidc::{CLIENT_ID, CLIENT_SECRET, connect_user};

/// The provider's access-token lifetime, in seconds.
const TTL: u64 = 4;
/// How long the proxy load runs: more than four lifetimes.
const LOAD: Duration = Duration::from_secs(17);
/// Concurrent proxy callers.
const WORKERS: usize = 16;
const USER: &str = "end-user-1";

both_backends! {
    refresh_under_load_then_revoke => refresh_under_load_then_revoke;
}

async fn refresh_under_load_then_revoke(backend: Backend) {
    // Two instances on one database, the second also running the
    // scheduler: every path that refreshes, across instances.
    let rc = |scheduler| keyrelay_server::config::RefreshConfig {
        scheduler,
        scheduler_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let Some(server) = TestServer::builder(backend)
        .refresh(rc(false))
        .start()
        .await
    else {
        return;
    };
    let other = TestServer::builder(backend)
        .refresh(rc(true))
        .database_url(server.settings.database_url.clone())
        .master_keys(server.settings.master_keys.clone())
        .start()
        .await
        .unwrap();
    let callback = server.url("/oauth/callback");
    let Some(oidc) = OidcServer::start(OidcOptions {
        clients: vec![OidcClient::web(CLIENT_ID, CLIENT_SECRET, &callback)],
        access_token_ttl: TTL,
        rotate_refresh_tokens: true,
        ..OidcOptions::default()
    })
    .await
    else {
        return;
    };
    let (project_id, key) = server.create_project("real-refresh").await;
    // Endpoints (revocation included) come from discovery. `offline_access`
    // is honoured by the provider only with `prompt=consent`.
    let created = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "oidc",
                   "provider": {"auth_mode": "oauth2", "issuer": oidc.issuer,
                                "api_base_url": oidc.issuer,
                                "authorization_params": {"prompt": "consent"}},
                   "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                   "scopes": ["openid", "email", "offline_access"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    connect_user(&server, &key, &oidc, "oidc", USER).await;

    let path = format!("/v1/connections/oidc/{USER}");
    let connected = server.get(&path, &key).await;
    assert_eq!(connected.status, 200, "{}", connected.text);
    assert_eq!(connected.body["refresh_count"], 0, "{}", connected.text);
    assert!(
        connected.body["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("offline_access")),
        "the provider granted offline access: {}",
        connected.text
    );
    let first = stored_tokens(&server, &project_id).await;
    assert!(
        first.refresh_token.is_some(),
        "the provider issued a refresh token"
    );

    // Concurrent load through the proxy to the provider's userinfo endpoint.
    let (ok, failures, load_time) = proxy_load(&server, &other, &key).await;
    assert!(
        failures.is_empty(),
        "{} of {} proxied requests failed; first ones:\n{}\nprovider log:\n{}",
        failures.len(),
        ok + failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        oidc.stderr()
    );
    assert!(ok > 0);

    // Each lifetime crossed needs at least one refresh (keyrelay refreshes
    // ahead of expiry, so usually two per lifetime).
    let expiries = load_time.as_secs() / TTL;
    assert!(expiries >= 4, "{load_time:?}");
    let after = server.get(&path, &key).await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(
        after.body["status"],
        "active",
        "{}\n{}",
        after.text,
        oidc.stderr()
    );
    assert_eq!(after.body["last_error"], Value::Null, "{}", after.text);
    let refreshes = after.body["refresh_count"].as_u64().unwrap();
    assert!(
        refreshes + 1 >= expiries,
        "{refreshes} refreshes in {load_time:?} with {TTL} s tokens: {}",
        after.text
    );

    // The audit trail: one `refreshed` per refresh, each with a rotated
    // refresh token, and nothing failed.
    let trail = events(&server, &key).await;
    let mut kinds = BTreeMap::<String, u64>::new();
    for e in &trail {
        *kinds
            .entry(e["type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        kinds.get("refreshed").copied(),
        Some(refreshes),
        "{kinds:?}"
    );
    assert!(
        kinds.keys().all(|k| k == "refreshed" || k == "created"),
        "{kinds:?}"
    );
    for e in trail.iter().filter(|e| e["type"] == "refreshed") {
        assert_eq!(e["detail"]["rotated_refresh_token"], true, "{e}");
    }

    // The first refresh token was rotated away: the provider no longer
    // honours it (introspecting it does not count as reuse).
    let first_rt = first.refresh_token.as_deref().unwrap();
    assert_eq!(
        introspect(&oidc, first_rt, "refresh_token").await["active"],
        false
    );

    // A fresh access token, so that its own expiry cannot be mistaken for
    // revocation below; keyrelay hands out what it stores.
    let token = server
        .get(&format!("{path}/token?force_refresh=true"), &key)
        .await;
    assert_eq!(token.status, 200, "{}\n{}", token.text, oidc.stderr());
    let last = stored_tokens(&server, &project_id).await;
    assert_eq!(token.body["access_token"], last.access_token.as_str());
    let refresh_token = last.refresh_token.clone().unwrap();
    assert_ne!(refresh_token, first_rt);
    let at_before = introspect(&oidc, &last.access_token, "access_token").await;
    assert_eq!(at_before["active"], true, "{at_before}");
    assert_eq!(at_before["client_id"], CLIENT_ID);
    let at_exp = at_before["exp"].as_f64().unwrap();
    let rt_before = introspect(&oidc, &refresh_token, "refresh_token").await;
    assert_eq!(rt_before["active"], true, "{rt_before}");

    let deleted = server.delete(&format!("{path}?reason=test"), &key).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(
        deleted.body,
        json!({"deleted": true, "revoked_at_provider": true}),
        "{}",
        oidc.stderr()
    );

    // Refresh tokens live for days: inactive now means revoked.
    let rt_after = introspect(&oidc, &refresh_token, "refresh_token").await;
    assert_eq!(rt_after["active"], false, "{rt_after}");
    let at_after = introspect(&oidc, &last.access_token, "access_token").await;
    let checked = unix_now();
    assert_eq!(at_after["active"], false, "{at_after}");
    if checked >= at_exp {
        // Not a failure: the machine stalled past the token's expiry, so
        // this run cannot tell revocation from expiry for it.
        eprintln!(
            "note: the access token expired ({at_exp}) before it was introspected ({checked})"
        );
    }
    let gone = server.get(&path, &key).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
}

/// The tokens keyrelay stores for the connection, read in-process.
struct Tokens {
    access_token: String,
    refresh_token: Option<String>,
}

async fn stored_tokens(server: &TestServer, project_id: &str) -> Tokens {
    let app = server.app();
    let connection = app
        .store
        .get_connection(project_id, "oidc", USER)
        .await
        .unwrap()
        .unwrap();
    match Credentials::open(app, &connection.id, &connection.credentials)
        .await
        .unwrap()
    {
        Credentials::OAuth2 {
            access_token,
            refresh_token,
            ..
        } => Tokens {
            access_token: access_token.expose_secret().to_string(),
            refresh_token: refresh_token.map(|t| t.expose_secret().to_string()),
        },
        _ => panic!("not OAuth2 credentials"),
    }
}

/// `WORKERS` callers send GET /me through the proxy back to back for
/// `LOAD`. Returns the number of good answers (200 with the user's claims),
/// a description of every other outcome, and how long the load ran.
async fn proxy_load(
    server: &TestServer,
    other: &TestServer,
    key: &str,
) -> (usize, Vec<String>, Duration) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Instant::now();
    let deadline = started + LOAD;
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let http = http.clone();
            let url = if i % 2 == 0 {
                server.url("/v1/proxy/me")
            } else {
                other.url("/v1/proxy/me")
            };
            let key = key.to_string();
            tokio::spawn(async move {
                let (mut ok, mut failures) = (0usize, Vec::new());
                while Instant::now() < deadline {
                    let at = started.elapsed();
                    let sent = http
                        .get(&url)
                        .bearer_auth(&key)
                        .header("Keyrelay-Integration", "oidc")
                        .header("Keyrelay-User", USER)
                        .send()
                        .await;
                    let resp = match sent {
                        Ok(resp) => resp,
                        Err(e) => {
                            failures.push(format!("at {at:?}: {e}"));
                            continue;
                        }
                    };
                    let status = resp.status().as_u16();
                    let error = resp
                        .headers()
                        .get("keyrelay-error")
                        .map(|v| v.to_str().unwrap_or("?").to_string());
                    let text = resp.text().await.unwrap_or_default();
                    let sub = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["sub"].as_str().map(str::to_string));
                    if status == 200 && sub.as_deref() == Some("test-user") {
                        ok += 1;
                    } else {
                        failures.push(format!("at {at:?}: {status} {error:?} {text}"));
                    }
                }
                (ok, failures)
            })
        })
        .collect();
    let (mut ok, mut failures) = (0, Vec::new());
    for worker in workers {
        let (n, f) = worker.await.unwrap();
        ok += n;
        failures.extend(f);
    }
    (ok, failures, started.elapsed())
}

/// The connection's whole audit trail, page by page.
async fn events(server: &TestServer, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/events?integration=oidc&user_id={USER}&limit=100");
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.extend(url::form_urlencoded::byte_serialize(c.as_bytes()));
        }
        let page = server.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        all.extend(page.body["events"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
    }
}

/// RFC 7662 introspection at the provider, authenticated as the client.
async fn introspect(oidc: &OidcServer, token: &str, hint: &str) -> Value {
    let resp = reqwest::Client::new()
        .post(oidc.url("/token/introspection"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", token), ("token_type_hint", hint)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", oidc.stderr());
    resp.json().await.unwrap()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
