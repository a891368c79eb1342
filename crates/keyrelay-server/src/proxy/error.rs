//! The proxy's own failures. Each carries `Keyrelay-Error: <code>` so a
//! caller can always tell keyrelay's errors from the provider's.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ServiceError;
use crate::http::ApiError;

#[derive(Debug)]
pub struct ProxyError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ProxyError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ProxyError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn target(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "target_not_allowed", message)
    }
}

impl From<ServiceError> for ProxyError {
    fn from(err: ServiceError) -> Self {
        let api = ApiError::from(err);
        ProxyError {
            status: api.status,
            code: api.code,
            message: api.message,
        }
    }
}

impl From<ApiError> for ProxyError {
    fn from(api: ApiError) -> Self {
        ProxyError {
            status: api.status,
            code: api.code,
            message: api.message,
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        response
            .headers_mut()
            .insert("keyrelay-error", HeaderValue::from_static(self.code));
        response
    }
}
