//! keyrelay's integration tests: real servers on loopback ports, real
//! databases (SQLite always; PostgreSQL when KEYRELAY_TEST_DATABASE_URL is set).
//! One test binary, so the workspace links it once.

// Tests may unwrap: a failed set-up should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod bad_input;
mod cli;
mod connect_flow;
mod connections;
mod oauth1;
mod outage;
mod processes;
mod proxy;
mod proxy_safety;
mod real_oauth1;
mod real_oidc;
mod real_oidc_refresh;
mod refresh_engine;
mod secrets_at_rest;
mod tenancy;
