//! The service layer's error: specific enough that the HTTP edge can pick a
//! status and a stable code, with a message that says what to do.

use keyrelay_store::StoreError;
use keyrelay_vault::VaultError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The request is wrong (400).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The caller's credentials are missing or wrong (401).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// The named thing does not exist, or belongs to another project (404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The request conflicts with what exists (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A provider (or its network) failed us (502).
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    /// Too many requests from one client (429).
    #[error("{message}")]
    RateLimited { message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Unauthorized {
            code,
            message: message.into(),
        }
    }
}
