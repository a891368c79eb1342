//! Error types. Messages are meant for the person who wrote the definition, so
//! each problem names the field, what is wrong and how to fix it.

use std::fmt;

/// Every problem found in one provider definition (validation does not stop
/// at the first, so a user can fix them all in one go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub problems: Vec<String>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "provider definition is invalid: {}",
            self.problems.join("; ")
        )
    }
}

impl std::error::Error for ValidationError {}

/// Failure to load a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file is not valid TOML/JSON or does not have the catalog shape.
    #[error("{source_name}: cannot parse provider catalog: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    /// One or more entries failed validation. `provider` lists the invalid
    /// names (comma-separated); each problem is prefixed with
    /// `providers.NAME: ` so it points into the file.
    #[error("invalid provider definition(s) {provider}: {error}")]
    Invalid {
        provider: String,
        error: ValidationError,
    },
    /// The catalog file could not be read.
    #[error("cannot read provider catalog {path}: {message}")]
    Io { path: String, message: String },
}
