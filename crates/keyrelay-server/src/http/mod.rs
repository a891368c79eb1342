//! The HTTP surface: routes, extractors, error mapping and serving.

mod admin;
mod connect;
mod connections;
mod error;
mod events;
mod extract;
mod health;
mod project;
mod views;
mod workers;

use std::future::Future;
use std::sync::Arc;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tower::Service;
use tower_http::trace::TraceLayer;

pub use admin::created_json as created_project_json;
pub use error::{ApiError, ApiResult};
pub use views::timestamp;
pub(crate) use workers::{on_main, send_upstream};

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
        .merge(events::routes())
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
/// Connections are served by one thread per CPU (see [`workers`]).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    workers::serve(listener, app, shutdown).await
}

/// Makes one [`Front`] per accepted connection, knowing its peer address.
#[derive(Clone)]
struct MakeFront {
    router: Router,
    app: Arc<App>,
}

impl MakeFront {
    fn new(app: Arc<App>) -> MakeFront {
        MakeFront {
            router: router(app.clone()),
            app,
        }
    }
}

impl<'a> Service<IncomingStream<'a, TcpListener>> for MakeFront {
    type Response = Front;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Front, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'a, TcpListener>) -> Self::Future {
        std::future::ready(Ok(Front {
            router: self.router.clone(),
            app: self.app.clone(),
            peer: ConnectInfo(*stream.remote_addr()),
        }))
    }
}

/// Sends proxy calls straight to the proxy and everything else through the
/// router. The proxy is the hot path: skipping the router, its extractors
/// and the trace layer saves a measurable share of each call's CPU
/// (bench/run.sh); the proxy logs its own failures.
#[derive(Clone)]
struct Front {
    router: Router,
    app: Arc<App>,
    /// Peer addresses feed the per-IP limits of the public routes.
    peer: ConnectInfo<SocketAddr>,
}

impl Service<Request<Body>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        if req.uri().path().starts_with("/v1/proxy/") {
            let app = self.app.clone();
            return Box::pin(async move { Ok(crate::proxy::handle(State(app), req).await) });
        }
        req.extensions_mut().insert(self.peer);
        let route = self.router.call(req);
        // The API runs on the main runtime, beside the database pools.
        Box::pin(async move {
            on_main(route).await.unwrap_or_else(|| {
                Ok(
                    error::internal("the request handler failed unexpectedly; retry the request")
                        .into_response(),
                )
            })
        })
    }
}
