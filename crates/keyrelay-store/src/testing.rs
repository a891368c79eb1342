//! Throwaway databases for tests: a fresh SQLite file, or a fresh PostgreSQL
//! database made inside the server that `KEYRELAY_TEST_DATABASE_URL` names.

use std::io::Write;

use rand::Rng;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The environment variable that points the tests at PostgreSQL.
pub const TEST_DATABASE_ENV: &str = "KEYRELAY_TEST_DATABASE_URL";

/// A database that exists for one test and is dropped after it.
pub struct TestDatabase {
    pub url: String,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A new SQLite database file in a temporary directory.
    pub fn sqlite() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let url = format!("sqlite:{}", dir.path().join("keyrelay.db").display());
        Ok(TestDatabase {
            url,
            pg: None,
            _dir: Some(dir),
        })
    }

    /// The SQLite file's path, for tests that read the raw bytes.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        self.url
            .strip_prefix("sqlite:")
            .map(std::path::PathBuf::from)
    }

    /// A new, empty PostgreSQL database; `Ok(None)` (with a message on stderr)
    /// when `KEYRELAY_TEST_DATABASE_URL` is not set, an error when it is set
    /// but the server cannot be used.
    pub async fn postgres() -> Result<Option<Self>, String> {
        let Some(base) = postgres_base_url() else {
            return Ok(None);
        };
        let name = format!("kr_test_{:016x}", rand::thread_rng().r#gen::<u64>());
        let mut conn = PgConnection::connect(&base).await.map_err(|e| {
            format!("{TEST_DATABASE_ENV} is set but PostgreSQL cannot be reached: {e}")
        })?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot create test database {name}: {e}"))?;
        let _ = conn.close().await;
        let mut url = url::Url::parse(&base).map_err(|e| e.to_string())?;
        url.set_path(&format!("/{name}"));
        Ok(Some(TestDatabase {
            url: url.to_string(),
            pg: Some((base, name)),
            _dir: None,
        }))
    }
}

/// `KEYRELAY_TEST_DATABASE_URL`, or `None` after telling the person running
/// the tests, on stderr past the test harness's capture, that PostgreSQL
/// tests are skipped.
pub fn postgres_base_url() -> Option<String> {
    match std::env::var(TEST_DATABASE_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (PostgreSQL): {TEST_DATABASE_ENV} is not set; set it to e.g. \
                 postgres://postgres@127.0.0.1:5432/test to run the PostgreSQL tests"
            );
            None
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, name)) = self.pg.take() else {
            return;
        };
        // Drop runs outside any async context we can rely on: use a private runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&base).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
