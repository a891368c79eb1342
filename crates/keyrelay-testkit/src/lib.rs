//! The test kit: start a real keyrelay on a free loopback port against a
//! throwaway SQLite or PostgreSQL database, talk to it over HTTP, and break
//! its network to the database on purpose.
//!
//! Test support code may panic on set-up failures: a test that cannot set
//! up should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod child;
mod connect_driver;
mod fake_oauth1;
mod fake_provider;
mod oauthlib_server;
mod oidc;
mod server;
mod tcp_proxy;
mod tls_upstream;
mod upstream;

pub use connect_driver::{Browser, CallbackResult};
pub use fake_oauth1::{
    FakeOauth1Options, FakeOauth1Provider, Oauth1ApiRequest, Oauth1AuthorizeMode,
    Oauth1SignatureMethod, TEST_RSA_PRIVATE_KEY_PEM, TEST_RSA_PUBLIC_KEY_PEM,
};
pub use fake_provider::{FakeProvider, FakeProviderOptions, RevocationMode, TokenMode};
pub use keyrelay_store::testing::{TestDatabase, postgres_base_url};
pub use oauthlib_server::{OauthlibOptions, OauthlibServer, OauthlibStats};
pub use oidc::{OidcClient, OidcOptions, OidcServer};
pub use server::{Backend, Response, TestServer, TestServerBuilder, free_port};
pub use tcp_proxy::TcpProxy;
pub use tls_upstream::TlsUpstream;
pub use upstream::{
    BODY_KEEP, BodyDigest, FIXED_DATE, RecordedRequest, Upstream, UpstreamResponse, pattern_chunks,
    pattern_iter, pattern_sha256, reexport,
};

/// Runs an async test body once per backend, as `NAME::sqlite` and
/// `NAME::postgres` (the latter skipped with a message when
/// `KEYRELAY_TEST_DATABASE_URL` is not set).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:ident;)+) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$body($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$body($crate::Backend::Postgres).await
                }
            }
        )+
    };
}
