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
pub use model::{
    ConnectSession, Connection, ConnectionFilter, DataKeyRecord, Event, EventFilter, Integration,
    OAuthFlow, Project, Revocation, SecretKeyRecord,
};
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

/// A database URL with its password (in the user info or a `password=`
/// query parameter) replaced, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparseable URL>".to_string();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_survive_redaction() {
        for url in [
            "postgres://kr:pa55word@db.example:5432/keyrelay",
            "postgres://kr@db.example/keyrelay?sslmode=require&password=pa55word",
        ] {
            let redacted = redact_url(url);
            assert!(!redacted.contains("pa55word"), "{redacted}");
            assert!(redacted.contains("db.example"), "{redacted}");
        }
        assert_eq!(
            redact_url("sqlite:data/keyrelay.db"),
            "sqlite:data/keyrelay.db"
        );
        assert_eq!(redact_url("not a url"), "<unparseable URL>");
    }
}
