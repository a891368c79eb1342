//! PostgreSQL, for several keyrelay instances sharing one database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};

use crate::error::{StoreError, StoreResult};
use crate::store::Backend;

/// A `Store` on a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: Pool<Postgres>,
}

impl PostgresStore {
    const BACKEND: Backend = Backend::Postgres;
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    /// Connects to `url` (`postgres://…`). Requests wait at most a few seconds
    /// for a connection, so that a database outage turns into quick 503s.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Setup(format!("invalid PostgreSQL database URL: {e}")))?
            .application_name("keyrelay");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Setup(format!(
                    "cannot connect to PostgreSQL at {}: {e}",
                    crate::redact_url(url)
                ))
            })?;
        Ok(PostgresStore { pool })
    }
}

crate::sql::impl_store_queries!(PostgresStore, sqlx::Postgres);
