//! keyrelay's services and its HTTP surface.
//!
//! Data flows catalog → connect flow → token vault → refresher → proxy; this
//! crate holds the services of that flow (`services`, `vault`) and a thin axum
//! layer (`http`) whose handlers extract input, call one service and map the
//! error. Storage is reached only through `keyrelay_store::Store`.

pub mod app;
pub mod config;
pub mod error;
pub mod http;
pub mod net;
pub mod proxy;
pub mod services;
pub mod vault;

pub use app::App;
pub use config::ServerConfig;
pub use error::ServiceError;
