//! Extractors that turn every malformed input into a clear `ApiError`:
//! JSON bodies, bearer credentials, path parameters.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::http::error::ApiError;
use crate::services::auth;

/// `axum::Json` with keyrelay's error shape for every rejection.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => ApiError::bad_request(
            "invalid_request",
            format!(
                "the body does not fit this endpoint: {}",
                scrub_values(strip_prefix(&e.body_text()))
            ),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than this endpoint accepts",
        ),
        other => ApiError::bad_request(
            "invalid_request",
            format!("the body could not be read: {}", other.body_text()),
        ),
    }
}

/// axum prefixes serde's message with its own words; keep serde's, which
/// name the field ("unknown field `x`", "missing field `name`").
fn strip_prefix(text: &str) -> &str {
    text.strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(text)
}

/// serde quotes the offending value ("invalid type: string \"abc\", expected
/// …"). The value may be a secret sent in the wrong place, so keep only its
/// kind: "invalid type: string, expected …".
fn scrub_values(message: &str) -> String {
    let mut out = message.to_string();
    for marker in ["invalid type: ", "invalid value: ", "invalid length "] {
        let Some(start) = out.find(marker).map(|i| i + marker.len()) else {
            continue;
        };
        let Some(len) = out[start..].find(", expected") else {
            continue;
        };
        let value = &out[start..start + len];
        let kind = value
            .split(['`', '"'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        out.replace_range(start..start + len, &kind);
    }
    out
}

/// A path parameter with keyrelay's error shape.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::bad_request("invalid_path", format!("bad path: {}", e.body_text()))
            })
    }
}

/// `Query` whose rejection is the API's JSON error.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| {
                ApiError::bad_request("invalid_request", format!("bad query: {}", e.body_text()))
            })
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_api_key",
                "send your key as `Authorization: Bearer <key>`",
            )
        })?;
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized(
            "invalid_api_key",
            "the Authorization header is not valid text",
        )
    })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_api_key",
                "the Authorization header must be `Bearer <key>`",
            )
        })?;
    Ok(token)
}

/// The operator, authenticated by the admin token.
pub struct Admin;

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        auth::authenticate_admin(app, bearer(parts)?)?;
        Ok(Admin)
    }
}

/// A project, authenticated by one of its secret keys.
pub struct ProjectAuth {
    pub project_id: String,
}

impl FromRequestParts<Arc<App>> for ProjectAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let project_id = auth::authenticate_project(app, bearer(parts)?).await?;
        Ok(ProjectAuth { project_id })
    }
}

#[cfg(test)]
mod tests {
    use super::scrub_values;

    #[test]
    fn values_are_scrubbed_from_serde_messages() {
        for (input, expected) in [
            (
                r#"client_secret: invalid type: integer `12345`, expected a string at line 1 column 9"#,
                "client_secret: invalid type: integer, expected a string at line 1 column 9",
            ),
            (
                r#"scopes: invalid type: string "hunter2", expected a sequence at line 1 column 30"#,
                "scopes: invalid type: string, expected a sequence at line 1 column 30",
            ),
            (
                "x: invalid type: floating point `1.5`, expected a string",
                "x: invalid type: floating point, expected a string",
            ),
            (
                "missing field `name` at line 1 column 2",
                "missing field `name` at line 1 column 2",
            ),
        ] {
            assert_eq!(scrub_values(input), expected);
        }
    }
}
