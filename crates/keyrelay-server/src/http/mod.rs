//! The HTTP surface: routes, extractors, error mapping and serving.

mod admin;
mod connect;
mod connections;
mod error;
mod extract;
mod health;
mod project;
mod views;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use admin::created_json as created_project_json;
pub use error::{ApiError, ApiResult};
pub use views::timestamp;

use crate::app::App;

/// The whole router.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.config.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(admin::routes())
        .merge(project::routes())
        .merge(connect::routes())
        .merge(connections::routes())
        .route("/v1/proxy/{*path}", axum::routing::any(crate::proxy::handle))
        .route("/v1/proxy/", axum::routing::any(crate::proxy::handle))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        // Spans name the method and path only: query strings can carry
        // OAuth codes and states, which must never reach a log.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            tracing::debug_span!("http", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see the API reference in API.md",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Peer addresses feed the per-IP limits of the public routes.
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
