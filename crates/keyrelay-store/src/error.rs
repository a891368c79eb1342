//! The storage layer's one error type. Callers care about three things: the
//! database is unreachable (retry later, answer 503), a uniqueness rule was
//! hit (answer 409), or something else went wrong.

/// An error from a store operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now; the operation may succeed later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness constraint was violated (the thing exists already).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value could not be decoded (e.g. a JSON column was edited by hand).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
    /// Opening the database or migrating it failed.
    #[error("{0}")]
    Setup(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &err {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
                StoreError::Unavailable(err.to_string())
            }
            E::Protocol(_) => StoreError::Unavailable(err.to_string()),
            E::Database(db) => {
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                if db.is_unique_violation() {
                    StoreError::Conflict(db.message().to_string())
                } else if is_unavailable_code(&code) {
                    StoreError::Unavailable(db.message().to_string())
                } else {
                    StoreError::Database(db.message().to_string())
                }
            }
            E::ColumnDecode { .. } | E::Decode(_) => StoreError::Corrupt(err.to_string()),
            _ => StoreError::Database(err.to_string()),
        }
    }
}

/// PostgreSQL SQLSTATEs that mean "the server is going away or not there yet"
/// (class 08 connection exceptions, 57P0x shutdowns), and SQLite's BUSY/LOCKED.
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        || matches!(code, "5" | "6" | "261" | "517")
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(e) => StoreError::from(e),
            other => StoreError::Setup(format!("database migration failed: {other}")),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}
