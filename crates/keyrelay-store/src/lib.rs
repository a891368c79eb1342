//! keyrelay's storage: the `Store` trait and its SQLite and PostgreSQL
//! implementations, with embedded migrations.

mod error;
mod model;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod store;
#[cfg(feature = "test-support")]
pub mod testing;

use std::sync::Arc;

pub use error::{StoreError, StoreResult};
pub use model::{DataKeyRecord, Integration, Project, SecretKeyRecord};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use store::{Backend, Store};

/// Opens the store a database URL names: `sqlite:…` or `postgres://…`.
/// Does not migrate; call `Store::migrate`.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::Setup(format!(
            "unsupported database URL {:?}: use sqlite:PATH or postgres://USER@HOST/DB",
            redact_url(url)
        )))
    }
}

/// A database URL with its password replaced, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "<unparseable URL>".to_string(),
    }
}
