//! The proxy's HTTP client: hyper's pooled client (HTTP/1.1 and, over TLS
//! with ALPN, HTTP/2), no redirects, no decompression, and a resolver that
//! refuses non-public addresses unless local providers are allowed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;

use crate::net::is_public;

pub type ProxyClient = Client<HttpsConnector<HttpConnector<GuardedDns>>, Body>;

/// DNS for the proxy, dropping non-public addresses (checked on the
/// addresses actually used, so DNS rebinding cannot slip past).
#[derive(Clone, Debug)]
pub struct GuardedDns {
    allow_local: bool,
}

impl tower::Service<Name> for GuardedDns {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_local = self.allow_local;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_local || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves to no public address"),
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

/// Builds the client. The TLS provider is named explicitly: the binary links
/// more than one rustls provider (sqlx brings ring), so rustls cannot pick
/// a process default by itself.
pub fn build(
    allow_local: bool,
    connect_timeout: Duration,
    extra_roots: &[CertificateDer<'static>],
) -> Result<ProxyClient, rustls::Error> {
    let mut http = HttpConnector::new_with_resolver(GuardedDns { allow_local });
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots.add(cert.clone())?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // ALPN (h2, then http/1.1) is set by the builder: HTTP/2 where the
    // provider offers it over TLS, HTTP/1.1 otherwise.
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(https))
}
