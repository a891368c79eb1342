//! The embedded default: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

use crate::error::{StoreError, StoreResult};
use crate::store::Backend;

/// A `Store` on an SQLite database file.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: Pool<Sqlite>,
}

impl SqliteStore {
    const BACKEND: Backend = Backend::Sqlite;
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    /// Opens (creating if missing) the database at `url` (`sqlite:path` or `sqlite://path`).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Setup(format!("invalid SQLite database URL: {e}")))?;
        create_private(options.get_filename())?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // 8 MiB of page cache per connection (SQLite's default is 2):
            // the scheduler and cache misses read rows all over the table.
            .pragma("cache_size", "-8192");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Setup(format!("cannot open SQLite database {url}: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Writes the WAL back into the main file (so that the file alone holds everything).
    pub async fn checkpoint(&self) -> StoreResult<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Creates the database file readable by its owner only (SQLite gives its
/// WAL and shared-memory files the same mode). It holds only ciphertexts and
/// hashes, but there is no reason for anyone else to read even those.
fn create_private(path: &std::path::Path) -> StoreResult<()> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Setup(format!(
            "cannot create the SQLite database {}: {e}",
            path.display()
        ))),
    }
}

crate::sql::impl_store_queries!(SqliteStore, sqlx::Sqlite);
