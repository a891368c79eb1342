//! The services: one module per thing a handler asks for.

pub mod auth;
pub mod connect;
pub mod connections;
pub mod credentials;
pub mod events;
pub mod integrations;
pub mod keys;
pub mod oauth1;
pub mod outbound;
pub mod projects;
pub mod providers;
pub mod ratelimit;
pub mod refresh;
pub mod revoke;
pub mod scheduler;
pub mod validate;
