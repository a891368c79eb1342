//! The refresh engine across real `keyrelay serve` processes: three
//! processes on one PostgreSQL database refresh an expired connection once,
//! and a process killed (SIGKILL) in the middle of scheduled refreshes loses
//! no committed refresh token. The fake provider rotates refresh tokens and
//! revokes the whole grant when one is used twice, so a lost or duplicated
//! refresh would show as a dead grant.

use std::path::Path;
use std::time::Duration;

use keyrelay_testkit::{FakeProvider, FakeProviderOptions, TestDatabase};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::Served;
use crate::proxy::mint_tokens;

/// The environment of a `keyrelay serve` that tests can drive.
fn env(database_url: &str, master_key: &str, admin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KEYRELAY_DATABASE_URL", database_url.to_string()),
        ("KEYRELAY_MASTER_KEY", master_key.to_string()),
        ("KEYRELAY_ADMIN_TOKEN", admin.to_string()),
        ("KEYRELAY_ALLOW_LOCAL_PROVIDERS", "true".to_string()),
        ("KEYRELAY_LOG", "warn".to_string()),
    ]
}

fn start(dir: &Path, env: &[(&'static str, String)]) -> Served {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Served::start(dir, &pairs)
}

async fn call(method: Method, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Project, integration "fake" (the provider itself), returns the secret key.
async fn setup(base: &str, admin: &str, provider: &FakeProvider) -> String {
    let (s, p) = call(
        Method::POST,
        &format!("{base}/v1/admin/projects"),
        admin,
        Some(json!({"name": "procs"})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let key = p["secret_key"].as_str().unwrap().to_string();
    let o = provider.options();
    let (s, body) = call(
        Method::POST,
        &format!("{base}/v1/integrations"),
        &key,
        Some(json!({"key": "fake", "provider": provider.definition(true),
                    "client_id": o.client_id, "client_secret": o.client_secret})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    key
}

async fn import_expired(base: &str, key: &str, provider: &FakeProvider, user: &str) {
    import(base, key, provider, user, "2020-01-01T00:00:00Z").await;
}

async fn import(base: &str, key: &str, provider: &FakeProvider, user: &str, expires_at: &str) {
    let (at, rt) = mint_tokens(provider).await;
    let (s, body) = call(
        Method::POST,
        &format!("{base}/v1/connections"),
        key,
        Some(
            json!({"integration": "fake", "user_id": user, "credentials":
            {"access_token": at, "refresh_token": rt, "expires_at": expires_at}}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{body}");
}

fn proxied(http: &reqwest::Client, base: &str, key: &str, user: &str) -> reqwest::RequestBuilder {
    http.get(format!("{base}/v1/proxy/userinfo"))
        .bearer_auth(key)
        .header("Keyrelay-Integration", "fake")
        .header("Keyrelay-User", user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_postgres_refresh_once() {
    let Some(db) = TestDatabase::postgres().await.unwrap() else {
        return;
    };
    let provider = FakeProvider::start(FakeProviderOptions {
        require_pkce: false,
        token_delay: Duration::from_millis(300),
        ..FakeProviderOptions::default()
    })
    .await;
    let master = keyrelay_vault::MasterKey::generate()
        .to_base64()
        .to_string();
    let admin = keyrelay_vault::generate_token("kr_admin_");
    let env = env(&db.url, &master, &admin);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let served: Vec<Served> = dirs.iter().map(|d| start(d.path(), &env)).collect();
    let key = setup(&served[0].base, &admin, &provider).await;
    import_expired(&served[1].base, &key, &provider, "u1").await;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let requests = (0..300).map(|i| {
        let req = proxied(&http, &served[i % 3].base, &key, "u1");
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = keyrelay_testkit::reexport::futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        provider.refresh_calls(),
        1,
        "one refresh across three processes"
    );
    assert_eq!(provider.revoked_grants(), 0);
}

async fn sqlite_exec(db_file: &Path, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db_file.display()))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Counts rows on the SQLite file of a stopped (killed) server.
async fn sqlite_count(db_file: &Path, sql: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db_file.display()))
        .await
        .unwrap();
    let row: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    row.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_refreshes_loses_no_committed_token() {
    const N: usize = 60;
    let provider = FakeProvider::start(FakeProviderOptions {
        require_pkce: false,
        token_delay: Duration::from_millis(150),
        ..FakeProviderOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("keyrelay.toml");
    // A fast scheduler and a short lease, so that the leases the killed
    // process held lapse quickly after the restart.
    std::fs::write(
        &config,
        "scheduler_interval_ms = 50\nscheduler_concurrency = 8\nrefresh_lease_seconds = 2\n",
    )
    .unwrap();
    let master = keyrelay_vault::MasterKey::generate()
        .to_base64()
        .to_string();
    let admin = keyrelay_vault::generate_token("kr_admin_");
    let db_file = data.join("keyrelay.db");
    let mut env = env(&format!("sqlite:{}", db_file.display()), &master, &admin);
    env.push(("KEYRELAY_DATA_DIR", data.display().to_string()));
    env.push(("KEYRELAY_CONFIG", config.display().to_string()));

    let served = start(dir.path(), &env);
    let base = served.base.clone();
    let key = setup(&base, &admin, &provider).await;
    // Valid for an hour (not due), then all made due at once behind the
    // running server's back, so that the scheduler has a backlog.
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for i in 0..N {
        import(&base, &key, &provider, &format!("u{i}"), &in_an_hour).await;
    }
    sqlite_exec(&db_file, "UPDATE connections SET next_refresh_at = 0").await;
    // Kill while refreshes are in flight (each takes 150 ms at the provider).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while provider.refresh_calls() < N / 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served.kill();
    let asked = provider.refresh_calls();
    let committed = sqlite_count(
        &db_file,
        "SELECT COUNT(*) FROM events WHERE type = 'refreshed'",
    )
    .await;
    assert!(
        (committed as usize) < N && asked > 0,
        "the kill came in the middle of the refreshes ({committed} committed of {N}, {asked} asked)"
    );

    // Restart on the same data: the scheduler finishes the job.
    let served = start(dir.path(), &env);
    let base = served.base.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let due = sqlite_count(
            &db_file,
            "SELECT COUNT(*) FROM connections WHERE status = 'active' AND refresh_count = 0",
        )
        .await;
        if due == 0 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let http = reqwest::Client::new();
    let mut dead = 0;
    for i in 0..N {
        let user = format!("u{i}");
        let (_, c) = call(
            Method::GET,
            &format!("{base}/v1/connections/fake/{user}"),
            &key,
            None,
        )
        .await;
        match c["status"].as_str().unwrap() {
            "active" => {
                assert!(c["refresh_count"].as_i64().unwrap() >= 1, "{c}");
                let r = proxied(&http, &base, &key, &user).send().await.unwrap();
                assert_eq!(r.status(), 200, "{user} works");
                // The stored refresh token is the newest the provider
                // issued: a forced refresh with it succeeds (a stale one
                // would be a reuse, and the grant would die).
                let (s, body) = call(
                    Method::POST,
                    &format!("{base}/v1/connections/fake/{user}/refresh"),
                    &key,
                    Some(json!({})),
                )
                .await;
                assert_eq!(s, 200, "{user}: {body}");
            }
            "reauthorization_required" => {
                // Only a refresh the provider answered but keyrelay never
                // committed (it died first) can end like this.
                assert_eq!(c["last_error"]["code"], "invalid_grant", "{c}");
                dead += 1;
            }
            other => panic!("{user}: unexpected status {other}"),
        }
    }
    let in_flight = asked - committed as usize;
    eprintln!(
        "SIGKILL: {asked} refreshes asked, {committed} committed before the kill, {dead} grants dead after restart"
    );
    assert!(
        dead <= in_flight,
        "{dead} dead grants but only {in_flight} refreshes were in flight at the kill"
    );
    assert_eq!(provider.revoked_grants(), dead);
    drop(served);
}
