//! The services: one module per thing a handler asks for.

pub mod auth;
pub mod integrations;
pub mod keys;
pub mod projects;
pub mod validate;
