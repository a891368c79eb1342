//! What is on disk: no client secret or key is stored in plaintext (read
//! from the raw SQLite file bytes and from PostgreSQL's rows), and a
//! ciphertext moved to another row does not decrypt.

use keyrelay_server::ServiceError;
use keyrelay_server::services::{integrations, keys};
use keyrelay_testkit::{Backend, TestServer, both_backends};
use keyrelay_vault::VaultError;
use serde_json::json;
use sqlx::Connection;

both_backends! {
    no_plaintext_secrets_in_the_database => no_plaintext_secrets_in_the_database;
    moved_ciphertext_does_not_decrypt => moved_ciphertext_does_not_decrypt;
}

const CLIENT_SECRET: &str = "client-secret-PLAINTEXT-MARKER-4242";
const NAME_MARKER: &str = "visible-project-name-marker";

/// Everything the database holds, as bytes: the SQLite files (main file and
/// write-ahead log) or every row of every PostgreSQL table as text.
pub(crate) async fn raw_database(server: &TestServer) -> Vec<u8> {
    match server.backend {
        Backend::Sqlite => {
            let path = server.db.sqlite_path().unwrap();
            let dir = path.parent().unwrap();
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("keyrelay.db")
                {
                    bytes.extend(std::fs::read(entry.path()).unwrap());
                }
            }
            bytes
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&server.db.url).await.unwrap();
            let tables: Vec<(String,)> =
                sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            assert!(tables.len() >= 5, "{tables:?}");
            let mut bytes = Vec::new();
            for (table,) in tables {
                let sql = format!("SELECT t::text FROM {table} t");
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                for (row,) in rows {
                    bytes.extend(row.into_bytes());
                    bytes.push(b'\n');
                }
            }
            bytes
        }
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn no_plaintext_secrets_in_the_database(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let created = server
        .post(
            "/v1/admin/projects",
            &server.admin_token,
            json!({"name": NAME_MARKER}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    let secret_key = created.body["secret_key"].as_str().unwrap().to_string();
    let webhook_secret = created.body["webhook_secret"].as_str().unwrap().to_string();
    let second_key = server
        .post(
            &format!("/v1/admin/projects/{id}/secret-keys"),
            &server.admin_token,
            json!({}),
        )
        .await
        .body["secret_key"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .create_integration("github", &secret_key, CLIENT_SECRET)
        .await;
    let imported = server
        .post(
            "/v1/connections",
            &secret_key,
            json!({"integration": "github", "user_id": "u",
                   "credentials": {"access_token": "ACCESS-TOKEN-MARKER-77", "refresh_token": "REFRESH-TOKEN-MARKER-77"}}),
        )
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);

    let raw = raw_database(&server).await;
    // The scan sees the data (a positive control), and the integration's
    // non-secret client id is there in clear.
    assert!(contains(&raw, NAME_MARKER), "the scan must see stored rows");
    assert!(contains(&raw, "client-123"));
    let webhook_key = webhook_secret.trim_start_matches("whsec_");
    for (what, secret) in [
        ("client secret", CLIENT_SECRET),
        ("client secret core", "PLAINTEXT-MARKER-4242"),
        ("project secret key", secret_key.as_str()),
        (
            "project secret key body",
            secret_key.trim_start_matches("kr_sk_"),
        ),
        ("second secret key", second_key.as_str()),
        ("webhook secret", webhook_secret.as_str()),
        ("webhook key", webhook_key),
        ("admin token", server.admin_token.as_str()),
        ("access token", "ACCESS-TOKEN-MARKER-77"),
        ("refresh token", "REFRESH-TOKEN-MARKER-77"),
    ] {
        assert!(!contains(&raw, secret), "{what} is stored in plaintext");
    }
}

async fn moved_ciphertext_does_not_decrypt(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (project_id, key) = server.create_project("p").await;
    server
        .create_integration("victim", &key, "secret-of-victim")
        .await;
    server
        .create_integration("attacker", &key, "secret-of-attacker")
        .await;

    // Copy the victim's ciphertext into the attacker's row, in the raw database.
    let copy = "UPDATE integrations SET client_secret = \
                (SELECT client_secret FROM integrations WHERE key = 'victim') WHERE key = 'attacker'";
    server.raw_sql(copy, None).await;

    let moved = integrations::client_secret(server.app(), &project_id, "attacker").await;
    assert!(
        matches!(moved, Err(ServiceError::Vault(VaultError::Decrypt))),
        "a ciphertext moved to another row must not decrypt: {moved:?}"
    );
    let victim = integrations::client_secret(server.app(), &project_id, "victim")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(victim.expose_secret(), "secret-of-victim");

    // The check over every stored secret names the moved one.
    let report = keys::verify_secrets(server.app()).await.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].starts_with("integrations/"));
    assert!(report.failed[0].ends_with("/client_secret"));
}
