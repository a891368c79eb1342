//! The HTTP edge's one error type: every failure leaves as
//! `{"error": {"code", "message"}}` with a fitting status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyrelay_store::StoreError;
use keyrelay_vault::VaultError;
use serde_json::json;

use crate::error::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid { code, message } => ApiError::bad_request(code, message),
            ServiceError::Unauthorized { code, message } => ApiError::unauthorized(code, message),
            ServiceError::NotFound { code, message } => {
                ApiError::new(StatusCode::NOT_FOUND, code, message)
            }
            ServiceError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            ServiceError::Upstream { code, message } => {
                ApiError::new(StatusCode::BAD_GATEWAY, code, message)
            }
            ServiceError::RateLimited { message } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            }
            ServiceError::Store(StoreError::Unavailable(detail)) => {
                tracing::warn!(%detail, "database unavailable");
                ApiError::unavailable(
                    "the database is unavailable right now; nothing was changed, retry shortly",
                )
            }
            ServiceError::Store(StoreError::Conflict(detail)) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", detail)
            }
            ServiceError::Store(other) => {
                tracing::error!(error = %other, "storage error");
                internal("a storage error occurred; see the server log")
            }
            ServiceError::Vault(
                err @ (VaultError::Decrypt | VaultError::UnknownMasterKey { .. }),
            ) => {
                tracing::error!(error = %err, "a stored secret could not be decrypted");
                internal(
                    "a stored secret could not be decrypted; check the configured master keys (see the server log)",
                )
            }
            ServiceError::Vault(other) => {
                tracing::error!(error = %other, "vault error");
                internal("an encryption error occurred; see the server log")
            }
        }
    }
}

pub(crate) fn internal(message: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
}

pub type ApiResult<T> = Result<T, ApiError>;
