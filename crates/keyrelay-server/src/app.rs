//! The one shared state: store, vault, catalog and settings.

use std::sync::Arc;

use keyrelay_catalog::Catalog;
use keyrelay_store::Store;
use keyrelay_vault::TokenHash;

use crate::config::ServerConfig;
use crate::services::providers::DiscoveryCache;
use crate::services::ratelimit::PublicRateLimiter;
use crate::services::refresh::Refresher;
use crate::vault::Vault;

/// Everything a request handler or service needs, built once at start-up.
pub struct App {
    pub store: Arc<dyn Store>,
    pub vault: Vault,
    pub catalog: Arc<Catalog>,
    pub config: ServerConfig,
    /// SHA-256 of the operator's admin token; the token itself is never kept.
    pub(crate) admin_token_hash: TokenHash,
    /// keyrelay's own calls to providers (token, revoke, discovery, verify).
    pub http: reqwest::Client,
    pub discovery: DiscoveryCache,
    pub refresher: Refresher,
    pub public_limiter: PublicRateLimiter,
    /// The proxy's pooled upstream client and hot-path cache.
    pub proxy_client: crate::proxy::ProxyClient,
    /// Extra trusted roots, kept to build each serving thread's own client.
    proxy_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub proxy_cache: crate::proxy::cache::ProxyCache,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Vault,
        catalog: Arc<Catalog>,
        config: ServerConfig,
        admin_token_hash: TokenHash,
    ) -> Result<Arc<Self>, Box<dyn std::error::Error + Send + Sync>> {
        let extra_roots = crate::net::parse_pem_certs(config.extra_ca_pem.as_deref())?;
        let http = crate::net::control_client(config.allow_local_providers, &extra_roots)?;
        let proxy_client = crate::proxy::client(
            config.allow_local_providers,
            config.proxy_connect_timeout,
            &extra_roots,
        )?;
        Ok(Arc::new(App {
            store,
            vault,
            catalog,
            public_limiter: PublicRateLimiter::new(config.public_rate_per_minute),
            config,
            admin_token_hash,
            http,
            discovery: DiscoveryCache::default(),
            refresher: Refresher::default(),
            proxy_client,
            proxy_roots: extra_roots,
            proxy_cache: crate::proxy::cache::ProxyCache::default(),
        }))
    }

    /// A new proxy client with its own connection pool, as configured (for
    /// a serving thread, whose upstream connections then stay on it).
    pub fn new_proxy_client(&self) -> Result<crate::proxy::ProxyClient, rustls::Error> {
        crate::proxy::client(
            self.config.allow_local_providers,
            self.config.proxy_connect_timeout,
            &self.proxy_roots,
        )
    }
}
